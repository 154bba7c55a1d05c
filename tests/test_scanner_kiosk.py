"""The dedicated scanner in the kiosk: scan -> dedupe -> decision -> record -> lights, with
source 'scanner'; an unplugged scanner is a fault until it is plugged in again.

The scanner is a pty pair (tests/test_scanner.py's ``Pty``) reached through a symlink, as
udev's /dev/serial/by-id/ link reaches a real one: an unplug closes the master and removes
the link, a replug makes a new pty and points the link at it.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from kiosk import config as config_mod
from kiosk.domain.credentials import recognise
from kiosk.domain.model import Outcome
from kiosk.ops import selftest, status
from kiosk.runtime.events import DeviceStatus, Health, Scanned, ScanResult
from kiosk.runtime.scanloop import ScanLoop
from kiosk.runtime.scanner import ScannerFeed
from kiosk.testing.samples import SAMPLES
from offline_queue.store import Store
from tests.test_scanloop import RecognisedPasses
from tests.test_scanner import Pty

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = {s.name: s.payload for s in SAMPLES}


class Port:
    """A scanner that can be unplugged and plugged in again at one stable path."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.pty: Pty | None = None
        self.plug()

    def plug(self) -> None:
        self.pty = Pty()
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(self.pty.path)

    def unplug(self) -> None:
        assert self.pty is not None
        self.pty.unplug()
        self.link.unlink()
        self.pty = None

    def scan(self, payload: str) -> None:
        assert self.pty is not None
        self.pty.send(payload.encode("utf-8") + b"\r\n")

    def close(self) -> None:
        if self.pty is not None:
            self.pty.unplug()


@pytest.fixture
def port(tmp_path):
    p = Port(tmp_path / "ttyACM0")
    yield p
    p.close()


def wait_for(what, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- the loop with a real feed, a real store -----------------------------------------------


@pytest.fixture
def loop_and_feed(tmp_path, port):
    from hardware.scanner import open_scanner

    events: queue.Queue = queue.Queue()
    spec = f"serial:{port.link}"
    with Store(tmp_path / "k.db", device_id="dev-1", checkpoint_id="cp-1") as store, \
            ScannerFeed(open_scanner=lambda: open_scanner(spec), events=events, spec=spec,
                        retry_initial=0.05, retry_max=0.2) as feed:
        loop = ScanLoop(store=store, checker=RecognisedPasses(), recognise=recognise,
                        scanner=feed, events=events, dedupe_seconds=3.0)
        yield loop, feed, tmp_path / "k.db"


def results(loop, n, timeout=10.0):
    out: list = []
    deadline = time.monotonic() + timeout
    while len([r for r in out if isinstance(r, ScanResult)]) < n:
        assert time.monotonic() < deadline, f"only {out!r}"
        out += loop.step(timeout=0.1)
    return [r for r in out if isinstance(r, ScanResult)]


def test_a_scan_is_decided_recorded_with_source_scanner(loop_and_feed, port):
    loop, feed, db = loop_and_feed
    wait_for("the scanner to open", lambda: feed.ok)
    port.scan(PAYLOAD["cccd"])
    (result,) = results(loop, 1)
    assert result.source == "scanner" and result.decision.outcome is Outcome.PASS
    assert result.credential.person_key == "001185012345"  # the Vietnamese name came through
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select id, source, kind, person_key, identity "
                            "from checkins").fetchall()
    # The number is not on disk: no sealing key here, so it waits in RAM (docs/privacy.md).
    assert rows == [(result.checkin_id, "scanner", "cccd", None, "waiting")]


def test_the_same_code_scanned_twice_in_the_window_is_one_check_in(loop_and_feed, port):
    loop, feed, db = loop_and_feed
    wait_for("the scanner to open", lambda: feed.ok)
    port.scan(PAYLOAD["pc_covid"])
    port.scan(PAYLOAD["pc_covid"])
    port.scan(PAYLOAD["cccd"])
    got = results(loop, 2)
    time.sleep(0.3)
    got += [r for r in loop.step(timeout=0.2) if isinstance(r, ScanResult)]
    assert [r.credential.kind for r in got] == ["pc_covid", "cccd"]


