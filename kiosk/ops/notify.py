"""Talking to systemd: sd_notify (READY, WATCHDOG, STATUS, STOPPING) and journal fields.

The kiosk runs as a ``Type=notify`` service with ``WatchdogSec=``.  :class:`Supervisor` is fed
from the main loop (the screen's frame loop, or the headless loop): it sends ``READY=1`` once
the kiosk is really up, ``WATCHDOG=1`` only while every part it watches is alive, and a short
``STATUS=`` line.  A part that hangs stops the pings and systemd restarts the service; nothing
here ever kills the process itself.

Without systemd (a laptop, a test, ``NOTIFY_SOCKET`` unset) every call is a cheap no-op.
systemd-python is used when installed; otherwise a small built-in sender speaks the same
datagram protocol, so a missing optional package never disables the watchdog.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.config import Config
    from kiosk.runtime.build import Parts

log = logging.getLogger(__name__)

# How long a background thread may go without turning before it counts as hung, on top of
# the longest legitimate wait it does (a camera backoff, a request timeout).
GRACE_SECONDS = 5.0
# STATUS= is re-sent at most this often (it lives in PID 1's memory: no disk writes).
STATUS_SECONDS = 5.0


def watchdog_seconds(environ: Mapping[str, str] | None = None) -> float | None:
    """The service's watchdog timeout from ``WATCHDOG_USEC``, if it applies to this process."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec:
        return None
    # WATCHDOG_PID names the main process; a child that inherited the variables must not ping.
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a whole number of microseconds", usec)
        return None
    return value / 1e6 if value > 0 else None


def _socket_send(message: str) -> bool:
    """sd_notify(3) without libsystemd: one datagram to ``$NOTIFY_SOCKET``."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return False
    if path.startswith("@"):  # abstract namespace
        path = "\0" + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(path)
        sock.sendall(message.encode("utf-8"))
    return True


def _systemd_send() -> Callable[[str], bool] | None:
    try:
        from systemd import daemon
    except ImportError:
        return None
    notify: Callable[[str], bool] = daemon.notify  # systemd-python has no type hints
    return notify


class Notifier:
    """Sends sd_notify messages; a no-op when the kiosk was not started by systemd.

    ``backend`` is ``"auto"`` (systemd-python if installed, else the built-in sender),
    ``"systemd"`` or ``"socket"``.
    """

    def __init__(self, *, backend: str = "auto") -> None:
        if backend not in ("auto", "systemd", "socket"):
            raise ValueError(f"notify backend {backend!r} must be 'auto', 'systemd' or 'socket'")
        send = _systemd_send() if backend in ("auto", "systemd") else None
        if send is None and backend == "systemd":
            raise ValueError("notify backend 'systemd' needs systemd-python: "
                             "pip install 'checkpoint-kiosk[systemd]'")
        self.backend = "systemd" if send is not None else "socket"
        self._send = send or _socket_send
        self.socket_path = os.environ.get("NOTIFY_SOCKET") or None
        self.watchdog_seconds = watchdog_seconds()
        self._failed = False
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self.socket_path is not None and not self._closed

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines (``notify(READY=1, STATUS="...")``); True if sent."""
        if not self.enabled:
            return False
        message = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        try:
            sent = bool(self._send(message))
        except OSError as e:
            # A stale NOTIFY_SOCKET (systemd restarted, a copied environment) must not stop
            # the kiosk; say it once.  Without pings systemd restarts us anyway.
            if not self._failed:
                log.warning("cannot notify systemd at %s: %s", self.socket_path, e)
                self._failed = True
            return False
        if self._failed and sent:
            log.info("notifying systemd works again")
            self._failed = False
        return sent

    def ready(self, status: str | None = None) -> bool:
        fields: dict[str, str | int] = {"READY": 1}
        if status:
            fields["STATUS"] = status
        return self.notify(**fields)

    def ping(self) -> bool:
        return self.notify(WATCHDOG=1)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify(STOPPING=1, STATUS=status)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _one_line(value: str | int) -> str:
    # A newline would start a new KEY=value assignment inside the datagram.
    return " ".join(str(value).split())


