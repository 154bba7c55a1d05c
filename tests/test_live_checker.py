"""Issue 9, #10 and #11: the documents the kiosk applies while it runs.

A stored document the kiosk cannot apply never stops start-up (under ``Restart=always`` that
was a reboot loop at every checkpoint): it is skipped, the fault is reported, a later good
version is applied.  A synced policy's ``keep_fields`` applies to the very next record.
Real store files, the real ``kiosk.runtime.build.build`` with a replayed camera and mock pins.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from kiosk import config as config_mod
from kiosk.domain.credentials import recognise
from kiosk.domain.model import Outcome
from kiosk.domain.watchlist import Watchlist
from kiosk.runtime.build import build
from kiosk.runtime.checker import LiveChecker
from kiosk.runtime.events import ScanResult
from kiosk.runtime.scanloop import ScanLoop
from kiosk.testing.samples import SAMPLES, background, qr_image
from offline_queue.documents import Document
from offline_queue.outbox import Outbox
from offline_queue.store import Store

CCCD = next(s for s in SAMPLES if s.name == "cccd").payload
T0 = datetime(2022, 6, 1, 1, 0, tzinfo=UTC)


def store_document(db: Path, name: str, body: bytes, *, at: datetime = T0,
                   etag: str | None = None) -> None:
    """As the sync worker stores what the central sent (its own connection, one transaction)."""
    with Outbox(db) as outbox:
        outbox.apply_documents([Document(name, body, etag or f"{name}-{at:%H%M%S}", at, None)],
                               [], at)


def config(tmp_path: Path, db: Path, **extra: str):
    frames = tmp_path / "frames"
    frames.mkdir(exist_ok=True)
    img = background(random.Random(1))
    code = qr_image(CCCD, module_px=3)
    img.paste(code, ((640 - code.size[0]) // 2, (480 - code.size[1]) // 2))
    img.save(frames / "000.png")
    path = tmp_path / "kiosk.toml"
    path.write_text(
        f'[camera]\nspec = "replay:{frames},fps=5"\n[signals]\npin_factory = "mock"\n'
        f'[store]\npath = "{db}"\n[policy]\nprofile = "hospital"\n', encoding="utf-8")
    return config_mod.load(path, environ={})


def rows(db: Path) -> list[tuple[str, dict]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [(d, json.loads(disp)) for d, disp in
                conn.execute("SELECT decision, display FROM checkins ORDER BY rowid")]


def test_a_bad_stored_document_never_stops_start_up(tmp_path):
    db = tmp_path / "k.db"
    Store(db, device_id="d", checkpoint_id="c").close()
    # What an unvalidated central published and an old kiosk stored: the next start exited 1.
    store_document(db, "policy", b'{"profile": "airport"}')
    store_document(db, "watchlist", b'{"entries": []}')
    cfg = config(tmp_path, db)
    with contextlib.ExitStack() as stack:
        parts = build(cfg, stack)
        checker = parts.loop.checker
        errors = checker.document_errors()
        assert set(errors) == {"policy", "watchlist"}
        assert "policy.profile is 'airport'" in errors["policy"]
        assert "watchlist.version is None" in errors["watchlist"]
        assert checker.document_times() == {"policy": None, "trust_list": None,
                                             "watchlist": None, "status": None,
                                             "risk_levels": None}

        # It decides: the config's hospital policy, no watchlist -> an officer checks.
        results: list[ScanResult] = []
        deadline = time.monotonic() + 30
        while not results:
            assert time.monotonic() < deadline, "the replayed code was never decided"
            results += [e for e in parts.loop.step(timeout=0.1) if isinstance(e, ScanResult)]
        assert results[0].decision.outcome is Outcome.CHECK
        assert results[0].decision.reasons == ("watchlist_missing",)
        assert checker.policy.profile == "hospital"

        # A later good version is applied and its fault cleared; the other stays reported.
        checker.refresh_seconds = 0
        later = T0 + timedelta(hours=1)
        store_document(db, "policy", b'{"profile": "hospital", "watchlist": false}', at=later)
        # Applied by the checker's own thread (build starts it), not by the scan.
        checker.poke()
        deadline = time.monotonic() + 10
        while checker.document_times()["policy"] != later:
            assert time.monotonic() < deadline, "the new policy was never applied"
            time.sleep(0.01)
        assert parts.loop.process(CCCD).decision.outcome is Outcome.PASS
        assert set(checker.document_errors()) == {"watchlist"}
        assert checker.document_times()["policy"] == later
        # What the status strip is told (build wires the checker into the loop's health).
        health = parts.loop.health()
        assert health.document_errors == ("watchlist",)
        assert dict(health.documents)["policy"] == later
    assert [d for d, _ in rows(db)] == ["check", "pass"]


def test_a_bad_new_version_keeps_the_last_good_one_in_force(tmp_path, caplog):
    db = tmp_path / "k.db"
    with Store(db, device_id="d", checkpoint_id="c") as store:
        live = LiveChecker(config(tmp_path, db), store, refresh_seconds=0)
        good = Watchlist.build([("001185012345", date(2099, 1, 1))], issued_at=T0,
                               valid_for=timedelta(days=36500))
        store_document(db, "watchlist", good)
        assert live.decide(recognise(CCCD), at=T0).reasons == ("watchlist",)
        store_document(db, "watchlist", b'{"version": 2}', at=T0 + timedelta(hours=1))
        assert live.decide(recognise(CCCD), at=T0).reasons == ("watchlist",)  # still stopped
        assert "watchlist.issued_at" in live.document_errors()["watchlist"]
        assert live.document_times()["watchlist"] == T0
        # Logged once per bad version, not again when only its fetch time moves on.
        store_document(db, "watchlist", b'{"version": 2}', at=T0 + timedelta(hours=2),
                       etag=f"watchlist-{T0 + timedelta(hours=1):%H%M%S}")
        live.refresh()
        bad = [r for r in caplog.records if "not applied" in r.getMessage()
               and r.levelname == "ERROR"]
        assert len(bad) == 1


def test_a_synced_keep_fields_applies_to_the_next_record(tmp_path):
    db = tmp_path / "k.db"
    with Store(db, device_id="d", checkpoint_id="c") as store:
        live = LiveChecker(config(tmp_path, db), store, refresh_seconds=0)
        store_document(db, "policy", b'{"profile": "hospital", "watchlist": false}')
        # As kiosk.runtime.build.build makes it: the policy of the moment passed at construction.
        loop = ScanLoop(store=store, checker=live, recognise=recognise,
                        keep_fields=live.policy.keep_fields,
                        accepted_kinds=live.policy.accepted_kinds)
        assert loop.process(CCCD).decision.outcome is Outcome.PASS
        store_document(db, "policy", b'{"profile": "hospital", "watchlist": false, '
                                     b'"keep_fields": ["birth_year"], '
                                     b'"accepted_kinds": ["cccd", "eu_dcc"]}',
                       at=T0 + timedelta(hours=1))
        loop.process(CCCD)
        assert loop.accepted_kinds == ("cccd", "eu_dcc")
    first, second = rows(db)
    assert set(first[1]) == {"name", "id", "birth_year"}
    assert set(second[1]) == {"birth_year"}


@pytest.mark.parametrize("name", ["policy", "trust_list", "watchlist"])
def test_every_document_is_applied_or_reported_on_its_own(tmp_path, name):
    db = tmp_path / "k.db"
    with Store(db, device_id="d", checkpoint_id="c") as store:
        store_document(db, name, b"{not json")
        live = LiveChecker(config(tmp_path, db), store)
        assert list(live.document_errors()) == [name]
        assert f"document {name!r} cannot be applied" in live.document_errors()[name]
        assert live.decide(recognise(CCCD), at=T0).outcome is Outcome.CHECK
