"""The real scan loop as the screen tests use it, and checks that it is wired as the app wires it.

``kiosk.runtime.scanloop.ScanLoop`` with a real SQLite store, the real parsers and policy checker,
a real quarantine watchlist, the lights on gpiozero's MockFactory, and camera frames from
``kiosk.testing.samples`` decoded by the real QR decoder.  Only the camera thread is replaced by
``FrameFeed`` (the test shows a frame; the decoder runs at once), so tests are deterministic.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from hardware.camera import Frame
from hardware.qr import open_decoder
from hardware.signals import Signals
from kiosk.domain.credentials import cccd, recognise
from kiosk.domain.credentials.masking import mask_id
from kiosk.domain.model import Credential, Kind, Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.watchlist import Watchlist
from kiosk.runtime.capture import Decoded
from kiosk.runtime.scanloop import ScanLoop
from kiosk.testing.samples import SAMPLES, frame
from offline_queue.clock import Clock
from offline_queue.store import Store

SAMPLE = {s.name: s for s in SAMPLES}
WATCHLISTED_KEY = "079090001234"


class FrameFeed:
    """Stands where ``CapturePipeline`` stands: the newest frame, decoded by the real decoder."""

    def __init__(self, events, decoder) -> None:
        self.events = events
        self.decoder = decoder
        self.ok = True
        self.message: str | None = None
        self._latest: Frame | None = None
        self._index = 0

    def show(self, image: np.ndarray) -> int:
        """The camera sees ``image``: keep it for the preview, post every code found."""
        now = time.monotonic_ns()
        self._index += 1
        self._latest = Frame(image, now, self._index)
        codes = self.decoder.decode(image)
        for code in codes:
            self.events.put(Decoded(code.raw, code.text, code.position, now,
                                    time.monotonic_ns()))
        return len(codes)

    def latest_frame(self) -> Frame | None:
        return self._latest


def manual_cccd(number: str) -> Credential:
    """What an officer's typed number becomes: a CCCD credential checked like a scanned one.

    ``kiosk.domain.credentials`` has no number-only parser yet (the app looks for
    ``from_cccd_number``); this one uses the same number rules as the card parser.
    """
    if not cccd.NUMBER.fullmatch(number):
        return Credential(Kind.UNKNOWN, problems=("cccd_number_invalid",))
    parsed = cccd.parse([number, "", "", "", "", "", ""])
    problems = tuple(p for p in parsed.problems if p.startswith("cccd_number")
                     or p.startswith("cccd_province"))
    return Credential(Kind.CCCD, number, {"id": mask_id(number)}, {"number": number},
                      parsed.checks, problems)


@dataclass
class Kit:
    loop: ScanLoop
    feed: FrameFeed
    store: Store
    signals: Signals
    db_path: object

    def scan(self, name: str, seed: int = 1) -> int:
        """Hold up sample ``name`` (kiosk.testing.samples) in front of the camera."""
        import random

        return self.feed.show(frame(SAMPLE[name], random.Random(seed)))

    def empty(self, seed: int = 1) -> None:
        import random

        self.feed.show(frame(None, random.Random(seed)))

    def row(self, checkin_id: str) -> dict:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            r = db.execute("SELECT * FROM checkins WHERE id = ?", (checkin_id,)).fetchone()
        return dict(r) if r is not None else {}

    def rows(self) -> list[dict]:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM checkins ORDER BY seq")]


@contextlib.contextmanager
def build_kit(tmp_path, *, wall=None, tz=None):
    """The loop and its parts; ``wall`` fixes the store's clock (screenshots need fixed times)."""
    factory = MockFactory(pin_class=MockPWMPin)
    now = datetime.now(UTC)
    probe = Watchlist(salt=b"ui-tests", entries={}, issued_at=now, expires_at=now)
    watchlist = Watchlist(salt=b"ui-tests", entries={probe.digest(WATCHLISTED_KEY):
                                                      date(2099, 1, 1)},
                          issued_at=now - timedelta(hours=1), expires_at=now + timedelta(days=1))
    checker = Checker(policy=Policy.load("hospital"), watchlist=watchlist)
    db_path = tmp_path / "checkins.db"
    decoder = open_decoder("auto")
    clock = Clock(wall=wall, synced=lambda: True, boot_id="ui-tests")
    try:
        with Store(db_path, device_id="dev-ui", checkpoint_id="cp-ui", clock=clock,
                   tz=tz) as store, \
                Signals(red=17, amber=27, green=22, buzzer=23, gate=24,
                        pin_factory=factory) as signals:
            loop = ScanLoop(store=store, checker=checker, recognise=recognise, signals=signals,
                            dedupe_seconds=0.5, result_seconds=4.0,
                            accepted_kinds=checker.policy.accepted_kinds,
                            manual_entry=manual_cccd, is_clock_synced=lambda: True,
                            trust_list_age=lambda: timedelta(hours=5))
            feed = FrameFeed(loop.events, decoder)
            loop.pipeline = feed
            yield Kit(loop, feed, store, signals, db_path)
    finally:
        decoder.close()
        factory.reset()


@pytest.fixture
def kit(tmp_path):
    with build_kit(tmp_path) as k:
        yield k


def results(items):
    return [i for i in items if hasattr(i, "decision")]


# --- the kit itself: the screen tests are only as real as this ----------------------------------


def test_kit_decodes_a_sample_frame_and_records_before_green(kit):
    assert kit.scan("cccd") == 1
    (result,) = results(kit.loop.step())
    assert result.decision.outcome is Outcome.PASS
    assert result.credential.display["name"] != "Trần Thị Bích Ngọc"  # masked
    row = kit.row(result.checkin_id)
    assert (row["direction"], row["kind"], row["decision"], row["source"]) == \
        ("in", "cccd", "pass", "scan")
    assert kit.loop.lights()["green"]
    assert kit.loop.latest_frame().shape == (480, 640)


def test_kit_outcomes_for_the_demo_samples(kit):
    seen = {}
    for i, name in enumerate(("cccd_mismatch", "watchlisted", "venue")):
        kit.scan(name, seed=i)
        (result,) = results(kit.loop.step())
        seen[name] = (result.decision.outcome, result.checkin_id is not None)
    assert seen == {"cccd_mismatch": (Outcome.CHECK, True), "watchlisted": (Outcome.STOP, True),
                    "venue": (Outcome.CHECK, False)}


def test_kit_manual_entry_is_recorded_as_manual(kit):
    result = kit.loop.manual_entry("001185012345")
    assert result.source == "manual" and result.credential.display["id"].endswith("2345")
    assert kit.row(result.checkin_id)["source"] == "manual"