class Supervisor:
    """Fed once per main-loop turn; decides READY, WATCHDOG and STATUS.

    ``alive`` maps a part's name to a check that is True while that part is turning; the main
    loop itself is watched implicitly (a hung loop stops calling :meth:`tick`).  ``ready``
    says the kiosk is up.  If it is not up after ``ready_grace`` seconds READY is sent anyway
    with the fault in STATUS: the screen then shows the fault and officers can enter numbers,
    where a start timeout would only reboot-loop a kiosk whose camera is broken.
    """

    def __init__(
        self,
        notifier: Notifier,
        *,
        alive: Mapping[str, Callable[[], bool]],
        ready: Callable[[], bool],
        status: Callable[[], str] = lambda: "",
        ready_grace: float = 45.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier = notifier
        self.alive = dict(alive)
        self._ready_check = ready
        self._status_text = status
        self.ready_grace = ready_grace
        self._clock = clock
        self._started = clock()
        wd = notifier.watchdog_seconds
        # sd_watchdog_enabled(3): ping at half the timeout.
        self.ping_every = wd / 2 if wd else None
        self.is_ready = False
        self._next_ping = self._started
        self._next_status = self._started
        self._last_status: str | None = None
        self._dead: tuple[str, ...] = ()
        self._stopped = False
        self.pings = 0

    def tick(self) -> None:
        if self._stopped:
            return
        now = self._clock()
        if not self.is_ready:
            self._try_ready(now)
        if self.ping_every is not None and now >= self._next_ping:
            self._next_ping = now + self.ping_every
            dead = tuple(name for name, check in self.alive.items() if not _safe(check))
            if dead != self._dead:
                if dead:
                    log.error("watchdog: %s not alive; no longer feeding systemd, which will "
                              "restart the kiosk if it does not recover", ", ".join(dead))
                else:
                    log.info("watchdog: every part is alive again")
                self._dead = dead
                self._next_status = now  # say it in STATUS at once
            if not dead and self.notifier.ping():
                self.pings += 1
        if self.is_ready and now >= self._next_status:
            self._next_status = now + STATUS_SECONDS
            self._send_status()

    def _try_ready(self, now: float) -> None:
        up = _safe(self._ready_check)
        if not up and now - self._started < self.ready_grace:
            return
        self.is_ready = True
        text = self._status()
        if not up:
            log.error("not fully up after %.0f s; telling systemd we are ready anyway so the "
                      "screen can show the fault (%s)", self.ready_grace, text)
        self.notifier.ready(text)
        self._last_status = text
        self._next_status = now + STATUS_SECONDS
        log.info("ready: %s", text)

    def _status(self) -> str:
        try:
            text = self._status_text()
        except Exception as e:  # a status line must never stop the loop
            log.debug("status text failed", exc_info=True)
            text = f"status unknown ({type(e).__name__})"
        if self._dead:
            text = f"HUNG: {', '.join(self._dead)}; {text}"
        return text

    def _send_status(self) -> None:
        text = self._status()
        if text != self._last_status:
            self._last_status = text
            self.notifier.status(text)

    def stopping(self) -> None:
        """Tell systemd we are shutting down (idempotent)."""
        if not self._stopped:
            self._stopped = True
            self.notifier.stopping()

    close = stopping

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        log.exception("a liveness check failed; counting the part as not alive")
        return False


# -- what the kiosk watches ------------------------------------------------------------------


def heartbeat_alive(obj: Any, max_age: float, *, clock: Callable[[], float] = time.monotonic
                    ) -> Callable[[], bool]:
    """A check that ``obj.heartbeat`` (a monotonic time) is younger than ``max_age`` s."""
    return lambda: clock() - obj.heartbeat < max_age


def kiosk_checks(parts: Parts, cfg: Config) -> dict[str, Callable[[], bool]]:
    """Liveness checks for the parts ``kiosk.runtime.build.build`` made (camera threads, sync
    worker)."""
    checks: dict[str, Callable[[], bool]] = {}
    pipeline = parts.pipeline
    if pipeline is not None:
        # The camera thread legitimately waits up to retry_max_seconds between reopen attempts.
        camera_age = cfg.camera.retry_max_seconds + GRACE_SECONDS
        checks["camera"] = lambda: pipeline.alive(max_age=camera_age)
    if parts.sync is not None:
        # A request may legitimately take connect + read timeout; the worker's waits turn
        # every 5 s.  A worker silent for longer than that is stuck.
        sync_age = max(60.0, 3 * cfg.sync.timeout_seconds + 2 * GRACE_SECONDS)
        checks["sync"] = heartbeat_alive(parts.sync, sync_age)
    scanner = parts.scanner
    if scanner is not None:
        # Its thread waits up to retry_max_seconds between attempts to reopen an unplugged
        # scanner: an unplugged scanner is a fault on the screen, not a reason to restart.
        scanner_age = cfg.scanner.retry_max_seconds + GRACE_SECONDS
        checks["scanner"] = lambda: scanner.alive(max_age=scanner_age)
    return checks


def kiosk_ready(parts: Parts) -> Callable[[], bool]:
    """Up = the camera is healthy and has delivered a frame (the caller only ticks once the
    screen is up)."""
    pipeline = parts.pipeline
    if pipeline is None:
        return lambda: True
    return lambda: bool(pipeline.ok and pipeline.frames > 0)


def status_line(health: Any) -> str:
    """The ``STATUS=`` text from a scan-loop Health: no personal data, one line."""
    bits = []
    if not health.camera_ok:
        bits.append(f"camera fault: {health.camera_message or 'unknown'}")
    if not health.store_ok:
        bits.append(f"store fault: {health.store_message or 'unknown'}")
    if health.scanner_configured and not health.scanner_ok:
        bits.append(f"scanner fault: {health.scanner_message or 'unknown'}")
    if not bits:
        bits.append("scanning")
    if health.online is None:
        bits.append("sync off")
    else:
        bits.append(f"backlog {health.backlog}")
        last = health.last_sync
        bits.append("last sync " + (last.astimezone().strftime("%Y-%m-%d %H:%M")
                                    if last else "never"))
        if not health.online:
            bits.append("offline")
        if health.reprovision_needed:
            bits.append("re-provision needed")
    if health.disk_low:
        bits.append("disk low")
    if not health.clock_synced:
        bits.append("clock not synced")
    return "; ".join(bits)


# -- the journal -----------------------------------------------------------------------------

# Structured fields the journal gets from log records (``extra=``); never personal data.
JOURNAL_FIELDS = ("checkin_id", "decision", "kind", "reasons", "source", "direction")


class CheckinFields(logging.Filter):
    """Adds CHECKIN_ID, DECISION, KIND, REASONS to the scan loop's "check-in ..." records.

    Records that carry these names in ``extra=`` keep them; the scan loop's current line
    (``"check-in %s: %s %s (%s)"``: id, kind, decision, reasons) is read from its arguments,
    which by design hold no personal data.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.name == "kiosk.runtime.scanloop" and isinstance(record.msg, str)
                and record.msg.startswith("check-in %s:") and isinstance(record.args, tuple)
                and len(record.args) == 4 and not hasattr(record, "decision")):
            checkin_id, kind, decision, reasons = record.args
            record.checkin_id = "" if checkin_id in (None, "-") else str(checkin_id)
            record.kind, record.decision, record.reasons = str(kind), str(decision), str(reasons)
        return True


def journal_handler(*, sender: Callable[..., Any] | None = None) -> logging.Handler | None:
    """A handler that writes to the journal with structured fields, or None without
    systemd-python.  ``sender`` replaces ``systemd.journal.send`` (tests)."""
    try:
        from systemd import journal
    except ImportError:
        return None

    class _Handler(journal.JournalHandler):
        def emit(self, record: logging.LogRecord) -> None:
            # The stock emit() sends every record attribute (and CODE_ARGS) as a field; send
            # only the message and the whitelisted fields, so nothing personal slips through.
            try:
                fields = {name.upper(): str(getattr(record, name)) for name in JOURNAL_FIELDS
                          if getattr(record, name, None) not in (None, "")}
                self.send(self.format(record), PRIORITY=str(self.map_priority(record.levelno)),
                          LOGGER=record.name, THREAD_NAME=record.threadName,
                          CODE_FILE=record.pathname, CODE_LINE=record.lineno,
                          CODE_FUNC=record.funcName, **self._extra, **fields)
            except Exception:
                self.handleError(record)

    kw: dict[str, Any] = {"SYSLOG_IDENTIFIER": "checkpoint-kiosk"}
    if sender is not None:
        kw["sender_function"] = sender
    handler = _Handler(**kw)
    handler.addFilter(CheckinFields())
    return handler


def journal_is_stderr() -> bool:
    """True when stderr is connected to the journal (systemd sets ``JOURNAL_STREAM``)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = stream.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(2)
    except OSError:
        return False
    return st.st_dev == int(dev) and st.st_ino == int(ino)


def use_journal() -> bool:
    """Swap the root log handler for the structured journal handler when under systemd."""
    if not journal_is_stderr():
        return False
    handler = journal_handler()
    if handler is None:
        return False
    root = logging.getLogger()
    handler.setLevel(root.level)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    return True
