"""The real scan loop as the screen tests use it, built by the app's own ``build``.

``kiosk.runtime.build.build`` wires the kiosk from a configuration as on the appliance, with a
real SQLite store (fixed clock for screenshots), the real parsers and policy checker with a
real quarantine watchlist, the lights on gpiozero's MockFactory, and camera frames from
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
from kiosk.config import Config
from kiosk.domain.model import Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.watchlist import Watchlist
from kiosk.runtime.build import Supplied, build
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


@dataclass
class StaticDocuments:
    """The documents' state as the loop asks it (kiosk.runtime.ports.DocumentState), fixed."""

    age: timedelta | None = None
    times: dict | None = None
    errors: dict | None = None

    def trust_list_age(self):
        return self.age

    def document_times(self):
        return self.times or {}

    def document_errors(self):
        return self.errors or {}


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
    cfg = Config().replace(store={"path": str(db_path)}, decoder={"dedupe_seconds": 0.5},
                           ui={"result_seconds": 4.0})
    try:
        with contextlib.ExitStack() as stack:
            store = stack.enter_context(Store(db_path, device_id="dev-ui", checkpoint_id="cp-ui",
                                              clock=clock, tz=tz))
            signals = stack.enter_context(Signals(red=17, amber=27, green=22, buzzer=23,
                                                  gate=24, pin_factory=factory))
            feeds: list[FrameFeed] = []

            def feed(events):
                feeds.append(FrameFeed(events, decoder))
                return feeds[-1]

            # The kiosk as kiosk.main builds it, with these parts in place of the configured
            # ones: the loop's wiring is the appliance's, not a second copy of it.
            parts = build(cfg, stack, parts=Supplied(
                store=store, checker=checker, signals=signals, pipeline=feed,
                loop_options={"is_clock_synced": lambda: True,
                              "documents": StaticDocuments(timedelta(hours=5))}))
            yield Kit(parts.loop, feeds[0], store, signals, db_path)
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
