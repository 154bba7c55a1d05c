"""The technician's self-test: every part a checkpoint depends on, pass or fail with a reason.

:func:`run_selftest` is a library function: ``checkpoint-kiosk selftest`` calls it with devices
it opens itself; the officer panel calls it from inside the running kiosk with the kiosk's own
camera pipeline and lights (a second process could not open them) and its own ``confirm``.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.terminal import printable, printable_json
from offline_queue.disk import disk_space

if TYPE_CHECKING:  # imported when a check runs: the command starts fast
    import requests

    from hardware.camera import CameraSettings
    from hardware.signals import Signals
    from kiosk.config import Config
    from kiosk.runtime.scanner import DeviceState

log = logging.getLogger(__name__)

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
TEST_CARD = "CKTEST:checkpoint-kiosk test card 1"
CLOCK_TOLERANCE = timedelta(minutes=2)


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # pass | warn | fail | skip
    detail: str
    seconds: float = 0.0


@dataclass(frozen=True)
class SelfTestReport:
    checks: tuple[Check, ...]
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def ok(self) -> bool:
        """Pass unless a check failed (warnings and skips do not fail the test)."""
        return all(c.result != FAIL for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "at": self.at, "checks": [asdict(c) for c in self.checks]}

    def to_json(self) -> str:
        return printable_json(self.as_dict(), indent=1)

    def human(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        # Details quote servers and devices: no raw control characters to the terminal.
        lines = [printable(f"{c.result.upper():<5} {c.name:<{width}}  {c.detail}", keep="")
                 for c in self.checks]
        lines.append("SELF-TEST PASSED" if self.ok else "SELF-TEST FAILED")
        return "\n".join(lines)


def test_card_image(module_px: int = 8) -> Any:
    """The printable test card (a PIL image); the camera check looks for its code."""
    from hardware.images import qr_image

    return qr_image(TEST_CARD, module_px=module_px)


# A frame source returns the newest grayscale frame (numpy array) or None.
FrameSource = Callable[[], Any]
# confirm(question) -> True/False, or None when nobody can answer (non-interactive).
Confirm = Callable[[str], bool | None]


def run_selftest(
    cfg: Config,
    *,
    frames: FrameSource | None = None,
    signals: Signals | None = None,
    scanner: DeviceState | None = None,
    confirm: Confirm | None = None,
    card_seconds: float = 0.0,
    camera_seconds: float = 5.0,
    progress: Callable[[str], None] | None = None,
    session: requests.Session | None = None,
    synced_flag: Path = Path("/run/systemd/timesync/synchronized"),
) -> SelfTestReport:
    """Run every check; never raises for a failing part (that is a failed check).

    ``frames``: the running kiosk's frame source (``lambda: loop.latest_frame()``); None opens
    the configured camera here.  ``signals``: the kiosk's ``Signals``; None opens the pins
    here.  ``scanner``: the kiosk's scanner feed (its state is the check); None opens the
    configured scanner here (checked only when ``[scanner] spec`` names one).
    ``card_seconds`` > 0 waits that long for the printed test card in front of the
    camera (and then as long again for it to be scanned with the scanner); 0 decodes the
    card's image directly (the decoder works, the camera is not aimed).
    ``progress(name)`` is told each check's name before it runs.
    """
    checks: list[Check] = []
    server_time: list[datetime] = []

    def step(name: str, fn: Callable[[], tuple[str, str]]) -> None:
        if progress is not None:
            progress(name)
        t0 = time.monotonic()
        try:
            result, detail = fn()
        except Exception as e:  # a broken part is a failed check, never a crash
            log.debug("self-test %s raised", name, exc_info=True)
            result, detail = FAIL, f"{type(e).__name__}: {e}"
        checks.append(Check(name, result, detail, round(time.monotonic() - t0, 3)))

    seen: list[Any] = []
    step("camera", lambda: _camera(cfg, frames, camera_seconds, seen))
    step("test card", lambda: _card(cfg, frames, seen, card_seconds))
    if cfg.scanner.spec:
        step("scanner", lambda: _scanner(cfg, scanner, card_seconds, inside=frames is not None))
    step("lights and buzzer", lambda: _lights(cfg, signals, confirm))
    step("database", lambda: _database(cfg))
    step("disk", lambda: _disk(cfg))
    step("server", lambda: _server(cfg, session, server_time))
    step("clock", lambda: _clock(synced_flag, server_time))
    step("trust list and watchlist", lambda: _documents(cfg))
    report = SelfTestReport(tuple(checks))
    log.info("self-test %s: %s", "passed" if report.ok else "failed",
             ", ".join(f"{c.name}={c.result}" for c in checks))
    return report


def _camera(cfg: Config, frames: FrameSource | None, seconds: float, seen: list[Any]
            ) -> tuple[str, str]:
    """Frames come; with a camera opened here, also what its exposure and focus are doing.

    Inside the running kiosk (``frames`` given) the capture thread owns the camera, so only
    the frames are checked.
    """
    settings: CameraSettings | None = None
    if frames is not None:
        _gather(frames, seconds, seen)
    else:
        from kiosk.runtime.build import configured_camera

        with contextlib.closing(configured_camera(cfg)) as camera:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and len(seen) < 3:
                frame = camera.read(timeout=min(1.0, seconds))
                if frame is not None:
                    seen.append(frame.image)
            if seen:
                settings = camera.settings()
    if not seen:
        return FAIL, f"no frame from {cfg.camera.spec!r} within {seconds:.0f} s"
    shape = "x".join(str(n) for n in reversed(seen[-1].shape[:2]))
    if len(seen) < 3:
        result, detail = WARN, f"only {len(seen)} frame(s) in {seconds:.0f} s ({shape})"
    else:
        result, detail = PASS, f"{len(seen)} frames {shape} from {cfg.camera.spec}"
    if settings is not None:
        detail += f"; {settings.describe()}"
        advice = settings.advice()
        if advice:
            result = WARN
            detail += "; " + "; ".join(advice)
    return result, detail


def _gather(frames: FrameSource, seconds: float, seen: list[Any]) -> None:
    """Up to three distinct frames from the running kiosk's source within ``seconds``."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline and len(seen) < 3:
        frame = frames()
        if frame is not None and frame is not last:
            seen.append(frame)
            last = frame
        time.sleep(0.05)


