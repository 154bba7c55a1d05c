"""The demo as a person starts it: a real process, a real local central server."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def demo(tmp_path, *args):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    env.pop("GPIOZERO_PIN_FACTORY", None)  # the demo must choose mock pins itself
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "demo", "--data-dir", str(tmp_path), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def central_rows(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "kiosk", "central", "export", "--db", str(tmp_path / "central.db")],
        cwd=REPO, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_demo_scans_decides_records_and_syncs(tmp_path):
    t0 = time.monotonic()
    proc = demo(tmp_path, "--max-seconds", "14")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    # The demo pins its own central's key: nothing is trusted on first use.
    assert "first use" not in proc.stderr
    assert time.monotonic() - t0 < 60
    rows = central_rows(tmp_path)
    # Within 14 s at 4 fps the first two people (ID card, phone code) have passed and synced.
    assert [(r["kind"], r["decision"]) for r in rows[:2]] == [("cccd", "pass"),
                                                              ("pc_covid", "pass")]
    assert all(r["checkpoint_id"] == "DEMO-01" for r in rows)
    assert (tmp_path / "device-token").stat().st_mode & 0o777 == 0o600


def test_demo_headless_second_run_reuses_its_enrolment(tmp_path):
    first = demo(tmp_path, "--headless", "--max-seconds", "3")
    assert first.returncode == 0, first.stderr
    token = (tmp_path / "device-token").read_text()
    second = demo(tmp_path, "--headless", "--max-seconds", "3")
    assert second.returncode == 0, second.stderr
    assert (tmp_path / "device-token").read_text() == token
