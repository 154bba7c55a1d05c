"""The ``status`` document the central publishes: the province's import and the
declarations recorded at any kiosk (issue 13: declared at one checkpoint, known at the next).

The import an administrator publishes as ``status`` (``status-doc build``, then
``central set-document status`` or ``PUT /v1/documents/status``) is kept in
``document_imports``; what kiosks download is that import with the declared check-ins
folded in, made by a *folder* the central is handed where it is built (the kiosk's own,
``kiosk.domain.declared_status.DeclarationFolder``: it hashes the way kiosks match; this
package imports nothing from ``kiosk``).

The declarations are read from what the central stores after ingest, never from the body a
kiosk sent: ``scans`` rows of source ``declared`` (not overrides) with a ``person_key``,
their event time and the birth year their display kept, no older than the retention.  A
partial index holds only those rows, so ingest pays for it on declared rows alone.

:class:`Republisher` republishes on a schedule: every ``every`` seconds it compares the
declared rows (their count and newest receive time), the import and the policy with what
the published document was made from, and folds again when they differ, or when the
document is older than ``refresh`` (declarations expire).  ``serve`` runs one in a process
of its own beside the workers, away from their interpreter locks; in a one-process central
(tests, ``CentralServer``) an ingest that took a declaration pokes it to look at once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from offline_queue.central import schema
from offline_queue.central.backend import CentralDB
from offline_queue.central.db import (
    Validators,
    connect,
    get_document_record,
    now_utc,
    set_document,
)
from offline_queue.clock import iso, parse_iso

log = logging.getLogger(__name__)

NAME = "status"
# Seconds between looks for new declarations.  Kiosks fetch documents every 15 minutes, and
# a folding with a 200,000-record import costs ~4 s of CPU (docs/policy.md): a minute keeps
# that under a tenth of a core while declarations keep coming.
CHECK_EVERY = 60.0
MIN_GAP = 10.0  # seconds at least between two foldings, pokes or not
REFRESH = timedelta(hours=1)  # folded again at least this often (expiries, freshness)
_BUILT = "status_built"  # central_meta: what the published document was made from
_DECLARED_WHERE = (f"source = {schema.DECLARED} AND person_key IS NOT NULL "
                   "AND override_of IS NULL")


class Folded(Protocol):
    """A folding's result: the document, its expiry, and counts (no people)."""

    @property
    def body(self) -> bytes: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def records(self) -> int: ...
    @property
    def declarations(self) -> int: ...
    @property
    def skipped(self) -> int: ...


class Folder(Protocol):
    """Makes the published status document (``DeclarationFolder`` has this shape)."""

    def __call__(self, *, imported: bytes | None, policy: bytes | None,
                 declarations: Iterable[tuple[str, datetime, int | None]],
                 now: datetime) -> Folded: ...


@dataclass(frozen=True)
class Import:
    body: bytes
    updated_at: str
    expires_at: datetime | None


def get_import(db: CentralDB, name: str = NAME) -> Import | None:
    row = db.execute("SELECT body, updated_at, expires_at FROM document_imports "
                     "WHERE name = ?", [name]).fetchone()
    if row is None:
        return None
    return Import(bytes(row[0]), row[1], parse_iso(row[2]) if row[2] else None)


def set_import(db: CentralDB, body: bytes, *, fold: Folder, expires_at: datetime | None = None,
               validators: Validators | None = None, now: datetime | None = None) -> str:
    """Keep ``body`` as the province's import and publish it with the declarations folded
    in; the published ETag.  The import is validated first (the kiosk's own check): a bad
    one changes nothing."""
    if validators is not None and NAME in validators:
        validators[NAME](body)
    now = now or now_utc()
    with db.atomic():
        db.execute(
            "INSERT INTO document_imports (name, body, updated_at, expires_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET body = excluded.body, "
            "updated_at = excluded.updated_at, expires_at = excluded.expires_at",
            [NAME, body, iso(now), iso(expires_at) if expires_at else None])
    etag = republish(db, fold, validators=validators, now=now, force=True)
    assert etag is not None
    return etag


def retention_days(db: CentralDB) -> int:
    """The retention in force: the days of the last retention run, else the default."""
    from offline_queue.central.queries import DEFAULT_RETENTION_DAYS

    row = db.execute("SELECT days FROM retention_runs ORDER BY ran_at DESC LIMIT 1").fetchone()
    return int(row[0]) if row else DEFAULT_RETENTION_DAYS


def declarations(db: CentralDB, *, since: datetime
                 ) -> Iterator[tuple[str, datetime, int | None]]:
    """(person key, event time, birth year or None) of each declared check-in since
    ``since`` (event time), from the stored columns."""
    rows = db.execute(f"SELECT person_key, event_time, display FROM scans WHERE "
                      f"{_DECLARED_WHERE} AND event_time >= ?", [schema.to_us(since)])
    for person_key, event_time, display in rows:
        yield str(person_key), schema.from_us(int(event_time)), _birth_year(display)