def _card(cfg: Config, frames: FrameSource | None, seen: list[Any], seconds: float
          ) -> tuple[str, str]:
    import numpy as np

    from hardware.qr import open_decoder

    with contextlib.closing(open_decoder(cfg.decoder.backend)) as decoder:
        if seconds <= 0:
            card = np.asarray(test_card_image(module_px=4))
            texts = [c.text for c in decoder.decode(card)]
            if TEST_CARD in texts:
                return PASS, "decoder reads the test card image (camera not aimed at a card)"
            return FAIL, f"decoder did not read the test card image (got {len(texts)} codes)"
        deadline = time.monotonic() + seconds
        camera = None
        if frames is None:
            from kiosk.runtime.build import configured_camera

            camera = configured_camera(cfg)
        try:
            while time.monotonic() < deadline:
                if camera is not None:
                    frame = camera.read(timeout=0.5)
                    image = frame.image if frame is not None else None
                else:
                    image = frames() if frames is not None else None
                if image is not None and any(c.text == TEST_CARD for c in decoder.decode(image)):
                    return PASS, "test card read through the camera"
                time.sleep(0.02)
        finally:
            if camera is not None:
                camera.close()
    return FAIL, f"test card not seen within {seconds:.0f} s; hold it 20-40 cm from the lens"


