"""The scan loop with the real store (a SQLite file), real parsers and MockFactory lights."""

import sqlite3
import time

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.signals import Pattern, Signals
from kiosk.domain.credentials import recognise
from kiosk.domain.model import Decision, Kind, Outcome
from kiosk.errors import KioskError, StoreError
from kiosk.runtime.capture import Decoded
from kiosk.runtime.events import ButtonPress, ScanResult
from kiosk.runtime.scanloop import ScanLoop
from kiosk.testing.samples import SAMPLES
from offline_queue.store import Store

CCCD = next(s for s in SAMPLES if s.name == "cccd").payload.encode()
VENUE = next(s for s in SAMPLES if s.name == "venue").payload.encode()


class RecognisedPasses:
    """The foundation rule: a recognised ID passes, anything else is checked."""

    def decide(self, credential, *, at, direction="in"):
        if credential.kind.is_person and not credential.problems:
            return Decision(Outcome.PASS)
        return Decision(Outcome.CHECK, credential.problems or ("unrecognised",))


class DbWatchingSignals(Signals):
    """Real pins; on every pattern, reads the database file through a fresh connection."""

    def __init__(self, db_path, **kw):
        super().__init__(**kw)
        self.db_path = db_path
        self.rows_when_shown = []

    def show(self, pattern):
        with sqlite3.connect(self.db_path) as conn:
            n = conn.execute("select count(*) from checkins").fetchone()[0]
        self.rows_when_shown.append((pattern, n))
        super().show(pattern)


@pytest.fixture
def factory():
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


