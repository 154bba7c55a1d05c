"""kiosk.ops.notify in-process: the sd_notify sender, the supervisor, journal fields."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest

from kiosk.ops import notify
from offline_queue.records import CheckIn
from offline_queue.store import Store
from offline_queue.sync import SyncWorker
from tests.notifysock import FakeSystemd


@pytest.fixture
def fake(monkeypatch):
    with FakeSystemd() as fake:
        for key, value in fake.env(watchdog_usec=400_000).items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        yield fake


def test_without_systemd_every_call_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    with notify.Notifier() as n:
        assert not n.enabled and n.watchdog_seconds is None
        assert n.ready("x") is False and n.ping() is False and n.stopping() is False
    sup = notify.Supervisor(n, alive={}, ready=lambda: True)
    sup.tick()
    assert sup.is_ready and sup.pings == 0


@pytest.mark.parametrize("backend", ["systemd", "socket"])
def test_both_backends_speak_the_datagram_protocol(fake, backend):
    with notify.Notifier(backend=backend) as n:
        assert n.backend == backend and n.watchdog_seconds == 0.4
        assert n.ready("up\nWATCHDOG=1")  # a newline must not smuggle in a second field
        assert n.ping()
        assert n.stopping()
    fake.wait_for("STOPPING", timeout=2)
    assert [f for _, f in fake.messages] == [
        {"READY": "1", "STATUS": "up WATCHDOG=1"}, {"WATCHDOG": "1"},
        {"STOPPING": "1", "STATUS": "stopping"}]


def test_a_stale_socket_is_reported_once_and_never_raises(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
    with notify.Notifier() as n:
        with caplog.at_level(logging.WARNING, "kiosk.ops.notify"):
            assert n.ping() is False
            assert n.ping() is False
    assert len([r for r in caplog.records if "cannot notify systemd" in r.message]) == 1


def test_watchdog_usec_only_applies_to_the_main_process():
    assert notify.watchdog_seconds({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert notify.watchdog_seconds({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert notify.watchdog_seconds({"WATCHDOG_USEC": "soon"}) is None
    assert notify.watchdog_seconds({}) is None


def test_ready_waits_for_the_kiosk_then_gives_up_after_the_grace(fake):
    now = [0.0]
    up = [False]
    sup = notify.Supervisor(notify.Notifier(), alive={}, ready=lambda: up[0],
                            status=lambda: "camera fault: none", ready_grace=45,
                            clock=lambda: now[0])
    sup.tick()
    now[0] = 44.0
    sup.tick()
    assert not sup.is_ready
    now[0] = 45.0
    sup.tick()  # a broken camera: READY anyway, so the screen shows the fault
    assert sup.is_ready
    fake.wait_for("READY", timeout=2)
    assert fake.values("STATUS")[0] == "camera fault: none"


class TricklingServer:
    """An HTTP server that answers 404 at once, or, once ``hang`` is set, sends headers and
    then one body byte every 0.2 s forever: each read finishes within the client's timeout,
    so the request itself never does (a broken proxy on a bad link)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.hang = threading.Event()
        self.stop = threading.Event()
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            while True:
                data = b""
                while b"\r\n\r\n" not in data:
                    try:
                        chunk = conn.recv(4096)
                    except OSError:
                        return
                    if not chunk:
                        return
                    data += chunk
                self.requests += 1
                if self.hang.is_set():
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                    while not self.stop.wait(0.2):
                        conn.sendall(b" ")
                    return
                body = b'{"error": "not published"}'
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def test_pings_stop_when_the_sync_worker_hangs(fake, tmp_path):
    db = tmp_path / "k.db"
    store = Store(db, device_id="d", checkpoint_id="c")
    server = TricklingServer()
    # A total deadline (issue 9 #5) far past the test: the trickle holds the worker.
    worker = SyncWorker(db_path=db, server_url=server.url, token="t", connect_timeout=1,
                        read_timeout=1, total_timeout=60, boot_jitter=0, idle_interval=0.1)
    try:
        worker.start()
        sup = notify.Supervisor(notify.Notifier(), ready=lambda: True,
                                alive={"sync": notify.heartbeat_alive(worker, 1.5)})
        t0 = time.monotonic()
        while time.monotonic() < t0 + 1.5:
            sup.tick()
            time.sleep(0.02)
        before = len(fake.times("WATCHDOG"))
        assert before >= 6 and server.requests >= 3  # a healthy worker loops; pings flow
        server.hang.set()
        # A check-in to deliver: the worker posts it and the answer never ends.
        store.record(CheckIn(direction="in", kind="cccd", person_key="001185012345"))
        worker.poke()
        hung = time.monotonic()
        while time.monotonic() < hung + 4:
            sup.tick()
            time.sleep(0.02)
        last = fake.times("WATCHDOG")[-1]
        # Silent from at most max_age (1.5 s) + one idle turn + one ping period after the hang.
        assert last < hung + 1.5 + 0.1 + 0.2 + 0.2
        assert fake.times("WATCHDOG", since=hung + 2.2) == []
        assert any(v.startswith("HUNG: sync") for v in fake.values("STATUS"))
    finally:
        server.close()  # the trickle stops, the request fails, the worker can be joined
        worker.close()
        store.close()