def _scanner(cfg: Config, feed: DeviceState | None, seconds: float, *,
             inside: bool) -> tuple[str, str]:
    spec = cfg.scanner.spec
    if feed is not None:  # inside the running kiosk, which holds the device
        if feed.ok:
            return PASS, f"{spec} connected"
        return FAIL, f"{feed.message or 'not connected'}; check its USB cable (docs/scanner.md)"
    if inside:
        # The running kiosk holds the port (exclusive) or the grabbed keyboard: opening it
        # here would fail, or steal its scans.  Its state is on the status strip.
        return SKIP, f"{spec} is held by the running kiosk; its state was not passed in"
    from hardware.scanner import open_scanner

    with contextlib.closing(open_scanner(spec)) as device:  # ScannerError: a failed check
        if seconds <= 0:
            return PASS, f"{spec} opened (no test scan asked for)"
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            line = device.read(timeout=min(0.5, left))
            if line is None:
                continue
            if line.problem is not None:
                return FAIL, (f"{spec} sent a line that cannot be used ({line.problem}); "
                              "check its suffix (CR) and mode (docs/scanner.md)")
            if line.raw == TEST_CARD.encode():
                return PASS, f"test card scanned with {spec}"
            return FAIL, f"{spec} sent something other than the test card"
    return WARN, f"{spec} opened; the test card was not scanned within {seconds:.0f} s"


def _lights(cfg: Config, signals: Signals | None, confirm: Confirm | None) -> tuple[str, str]:
    if not cfg.signals.enabled:
        return SKIP, "signals disabled in the config"
    opened = None
    if signals is None:
        from hardware.signals import make_pin_factory, simulated_reason
        from kiosk.runtime.build import configured_signals

        factory = make_pin_factory(cfg.signals.pin_factory)
        if simulated_reason(factory):
            # Nobody can see a simulated light: asking would only teach "yes" to the prompt.
            factory.close()
            return WARN, f"{simulated_reason(factory)}: lights and buzzer not tested"
        opened = signals = configured_signals(cfg, factory)
    try:
        lights = signals.lights
        devices = {name: dev for name, dev in (
            ("red", lights.red), ("amber", lights.amber), ("green", lights.green),
            ("buzzer", signals.buzzer), ("gate", signals.gate), ("lamp", signals.lamp))
            if dev is not None}
        answers: dict[str, bool | None] = {}
        for name, device in devices.items():
            was_on = bool(device.is_active)  # the reading lamp is on all the time
            device.on()
            try:
                time.sleep(0.5)
                what = {"buzzer": "buzzer sounding", "gate": "gate relay clicked",
                        "lamp": "reading lamp (above the camera) on"}.get(
                    name, f"{name} light on")
                answers[name] = confirm(f"Is the {what}?") if confirm else None
                if not device.is_active:
                    answers[name] = False
            finally:
                if not was_on:
                    device.off()
    finally:
        if opened is not None:
            opened.close()
    failed = [n for n, a in answers.items() if a is False]
    if failed:
        return FAIL, f"not confirmed: {', '.join(failed)}"
    if any(a is None for a in answers.values()):
        return WARN, f"cycled {', '.join(devices)}; nobody confirmed (run interactively)"
    return PASS, f"confirmed {', '.join(devices)}"


def _database(cfg: Config) -> tuple[str, str]:
    from offline_queue.store import connect, quick_check

    path = Path(cfg.store.path)
    folder = path.parent
    # Write and read back a scratch database beside the real one: the same card, folder and
    # SQLite settings, without a test row in the check-in records.
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".selftest-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "selftest.db")
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE t (v TEXT)")
            with conn:
                conn.execute("INSERT INTO t VALUES (?)", ("ok",))
            if conn.execute("SELECT v FROM t").fetchone() != ("ok",):
                return FAIL, f"wrote a row in {folder} and read back something else"
        finally:
            conn.close()
    if not path.exists():
        return WARN, f"write/read ok in {folder}; no check-in database yet"
    db = connect(path, migrate=False)
    try:
        problems = quick_check(db)
    finally:
        db.close()
    if problems:
        return FAIL, f"{path} is damaged: {problems[0]}"
    return PASS, f"write/read ok; {path.name} quick_check ok"