def test_garbage_binary_and_a_megabyte_line_are_not_recognised_and_record_nothing(
        loop_and_feed, port):
    loop, feed, db = loop_and_feed
    wait_for("the scanner to open", lambda: feed.ok)
    writer = threading.Thread(target=port.pty.send, args=(
        b"\x00\xff\xfe garbage \x1b[2J\r" + b"Z" * 2**20 + b"\r\n",))
    writer.start()
    got = results(loop, 2, timeout=30)
    writer.join(10)
    assert [r.decision.outcome for r in got] == [Outcome.CHECK, Outcome.CHECK]
    assert not any(r.recorded for r in got)
    assert "scanner_line_too_long" in got[1].decision.reasons
    port.scan(PAYLOAD["cccd"])  # the input is not stuck
    (ok,) = results(loop, 1)
    assert ok.recorded and ok.source == "scanner"


def test_unplugged_is_a_fault_with_the_scanner_named_and_a_replug_clears_it(
        loop_and_feed, port):
    loop, feed, db = loop_and_feed
    wait_for("the scanner to open", lambda: feed.ok)
    loop.step(timeout=0.1)
    assert not loop.health().fault
    port.scan("001185012345|012345678|Trần")  # and the cable is pulled mid-line
    time.sleep(0.05)
    port.unplug()

    def fault():
        items = [h for h in loop.step(timeout=0.1) if isinstance(h, Health)]
        return next((h for h in items if not h.scanner_ok), None)

    health = wait_for("the fault", fault)
    assert health.fault and health.scanner_configured
    assert str(port.link) in health.scanner_message
    assert health.camera_ok  # the camera (none here) is not blamed
    assert feed.opened == 1
    port.plug()
    wait_for("the replug", lambda: feed.ok and feed.opened == 2)
    port.scan(PAYLOAD["cccd"])
    (result,) = results(loop, 1)
    assert result.recorded and not loop.health().fault
    with sqlite3.connect(db) as conn:  # the half line before the unplug left nothing
        assert conn.execute("select count(*) from checkins").fetchone() == (1,)


def test_status_events_carry_the_source(tmp_path):
    events: queue.Queue = queue.Queue()
    spec = f"serial:{tmp_path / 'nothing'}"

    def missing():
        from hardware.scanner import open_scanner

        return open_scanner(spec)

    with ScannerFeed(open_scanner=missing, events=events, spec=spec, retry_initial=0.05,
                     retry_max=0.1) as feed:
        status_event = events.get(timeout=5)
        assert isinstance(status_event, DeviceStatus) and status_event.source == "scanner"
        assert not status_event.ok and "plugged in" in status_event.message
        assert feed.alive()
    assert not feed.alive()


def test_a_scanned_event_is_the_decoded_event(tmp_path):
    from kiosk.runtime.capture import Decoded

    assert issubclass(Scanned, Decoded)  # the screen's claim() and the loop take it as one


# -- the headless kiosk, a real process ----------------------------------------------------


@pytest.fixture
def blank_camera(tmp_path):
    folder = tmp_path / "camera"
    folder.mkdir()
    Image.new("L", (160, 120), 128).save(folder / "000.png")
    return f"replay:{folder},fps=5,loop"


class Process:
    """A kiosk process whose stderr is collected line by line while it runs."""

    def __init__(self, args, env=None):
        self.proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def count(self, text):
        return sum(text in line for line in self.lines)

    def wait_log(self, text, n=1, timeout=20):
        wait_for(f"{text!r} x{n} in the log:\n{''.join(self.lines)}",
                 lambda: self.count(text) >= n or self.proc.poll() is not None, timeout)
        assert self.count(text) >= n, "".join(self.lines)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        self._reader.join(5)
        return self.proc.returncode, "".join(self.lines)


