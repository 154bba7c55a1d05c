"""The central server is an extra: without Flask/waitress its commands and the demo say so
in one line (simulated with an import blocker in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Runs the CLI with an import hook that refuses some modules, as if they were not installed.
BLOCKED_RUN = """
import sys
from importlib.abc import MetaPathFinder

BLOCKED = set(sys.argv[1].split(","))


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED or name in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
from kiosk.cli import main

main(sys.argv[2:])
"""


def run_without(blocked: str, *argv: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, blocked, *argv], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"})


@pytest.mark.parametrize("argv", [
    ("central", "--db", "{tmp}/c.db", "--port", "0"),
    ("central", "--db", "{tmp}/c.db", "report"),
    ("demo", "--headless", "--max-seconds", "1", "--data-dir", "{tmp}/demo"),
])
@pytest.mark.parametrize("blocked", ["flask", "waitress", "flask,waitress"])
def test_without_the_central_extra_one_line_says_how_to_install_it(argv, blocked, tmp_path):
    argv = tuple(a.format(tmp=tmp_path) for a in argv)
    proc = run_without(blocked, *argv, tmp_path=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    missing = " and ".join(blocked.split(","))
    assert lines[0] == (f"checkpoint-kiosk: error: checkpoint-kiosk {argv[0]} needs the central "
                        f"server, an extra a kiosk does not install ({missing} missing here): "
                        "pip install 'checkpoint-kiosk[central]'")
    assert not (tmp_path / "c.db").exists() and not (tmp_path / "demo").exists()


def test_the_kiosk_commands_work_without_the_extra(tmp_path):
    proc = run_without("flask,waitress", "config", "check", "--config",
                       str(tmp_path / "none.toml"), tmp_path=tmp_path)
    assert "central" not in proc.stderr and "Traceback" not in proc.stderr
    help_ = run_without("flask,waitress", "central", "--help", tmp_path=tmp_path)
    assert help_.returncode == 0 and "reference central platform" in help_.stdout