def test_journal_gets_checkin_fields_and_nothing_personal():
    sent = []
    handler = notify.journal_handler(sender=lambda msg, **fields: sent.append((msg, fields)))
    assert handler is not None
    logger = logging.getLogger("kiosk.runtime.scanloop")
    logger.addHandler(handler)
    try:
        logger.warning("check-in %s: %s %s (%s)", "0190-abc", "cccd", "check", "gender_mismatch",
                       extra={"person_name": "Trần Thị Bích Ngọc"})
    finally:
        logger.removeHandler(handler)
    (msg, fields), = sent
    assert msg == "check-in 0190-abc: cccd check (gender_mismatch)"
    assert fields["CHECKIN_ID"] == "0190-abc" and fields["DECISION"] == "check"
    assert fields["KIND"] == "cccd" and fields["REASONS"] == "gender_mismatch"
    assert fields["SYSLOG_IDENTIFIER"] == "checkpoint-kiosk" and fields["PRIORITY"] == "4"
    assert "Ngọc" not in repr(fields) and "CODE_ARGS" not in fields


def test_status_line_has_backlog_and_last_sync_and_faults():
    from datetime import UTC, datetime

    from kiosk.runtime.events import Health

    h = Health(camera_ok=False, camera_message="no camera", store_ok=True, store_message=None,
               disk_low=True, online=False, backlog=12,
               last_sync=datetime(2024, 5, 1, 3, 4, tzinfo=UTC), reprovision_needed=True,
               clock_synced=True, trust_list_age=None)
    line = notify.status_line(h)
    assert line.startswith("camera fault: no camera; backlog 12; last sync 2024-05-01 ")
    assert line.endswith("; offline; re-provision needed; disk low")


class _SuppliedFeed:
    """A frame source as ``Supplied(pipeline=...)`` documents it (the ports.FrameSource
    protocol), not a CapturePipeline: the watchdog must judge it through the protocol."""

    ok = True
    message = None
    frames = 0

    def latest_frame(self):
        return None

    def alive(self, *, max_age: float) -> bool:
        return True


def test_the_watchdog_judges_a_supplied_frame_source_by_its_protocol(caplog):
    from types import SimpleNamespace

    from kiosk.config import Config
    from kiosk.ops.notify import kiosk_checks, kiosk_ready

    feed = _SuppliedFeed()
    parts = SimpleNamespace(pipeline=feed, sync=None, scanner=None)
    ready = kiosk_ready(parts)
    checks = kiosk_checks(parts, Config())
    assert ready() is False  # no frame yet
    feed.frames = 1
    assert ready() is True and checks["camera"]() is True
    feed.ok = False
    assert ready() is False
    assert "liveness check failed" not in caplog.text


def test_a_configured_scanner_is_watched_and_its_fault_is_in_the_status_line():
    from types import SimpleNamespace

    from kiosk.config import Config
    from kiosk.ops.notify import kiosk_checks, status_line

    class Scanner:
        def alive(self, *, max_age: float) -> bool:
            return max_age > 5

    checks = kiosk_checks(SimpleNamespace(pipeline=None, sync=None, scanner=Scanner()),
                          Config())
    assert checks["scanner"]() is True
    health = SimpleNamespace(camera_ok=True, store_ok=True, scanner_configured=True,
                             scanner_ok=False, scanner_message="serial:/dev/ttyACM0 unplugged",
                             online=None, camera_message=None, store_message=None,
                             disk_low=False, clock_synced=True)
    assert "scanner fault: serial:/dev/ttyACM0 unplugged" in status_line(health)