def _birth_year(display: str | None) -> int | None:
    try:
        value = json.loads(display).get("birth_year") if display else None
    except (ValueError, AttributeError):
        return None
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() \
        and len(value) == 4 else None


def _state(db: CentralDB, since: datetime) -> dict[str, Any]:
    """What a folding depends on: the declared rows (count, newest), the import, the policy."""
    count, newest = db.one(
        f"SELECT count(*), max(received_at) FROM scans WHERE {_DECLARED_WHERE} "
        "AND event_time >= ?", [schema.to_us(since)])
    imported = db.execute("SELECT updated_at FROM document_imports WHERE name = ?",
                          [NAME]).fetchone()
    policy = db.execute("SELECT etag FROM documents WHERE name = 'policy'").fetchone()
    return {"declared": int(count), "newest": newest,
            "import": imported[0] if imported else None, "policy": policy[0] if policy else None}


def _built(db: CentralDB) -> dict[str, Any] | None:
    row = db.execute("SELECT value FROM central_meta WHERE key = ?", [_BUILT]).fetchone()
    try:
        return json.loads(row[0]) if row else None
    except ValueError:
        return None


def republish(db: CentralDB, fold: Folder, *, validators: Validators | None = None,
              now: datetime | None = None, force: bool = False,
              refresh: timedelta = REFRESH) -> str | None:
    """Fold and publish when something it depends on changed (or ``force``, or it is older
    than ``refresh``); the new ETag, or None when nothing was done.  With nothing imported
    and nothing declared nothing is published (a province may publish no status at all)."""
    now = now or now_utc()
    since = now - timedelta(days=retention_days(db))
    state = _state(db, since)
    built = _built(db)
    if not force and built is not None and {k: built.get(k) for k in state} == state \
            and now - parse_iso(built["at"]) < refresh:
        return None
    imported = get_import(db)
    if imported is None and state["declared"] == 0 and (built is None or not built["declared"]):
        return None
    policy = get_document_record(db, "policy")
    folded = fold(imported=imported.body if imported else None,
                  policy=policy.body if policy else None,
                  declarations=list(declarations(db, since=since)), now=now)
    etag = set_document(db, NAME, folded.body, expires_at=folded.expires_at,
                        validators=validators)
    with db.atomic():
        db.execute("INSERT INTO central_meta (key, value) VALUES (?, ?) ON CONFLICT(key) "
                   "DO UPDATE SET value = excluded.value",
                   [_BUILT, json.dumps({**state, "at": iso(now)})])
    # Counts only: the records are people.
    log.info("published the status document (%d records, %d declarations from kiosks, "
             "%d left out), ETag %s", folded.records, folded.declarations, folded.skipped, etag)
    return etag


class Republisher:
    """Folds the kiosks' declarations into the status document on a thread: every
    ``every`` seconds, and at once after :meth:`poke` (at most once in ``min_gap``)."""

    def __init__(self, db_path: str | os.PathLike[str], fold: Folder, *,
                 validators: Validators | None = None, every: float = CHECK_EVERY,
                 refresh: timedelta = REFRESH, min_gap: float = MIN_GAP,
                 now: Callable[[], datetime] = now_utc) -> None:
        self.db_path = db_path
        self.fold = fold
        self.validators = validators
        self.every = every
        self.refresh = refresh
        self.min_gap = min_gap
        self.now = now
        self.published = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Republisher:
        self._thread = threading.Thread(target=self._run, name="status-republisher",
                                        daemon=True)
        self._thread.start()
        return self

    def poke(self) -> None:
        self._wake.set()

    def run_once(self, db: CentralDB) -> str | None:
        etag = republish(db, self.fold, validators=self.validators, now=self.now(),
                         refresh=self.refresh)
        if etag is not None:
            self.published += 1
        return etag

    def _run(self) -> None:
        db: CentralDB | None = None
        while not self._stop.is_set():
            try:
                if db is None or getattr(db.conn, "closed", False):
                    db = connect(self.db_path, migrate=False)
                if self.run_once(db) is not None:
                    self._stop.wait(self.min_gap)  # a burst of pokes folds once
            except Exception as e:  # noqa: BLE001 - the thread must outlive one bad turn
                # Kept running: the published document stays, and the next turn tries again.
                log.error("the status document could not be republished: %s", e)
                if db is not None:
                    db.close()
                    db = None
            self._wake.wait(self.every)
            self._wake.clear()
        if db is not None:
            db.close()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                log.warning("the status republisher did not stop within 10 s")

    def __enter__(self) -> Republisher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