def scanner_rows(db):
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        return conn.execute("select kind, identity, decision, source from checkins "
                            "where source = 'scanner' order by seq").fetchall()


def test_headless_kiosk_records_scans_shows_the_unplug_and_records_again_after_replug(
        tmp_path, port, blank_camera):
    config = tmp_path / "kiosk.toml"
    config.write_text('[policy]\nprofile = "hospital"\nwatchlist = false\n'
                      '[signals]\npin_factory = "mock"\n[scanner]\nretry_max_seconds = 0.5\n',
                      encoding="utf-8")
    db = tmp_path / "k.db"
    kiosk = Process([sys.executable, "-m", "kiosk", "run", "--config", str(config),
                     "--headless", "--camera", blank_camera, "--scanner",
                     f"serial:{port.link}", "--db", str(db)],
                    env={**os.environ, "CHECKPOINT_KIOSK_LOG_LEVEL": "INFO"})
    try:
        kiosk.wait_log(f"scanner serial:{port.link} open")
        port.scan(PAYLOAD["cccd"])
        wait_for("the first scan's record", lambda: scanner_rows(db))
        port.unplug()
        kiosk.wait_log("scanner lost")
        kiosk.wait_log("kiosk fault: camera=None store=None scanner=scanner")
        port.plug()
        kiosk.wait_log(f"scanner serial:{port.link} open", n=2)
        port.scan(PAYLOAD["pc_covid"])
        wait_for("the second scan's record", lambda: len(scanner_rows(db)) == 2)
    finally:
        code, err = kiosk.stop()
    assert code == 0, err
    assert scanner_rows(db) == [("cccd", "waiting", "pass", "scanner"),
                                ("pc_covid", "waiting", "pass", "scanner")]
    assert "Traceback" not in err
    for secret in ("Trần", "Bích Ngọc", "NGUYEN VAN BINH"):
        assert secret not in err  # names never reach the log at INFO


def test_a_bad_scanner_spec_stops_start_up_with_one_clear_line(tmp_path, blank_camera):
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "run", "--headless", "--camera", blank_camera,
         "--scanner", "usb:/dev/ttyACM0", "--db", str(tmp_path / "k.db"), "--max-seconds", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "checkpoint-kiosk: error: scanner.spec: scanner spec 'usb:/dev/ttyACM0' is not "
        "recognised; use 'serial:/dev/ttyACM0[,baud=N]' or "
        "'hid:/dev/input/by-id/...-event-kbd'")


def test_the_demo_takes_a_scanner_and_its_scans_reach_the_central(tmp_path, port):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    env.pop("GPIOZERO_PIN_FACTORY", None)
    data = tmp_path / "demo"
    demo = Process([sys.executable, "-m", "kiosk", "demo", "--data-dir", str(data),
                    "--headless", "--max-seconds", "40", "--scanner", f"serial:{port.link}"],
                   env=env)
    try:
        demo.wait_log(f"scanner serial:{port.link} open", timeout=60)
        # The demo's hospital policy and watchlist decide a scanned code as a camera's.
        port.scan(PAYLOAD["watchlisted"])

        def central_scanner_rows():
            out = subprocess.run(
                [sys.executable, "-m", "kiosk", "central", "export", "--db",
                 str(data / "central.db")], cwd=REPO, capture_output=True, text=True)
            rows = [json.loads(line) for line in out.stdout.splitlines()]
            return [r for r in rows if r["source"] == "scanner"]

        (row,) = wait_for("the scan at the central", central_scanner_rows, timeout=30)
    finally:
        code, err = demo.stop()
    assert code == 0, err
    assert (row["kind"], row["decision"]) == ("cccd", "stop")


# -- configuration, status, self-test ------------------------------------------------------


