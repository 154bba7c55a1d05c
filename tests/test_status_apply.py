"""Issue 13: a large status document is applied off the scan loop's thread.

Parsing and checking a status document of 200,000 people takes seconds (docs/policy.md, "A
large status document"); when ``LiveChecker.decide`` applied it, the scan that came first
after a sync waited that long.  Started, the checker reads and applies documents on its own
thread and swaps the new checker in whole; the loop's decisions stay fast meanwhile.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_live_checker import CCCD, config, store_document

from kiosk.domain.credentials import recognise
from kiosk.domain.status import StatusList, json_object_in_steps, person_digest
from kiosk.domain.watchlist import DEFAULT_KDF
from kiosk.runtime.checker import LiveChecker
from offline_queue.documents import Document
from offline_queue.store import Store

NUMBER = "001185012345"  # the person of the CCCD sample
PEOPLE = 60_000
FRAME_BOUND = 0.25  # s: a decision while the document is applied (inline: ~0.8 s here)


def large_status(people: int, *, now: datetime) -> bytes:
    """A status document of ``people`` records (random hashes: no Argon2id for each), and
    the sample's person declared."""
    salt = secrets.token_bytes(16)
    at = (now - timedelta(hours=2)).isoformat()
    records = [{"h": [secrets.token_hex(32)], "declared_at": at} for _ in range(people)]
    records.append({"h": [person_digest(salt, NUMBER)], "declared_at": at})
    return json.dumps({"version": 1, "issued_at": now.isoformat(),
                       "expires_at": (now + timedelta(days=1)).isoformat(),
                       "salt": salt.hex(), "kdf": DEFAULT_KDF.as_json(),
                       "records": records}, separators=(",", ":")).encode()


class Watched:
    """The real store, noting which thread reads a document (an observer, not a fake)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.readers: list[str] = []

    def document(self, name: str) -> Document | None:
        self.readers.append(threading.current_thread().name)
        return self.store.document(name)


def test_a_large_status_document_is_applied_off_the_loops_thread(tmp_path: Path):
    db = tmp_path / "k.db"
    now = datetime.now(UTC)
    body = large_status(PEOPLE, now=now)
    credential = recognise(CCCD)
    with Store(db, device_id="d", checkpoint_id="c") as store:
        watched = Watched(store)
        live = LiveChecker(config(tmp_path, db), watched, refresh_seconds=0.05).start()
        try:
            assert live.checker.status is None
            watched.readers.clear()
            store_document(db, "status", body, at=now)
            slowest, deadline = 0.0, time.monotonic() + 60
            # The loop's thread: a decision every few milliseconds until the list is in force.
            while live.checker.status is None and time.monotonic() < deadline:
                started = time.perf_counter()
                live.decide(credential, at=now)
                slowest = max(slowest, time.perf_counter() - started)
                time.sleep(0.005)
        finally:
            live.close()
        assert live.checker.status is not None, "the document was never applied"
        assert live.checker.status.lookup([NUMBER]) is not None
        main = threading.main_thread().name
        assert main not in watched.readers, "the loop's thread read the documents"
        assert slowest < FRAME_BOUND, f"a decision took {slowest:.3f} s during the apply"


def test_decide_without_the_thread_still_applies_at_once(tmp_path: Path):
    """The ``inspect`` command and tests: no thread, the caller's refresh (as before)."""
    db = tmp_path / "k.db"
    now = datetime.now(UTC)
    with Store(db, device_id="d", checkpoint_id="c") as store:
        live = LiveChecker(config(tmp_path, db), store, refresh_seconds=0)
        store_document(db, "status", large_status(10, now=now), at=now)
        live.decide(recognise(CCCD), at=now)
        assert live.checker.status is not None


def test_the_stepwise_reader_is_json_loads():
    body = large_status(50, now=datetime.now(UTC))
    assert json_object_in_steps(body, "status") == json.loads(body)
    spaced = b' {\n "a" : [ 1 , {"b": [ ]}, "x" ] ,\t"c":{"d":[1]}, "e": [], "a": 2 }\r\n'
    assert json_object_in_steps(spaced, "status") == json.loads(spaced)
    assert len(StatusList.from_json(body)) == 51