def _disk(cfg: Config) -> tuple[str, str]:
    space = disk_space(Path(cfg.store.path).parent, low_below=cfg.store.disk_warn_mb * 2**20)
    if space.free_bytes is None:
        return FAIL, f"{space.error}; check that the card is mounted and readable"
    free = space.free_bytes // 2**20
    if space.low:
        return FAIL, f"{free} MiB free at {space.path} (below {cfg.store.disk_warn_mb} MiB)"
    return PASS, f"{free} MiB free at {space.path}"


def _server(cfg: Config, session: requests.Session | None, server_time: list[datetime]
            ) -> tuple[str, str]:
    import requests

    from kiosk.runtime.build import device_token

    url = cfg.sync.server_url
    if not url:
        return FAIL, "no server URL: provision the kiosk (checkpoint-kiosk provision)"
    token = device_token(cfg)
    http = session or requests.Session()
    verify = cfg.sync.ca_bundle or True
    timeout = cfg.sync.timeout_seconds
    try:
        try:
            health = http.get(url.rstrip("/") + "/v1/health", timeout=timeout, verify=verify)
        except requests.RequestException as e:
            return FAIL, f"{url} unreachable: {type(e).__name__}: {e}"
        date = health.headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                server_time.append(parsedate_to_datetime(date))
        if not token:
            return FAIL, f"{url} reachable; no device token in {cfg.sync.token_file}"
        auth = http.get(url.rstrip("/") + "/v1/documents/policy", timeout=timeout,
                        verify=verify, headers={"Authorization": f"Bearer {token}"})
    finally:
        if session is None:
            http.close()
    if auth.status_code in (401, 403):
        return FAIL, f"{url} reachable but refused the device token ({auth.status_code}): " \
                     "re-provision"
    if auth.status_code in (200, 304, 404):
        return PASS, f"{url} reachable, device token accepted"
    return FAIL, f"{url} answered {auth.status_code} to an authenticated request"


def _clock(synced_flag: Path, server_time: list[datetime]) -> tuple[str, str]:
    now = datetime.now(UTC)
    if server_time:
        skew = now - server_time[0]
        if abs(skew) > CLOCK_TOLERANCE:
            return FAIL, (f"clock is {skew.total_seconds():+.0f} s off the server's; check "
                          "NTP (timedatectl) — TLS and check-in times depend on it")
    if synced_flag.exists():
        return PASS, "synced by NTP this boot"
    if server_time:
        return WARN, "not NTP-synced, but within 2 min of the server's clock"
    return WARN, "not NTP-synced and no server to compare with; times will be corrected later"


def _documents(cfg: Config) -> tuple[str, str]:
    from kiosk.domain.policy import Policy
    from kiosk.domain.watchlist import Watchlist
    from offline_queue.store import connect, read_document

    path = Path(cfg.store.path)
    if not path.exists():
        return FAIL, "no check-in database yet: the kiosk has never synced"
    table = dict(cfg.policy)
    profile = str(table.pop("profile", "border"))
    policy = Policy.load(profile, table)
    db = connect(path, migrate=False)
    try:
        trust = read_document(db, "trust_list")
        watch = read_document(db, "watchlist")
    finally:
        db.close()
    now = datetime.now(UTC)
    problems, notes = [], []
    if "eu_dcc" not in policy.accepted_kinds:
        notes.append("no trust list needed (EU DCC not accepted)")
    elif trust is None:
        problems.append("no trust list yet")
    else:
        age = now - trust.fetched_at
        if age > policy.trust_list_max_age:
            problems.append(f"trust list {age.total_seconds() / 3600:.0f} h old "
                            f"(max {policy.trust_list_max_age_hours} h)")
        else:
            notes.append(f"trust list {age.total_seconds() / 3600:.1f} h old")
    if not policy.watchlist:
        notes.append("watchlist not used")
    elif watch is None:
        problems.append("no watchlist yet")
    elif Watchlist.from_json(watch.body).is_stale(now):
        problems.append("watchlist stale")
    else:
        notes.append("watchlist fresh")
    if problems:
        return FAIL, "; ".join(problems) + ": check sync (checkpoint-kiosk status)"
    return PASS, ", ".join(notes)