def test_config_has_a_scanner_table_and_checks_its_spec(tmp_path):
    assert "[scanner]" in config_mod.defaults_toml()
    assert config_mod.Config().scanner.spec == ""
    bad = tmp_path / "bad.toml"
    bad.write_text('[scanner]\nspec = "serial:ttyACM0"\n', encoding="utf-8")
    _cfg, problems = config_mod.check(bad, environ={})
    assert any("scanner.spec: scanner spec 'serial:ttyACM0'" in str(p) for p in problems)
    cfg = config_mod.load(None, environ={"CHECKPOINT_KIOSK_SCANNER": "hid:/dev/input/event3"})
    assert cfg.scanner.spec == "hid:/dev/input/event3"


def _cfg(tmp_path, spec):
    return config_mod.Config().replace(
        scanner={"spec": spec}, store={"path": str(tmp_path / "k.db")},
        sync={"token_file": str(tmp_path / "token")})


def test_status_says_whether_the_scanner_is_plugged_in(tmp_path, port):
    report = status.collect(_cfg(tmp_path, f"serial:{port.link}"))
    assert report["scanner"]["present"] and report["scanner"]["error"] is None
    assert f"serial:{port.link} (plugged in)" in status.format_human(report)
    port.unplug()
    report = status.collect(_cfg(tmp_path, f"serial:{port.link}"))
    assert f"scanner {port.link} is not there: is it plugged in?" in report["errors"]
    assert status.exit_status(report) == 1
    assert status.collect(_cfg(tmp_path, ""))["scanner"] is None
    not_a_device = tmp_path / "file"
    not_a_device.write_text("")
    assert "is not a device" in status.collect(
        _cfg(tmp_path, f"serial:{not_a_device}"))["scanner"]["error"]


def _scanner_check(report):
    (check,) = [c for c in report.checks if c.name == "scanner"]
    return check


def test_selftest_reads_the_test_card_from_the_scanner(tmp_path, port):
    cfg = _cfg(tmp_path, f"serial:{port.link}").replace(camera={"spec": "replay:/nonexistent"},
                                                        signals={"enabled": False})

    def scan_card_soon(step):
        # The technician scans the card once the scanner step has begun (bytes sent before
        # the port is opened are flushed by the open, as stale input should be).
        if step == "scanner":
            threading.Timer(1.0, port.scan, args=(selftest.TEST_CARD,)).start()

    check = _scanner_check(selftest.run_selftest(
        cfg, camera_seconds=0.1, card_seconds=4, progress=scan_card_soon))
    assert (check.result, check.detail) == (selftest.PASS,
                                            f"test card scanned with serial:{port.link}")


def test_selftest_scanner_unplugged_fails_and_none_configured_is_not_checked(tmp_path, port):
    port.unplug()
    cfg = _cfg(tmp_path, f"serial:{port.link}").replace(camera={"spec": "replay:/nonexistent"},
                                                        signals={"enabled": False})
    check = _scanner_check(selftest.run_selftest(cfg, camera_seconds=0.1))
    assert check.result == selftest.FAIL and "plugged in" in check.detail
    report = selftest.run_selftest(_cfg(tmp_path, "").replace(signals={"enabled": False}),
                                   frames=lambda: None, camera_seconds=0.1)
    assert "scanner" not in [c.name for c in report.checks]


def test_selftest_inside_the_kiosk_reports_the_running_feed(tmp_path):
    class Feed:
        ok, message = False, "scanner 'serial:/dev/ttyACM0': /dev/ttyACM0 cannot be opened"

    cfg = _cfg(tmp_path, "serial:/dev/ttyACM0").replace(signals={"enabled": False})
    check = _scanner_check(selftest.run_selftest(cfg, frames=lambda: None, scanner=Feed(),
                                                 camera_seconds=0.1))
    assert check.result == selftest.FAIL and check.detail.startswith(Feed.message)
    # Inside the kiosk without its feed (the frames are the kiosk's): never opened here.
    check = _scanner_check(selftest.run_selftest(cfg, frames=lambda: None, camera_seconds=0.1))
    assert check.result == selftest.SKIP and "held by the running kiosk" in check.detail
