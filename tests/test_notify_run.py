"""The notify protocol around a real ``checkpoint-kiosk run --headless`` process.

systemd's end is a datagram socket (tests/notifysock.py); the camera is a replay folder.  To
hang the camera thread for real, a frame file is swapped for a FIFO with no writer after the
camera has listed the folder: opening it blocks, exactly like a driver read that never returns.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.testing.samples import write_sequence
from tests.notifysock import FakeSystemd

REPO = Path(__file__).resolve().parents[1]
WATCHDOG_USEC = 1_000_000  # pings every 0.5 s


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    write_sequence(folder, code_frames=2, gap_frames=2)
    return folder


def start(tmp_path: Path, camera: str, fake: FakeSystemd, extra_config: str = ""):
    config = tmp_path / "kiosk.toml"
    config.write_text('[policy]\nprofile = "hospital"\nwatchlist = false\n'
                      '[signals]\npin_factory = "mock"\n' + extra_config, encoding="utf-8")
    env = {**os.environ, **fake.env(WATCHDOG_USEC), "CHECKPOINT_KIOSK_LOG_LEVEL": "INFO"}
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk", "run", "--config", str(config), "--headless",
         "--camera", camera, "--db", str(tmp_path / "k.db")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return proc.returncode, err


def test_ready_then_periodic_watchdog_status_and_stopping_on_sigterm(frames, tmp_path):
    with FakeSystemd() as fake:
        proc = start(tmp_path, f"replay:{frames},fps=10,loop", fake)
        try:
            ready = fake.wait_for("READY", timeout=30)
            time.sleep(2.6)
            pings = fake.times("WATCHDOG", since=ready)
            # 0.5 s period over 2.6 s: 5 or 6 pings, evenly spaced.
            assert 4 <= len(pings) <= 7, pings
            gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
            assert all(0.3 < g < 0.8 for g in gaps), gaps
            assert proc.poll() is None
            sent_sigterm = time.monotonic()
        finally:
            code, err = stop(proc)
        assert code == 0, err
        assert fake.values("READY") == ["1"]
        status = fake.values("STATUS")
        assert status[0].startswith("scanning; sync off"), status
        stopping = fake.times("STOPPING")
        assert len(stopping) == 1 and stopping[0] >= sent_sigterm
        assert "SIGTERM received" in err


def test_pings_stop_while_the_camera_thread_hangs_and_resume_after(frames, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for src in sorted(frames.glob("*.png"))[:8]:
        shutil.copy(src, folder / src.name)
    hang = folder / "00004-hang.png"  # the sixth frame
    shutil.copy(src, hang)
    with FakeSystemd() as fake:
        proc = start(tmp_path, f"replay:{folder},fps=4,loop", fake,
                     "[camera]\nretry_max_seconds = 0.1\n")
        try:
            fake.wait_for("READY", timeout=30)  # the camera has listed the folder
            fifo = tmp_path / "fifo"
            os.mkfifo(fifo)
            os.replace(fifo, hang)
            hung_from = time.monotonic() + 5 / 4  # the camera reaches the FIFO after 5 frames
            # Allowed silence: retry_max_seconds + 5 s grace, plus one ping period.
            time.sleep(1.25 + 5.1 + 1.0)
            last_ping = fake.times("WATCHDOG")[-1]
            assert hung_from + 4 < last_ping < hung_from + 5.1 + 0.6
            time.sleep(1.5)
            silent = time.monotonic()
            assert fake.times("WATCHDOG", since=last_ping + 0.01) == []
            assert proc.poll() is None  # systemd, not the kiosk, decides to restart
            assert any(v.startswith("HUNG: camera") for v in fake.values("STATUS"))
            # Unblock the open(): the camera skips the non-image, loops on, the pings return.
            with open(hang, "wb"):
                pass
            fake.wait_for("WATCHDOG", timeout=5, since=silent)
        finally:
            code, err = stop(proc)
        assert "watchdog: camera not alive" in err
        assert "every part is alive again" in err