class Ticks:
    """The loop's monotonic clock, moved by the test (nothing sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def ticks():
    return Ticks()


@pytest.fixture
def kiosk(tmp_path, factory, ticks):
    db = tmp_path / "checkins.db"
    with Store(db, device_id="dev-1", checkpoint_id="cp-1") as store, \
            DbWatchingSignals(db, red=17, amber=27, green=22, buzzer=23,
                              pin_factory=factory) as signals:
        yield ScanLoop(store=store, checker=RecognisedPasses(), recognise=recognise,
                       signals=signals, dedupe_seconds=0.3, result_seconds=0.2, clock=ticks)


def results(events):
    return [e for e in events if isinstance(e, ScanResult)]


def decoded(raw):
    now = time.monotonic_ns()
    return Decoded(raw, raw.decode("utf-8", "replace"), (), now, now)


def test_a_check_in_is_on_disk_before_the_light_turns_green(kiosk):
    kiosk.events.put(decoded(CCCD))
    [result] = results(kiosk.step())
    assert result.decision.outcome is Outcome.PASS and result.checkin_id
    assert kiosk.signals.rows_when_shown == [(Pattern.PASS, 1)]
    assert kiosk.lights()["green"]
    row = kiosk.recent(1)[0]
    assert row["id"] == result.checkin_id and row["decision"] == "pass"
    assert row["display"]["name"] != "Trần Thị Bích Ngọc"  # masked
    assert "Bích Ngọc" not in str(row)


def test_the_same_code_in_consecutive_frames_is_one_scan(kiosk, ticks):
    for _ in range(5):
        kiosk.events.put(decoded(CCCD))
    assert len(results(kiosk.step())) == 1
    ticks.advance(0.4)  # absent longer than the window: a new scan
    kiosk.events.put(decoded(CCCD))
    assert len(results(kiosk.step())) == 1
    assert kiosk.counts_today()["total"] == 2


def test_a_code_held_still_stays_one_scan(kiosk, ticks):
    # Seen every 0.1 s for 0.6 s, window 0.3 s: the sightings keep the window open.
    found = []
    for _ in range(7):
        kiosk.events.put(decoded(CCCD))
        found += results(kiosk.step())
        ticks.advance(0.1)
    assert len(found) == 1


def test_venue_codes_are_not_recorded(kiosk):
    kiosk.events.put(decoded(VENUE))
    [result] = results(kiosk.step())
    assert result.credential.kind is Kind.VENUE and result.checkin_id is None
    assert kiosk.counts_today()["total"] == 0
    assert kiosk.lights()["amber"] and not kiosk.lights()["green"]


def test_binary_garbage_is_unrecognised_not_a_crash(kiosk):
    kiosk.events.put(decoded(bytes(range(256)) * 12))
    [result] = results(kiosk.step())
    assert result.credential.kind is Kind.UNKNOWN and result.checkin_id is None
    assert result.decision.outcome is Outcome.CHECK


def test_a_store_failure_never_gives_a_pass(kiosk):
    def broken(entry):
        raise StoreError("disk I/O error")

    kiosk.store.record = broken
    result = kiosk.process(CCCD)
    assert result.decision.outcome is Outcome.CHECK
    assert "not_recorded" in result.decision.reasons and result.checkin_id is None
    assert not kiosk.lights()["green"]
    health = kiosk.health()
    assert not health.store_ok and "disk I/O" in health.store_message and health.fault


def test_lights_return_to_idle_after_the_result_time(kiosk, ticks):
    kiosk.process(CCCD)
    assert kiosk.lights()["green"]
    kiosk.step()
    assert kiosk.lights()["green"]  # not before the result time
    ticks.advance(0.3)
    kiosk.step()
    assert not any(kiosk.lights().values())


def test_override_is_a_new_record_naming_the_original(kiosk):
    first = kiosk.process(VENUE.replace(b"https", b"http"))  # not a person: cannot override
    with pytest.raises(KioskError, match="not among the last"):
        kiosk.override("0190f0c2-0000-7000-8000-000000000000", Outcome.PASS, "seen")
    original = kiosk.process(CCCD)
    assert first.checkin_id is None
    with pytest.raises(KioskError, match="needs a reason"):
        kiosk.override(original.checkin_id, Outcome.PASS, "  ")
    result = kiosk.override(original.checkin_id, Outcome.STOP, "ID does not match face")
    assert result.source == "override" and result.decision.outcome is Outcome.STOP
    rows = kiosk.recent(2)
    assert rows[0]["override_of"] == original.checkin_id
    assert kiosk.lights()["red"]


def test_buttons_toggle_direction_and_confirm_a_check(kiosk):
    kiosk.post_button("direction")
    kiosk.step()
    assert kiosk.direction == "out"
    checked = kiosk.process(next(s for s in SAMPLES if s.name == "cccd_mismatch").payload)
    assert checked.decision.outcome is Outcome.CHECK
    kiosk.events.put(ButtonPress("confirm"))
    [confirmed] = results(kiosk.step())
    assert confirmed.decision.outcome is Outcome.PASS and confirmed.direction == "out"
    assert kiosk.recent(1)[0]["override_of"] == checked.checkin_id
    counts = kiosk.counts_today()
    assert counts["out"] == 1 and counts["pass"] == 1 and counts["check"] == 0


def test_camera_fault_blinks_amber(kiosk):
    class DeadPipeline:
        ok, message = False, "camera 'picamera2' stopped delivering frames"

        def latest_frame(self):
            return None

    kiosk.pipeline = DeadPipeline()
    [health] = kiosk.step()
    assert health.fault and "stopped" in health.camera_message
    assert kiosk.signals.pattern is Pattern.FAULT


def test_a_fault_that_starts_during_a_pass_ends_the_green_light_on_time(kiosk, ticks):
    """Found by the 30-hour checkpoint day: a pass, then the scanner unplugged (or the camera
    lost) before the result's time was up, left the green light on until the fault cleared,
    over the idle screen."""
    kiosk.events.put(decoded(CCCD))
    [result] = results(kiosk.step())
    assert result.decision.outcome is Outcome.PASS and kiosk.lights()["green"]

    class DeadPipeline:
        ok, message = False, "camera 'picamera2' stopped delivering frames"

        def latest_frame(self):
            return None

    kiosk.pipeline = DeadPipeline()
    ticks.advance(0.1)  # the result still has 0.1 s to run: its pattern stays
    kiosk.step()
    assert kiosk.lights()["green"]
    ticks.advance(0.15)  # its time is up: the fault's pattern, never the green light
    kiosk.step()
    assert not kiosk.lights()["green"] and kiosk.signals.pattern is Pattern.FAULT


def test_manual_entry_is_validated_and_recorded_as_manual(tmp_path, factory):
    from kiosk.domain.credentials import from_cccd_number

    with Store(tmp_path / "k.db", device_id="d", checkpoint_id="c") as store:
        loop = ScanLoop(store=store, checker=RecognisedPasses(), recognise=recognise,
                        manual_entry=from_cccd_number)
        ok = loop.manual_entry(" 0011 8501 2345 ")
        assert ok.decision.outcome is Outcome.PASS and ok.source == "manual"
        assert ok.credential.display == {"id": "********2345", "birth_year": "1985"}
        bad_province = loop.manual_entry("999185012345")
        assert "cccd_province_unknown" in bad_province.decision.reasons
        future = loop.manual_entry("001399012345")  # born 2099
        assert "cccd_century_mismatch" in future.decision.reasons
        short = loop.manual_entry("12345")
        assert short.checkin_id is None and short.decision.reasons == ("cccd_number_invalid",)
    with sqlite3.connect(tmp_path / "k.db") as conn:
        sources = conn.execute("select source from checkins").fetchall()
    assert sources == [("manual",)] * 3


def test_sync_status_events_reach_the_health_the_screen_shows(kiosk):
    from datetime import UTC, datetime

    from offline_queue.sync import SyncStatus

    kiosk.step()
    last = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
    kiosk.events.put(SyncStatus(online=False, backlog=42, dead_letter=0, last_success=last,
                                last_error="timeout", reprovision_needed=True))
    [health] = [e for e in kiosk.step() if not isinstance(e, ScanResult)]
    assert (health.online, health.backlog, health.last_sync) == (False, 42, last)
    assert health.reprovision_needed and not health.fault  # check-ins keep being recorded


def test_an_override_keeps_the_direction_of_the_check_in_it_replaces(kiosk):
    """The officer switches to 'out' for the next person, then corrects the last entry."""
    entered = kiosk.process(next(s for s in SAMPLES if s.name == "cccd_mismatch").payload)
    assert entered.direction == "in"
    kiosk.set_direction("out")
    result = kiosk.override(entered.checkin_id, Outcome.PASS, "officer_documents_checked")
    assert result.direction == "in"
    assert kiosk.recent(1)[0]["direction"] == "in"
    counts = kiosk.counts_today()
    assert (counts["in"], counts["out"], counts["pass"], counts["check"]) == (1, 0, 1, 0)
    assert kiosk.direction == "out"   # the switch itself stays for the next person


def test_a_parser_crash_logs_no_personal_data_above_debug(kiosk, caplog):
    def crash(payload):
        raise ValueError(f"cannot parse {payload!r}")

    kiosk.recognise = crash
    with caplog.at_level("INFO"):
        result = kiosk.process(CCCD)
    assert result.credential.kind is Kind.UNKNOWN and result.checkin_id is None
    assert "recognising a payload failed (ValueError)" in caplog.text
    assert "Bích" not in caplog.text and "001185012345" not in caplog.text
