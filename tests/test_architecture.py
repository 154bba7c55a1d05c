"""The architecture and the house style are checked like behaviour: in the suite, so in CI.

- ``lint-imports`` checks the layer contracts in pyproject.toml (the kiosk's layers only point
  down; ``hardware`` and ``offline_queue`` import nothing from ``kiosk``; ...).
- ``ruff check`` is the style and complexity gate (.ruff.toml).
- ``mypy`` checks the three packages ([tool.mypy] in pyproject.toml), strictly everywhere but
  the screen.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


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


def test_mypy_finds_no_type_errors():
    # Cold (no .mypy_cache) about 5.5 s and 340 MB on the 2-core builder, warm 0.2 s; the
    # cache is mypy's own and keyed by file contents, so a stale one cannot hide an error.
    done = run(sys.executable, "-m", "mypy", "kiosk", "hardware", "offline_queue", timeout=120)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "Success: no issues found" in done.stdout


def test_mypy_reads_the_packages_types(tmp_path):
    """The gate is not vacuous: a caller that passes text where our code takes bytes is an
    error, so the packages are analysed and not silently treated as untyped."""
    caller = tmp_path / "caller.py"
    caller.write_text("from kiosk.domain.credentials.base45 import b45encode\n\n"
                      "b45encode('not bytes')\n", encoding="utf-8")
    done = run(sys.executable, "-m", "mypy", str(caller), timeout=120)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert 'incompatible type "str"; expected "bytes"' in done.stdout


def test_ruff_refuses_a_tangled_function(tmp_path):
    """The complexity gate is on: a function of eleven branches is reported (C901)."""
    branches = "".join(f"    if x == {i}:\n        return {i}\n" for i in range(11))
    tangled = tmp_path / "tangled.py"
    tangled.write_text(f"def pick(x: int) -> int:\n{branches}    return -1\n", encoding="utf-8")
    done = run(str(BIN / "ruff"), "check", "--no-cache", "--config", str(ROOT / ".ruff.toml"),
               str(tangled))
    assert done.returncode == 1
    assert "C901 `pick` is too complex (12 > 10)" in done.stdout


def test_mypy_is_strict_everywhere(tmp_path):
    """pyproject.toml's override holds: in every package, an unannotated function and a
    bare ``dict`` are errors, the central server, the command line and the screen included."""
    scratch = "def f(x):\n    return x\n\n\ndef g() -> dict:\n    return {}\n"
    strict = ["hardware", "hardware/qr", "offline_queue", "offline_queue/central",
              "offline_queue/central/dashboard", "kiosk", "kiosk/domain",
              "kiosk/domain/credentials", "kiosk/runtime", "kiosk/ops", "kiosk/cli",
              "kiosk/ui"]
    for package in strict:
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
        (tmp_path / package / "scratch.py").write_text(scratch, encoding="utf-8")
    # The top-level modules by their own names: the configuration and the entry point.
    for module in ("config.py", "main.py"):
        (tmp_path / "kiosk" / module).write_text(scratch, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--no-incremental", "hardware", "offline_queue", "kiosk"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    flagged = {line.split(":")[0] for line in done.stdout.splitlines() if "error:" in line}
    assert flagged == {f"{package}/scratch.py" for package in strict} | {
        "kiosk/config.py", "kiosk/main.py"}, done.stdout


def test_mypy_sees_flasks_own_types(tmp_path):
    """Flask defines route() and errorhandler() in flask/sansio/, a folder without an
    __init__.py: mypy reads it only with namespace packages on.  Without them a handler of
    the wrong shape passed unseen (the decorator was Any)."""
    caller = tmp_path / "handler.py"
    caller.write_text("from flask import Flask\n\napp = Flask('x')\n\n\n"
                      "@app.errorhandler(ValueError)\n"
                      "def handler(e: ValueError) -> set[int]:\n    return {1}\n",
                      encoding="utf-8")
    done = run(sys.executable, "-m", "mypy", str(caller), timeout=120)
    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "T_error_handler" in done.stdout, done.stdout
