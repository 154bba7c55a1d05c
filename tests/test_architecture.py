"""The architecture and the house style are checked like behaviour: in the suite, so in CI.

- ``lint-imports`` checks the layer contracts in pyproject.toml (the kiosk's layers only point
  down; ``hardware`` and ``offline_queue`` import nothing from ``kiosk``; ...).
- ``ruff check`` is the style and complexity gate (.ruff.toml).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    done = run(str(BIN / "lint-imports"), "--no-cache")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_a_broken_contract_is_reported(tmp_path):
    """The checker really reads the contracts: an upward import in a copy is refused."""
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # The same layers with the screen below the runtime: the real imports now point up.
    flipped = config.replace('    "ui",\n    "ops",\n    "runtime",',
                             '    "ops",\n    "runtime",\n    "ui",')
    assert flipped != config
    alt = tmp_path / "contracts.toml"
    alt.write_text(flipped, encoding="utf-8")
    done = run(str(BIN / "lint-imports"), "--no-cache", "--config", str(alt))
    assert done.returncode != 0
    assert "BROKEN" in done.stdout


def test_ruff_is_clean():
    done = run(str(BIN / "ruff"), "check", "--no-cache", "kiosk", "hardware", "offline_queue",
               "tests", "bench", "setup.py")
    assert done.returncode == 0, done.stdout[-4000:]
