"""The durable check-in queue on the kiosk: one SQLite file in WAL mode.

A check-in is committed with ``synchronous=FULL`` before :meth:`Store.record` returns,
so the kiosk lights green only for a record that survives a power cut.  The sync worker
uses its own connection (``offline_queue.outbox``); WAL lets it read and mark rows while
the scan loop keeps writing.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, Self

from sqlite_utils import Database

from offline_queue import migrations
from offline_queue.clock import Anchor, Clock, iso, parse_iso
from offline_queue.disk import disk_space
from offline_queue.documents import Document, check_name
from offline_queue.errors import StoreError
from offline_queue.records import DECISIONS, DIRECTIONS, CheckIn, uuid7
from offline_queue.sealing import Sealer, SealError, SealingKey, aad_for, needs_sealing

log = logging.getLogger(__name__)

# Both connections (Store and Outbox) wait this long for the other's write lock.  With
# BEGIN IMMEDIATE and short transactions the wait is one transaction at most (issue 9 #6).
BUSY_TIMEOUT_S = 10.0
# A clock this far behind the newest trusted row time is wrong, not the rows: no purge.
PURGE_CLOCK_TOLERANCE = timedelta(minutes=10)
# SD cards wear out: keep the WAL file from growing past a few MB between checkpoints.
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
CACHE_KIB = 256


class StoreIntegrityError(StoreError):
    """``PRAGMA quick_check`` found damage: the kiosk must not record into this file."""


def connect(
    path: str | os.PathLike[str], *, synchronous: str = "FULL", migrate: bool = True
) -> Database:
    """Open the queue database with the pragmas every connection needs (and migrate it)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: each owner serialises its own use with a lock.
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(
            f"cannot open the check-in database {str(path)!r}: {e}; "
            "check that the folder exists and is writable by the kiosk user"
        ) from e
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        # Deleted and overwritten content is zeroed, not left in free space: a row whose
        # identity is sealed or purged leaves no clear copy in the file (docs/privacy.md).
        conn.execute("PRAGMA secure_delete=ON")
        # A bounded page cache (256 KiB): the kiosk's memory stays flat over months of
        # check-ins; commit latency measured the same (bench/memory.py notes).
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        db = Database(conn, execute_plugins=False)
        if migrate:
            migrations.apply(db)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise StoreError(
            f"cannot use the check-in database {str(path)!r}: {e}; "
            "if the file is damaged, stop the kiosk, move it aside and call a technician"
        ) from e
    return db


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes the write lock at BEGIN.

    sqlite-utils' ``atomic()`` begins DEFERRED: a transaction that reads, then writes,
    fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT, the busy timeout does
    not apply) when the other connection committed in between.  BEGIN IMMEDIATE waits
    for the lock (busy timeout) instead, so a check-in never fails because sync writes.
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def quick_check(db: Database) -> list[str]:
    """Problems ``PRAGMA quick_check`` reports; empty when the file is sound."""
    rows = [r[0] for r in db.execute("PRAGMA quick_check").fetchall()]
    return [] if rows == ["ok"] else rows


def reset_in_flight(db: Database) -> int:
    """Rows a dead process was sending go back to pending; the server dedupes resends."""
    with immediate(db):
        cursor = db.execute("UPDATE checkins SET state = 'pending' WHERE state = 'in_flight'")
    return cursor.rowcount


def boot_anchor(db: Database, boot_id: str) -> Anchor | None:
    """The time anchor of ``boot_id`` (NTP or the central's clock), if one was measured."""
    row = db.execute(
        "SELECT source, true_time, mono_ns, offset_s, uncertainty_s, measured_at "
        "FROM boot_clock WHERE boot_id = ?", [boot_id],
    ).fetchone()
    if row is None:
        return None
    source, true_time, mono_ns, offset_s, uncertainty_s, measured_at = tuple(row)
    return Anchor(boot_id, source, parse_iso(true_time), mono_ns, offset_s, uncertainty_s,
                  parse_iso(measured_at))


def trusted_now(db: Database, clock: Clock) -> datetime | None:
    """The true time if it is known in this boot (NTP synced, or the central's clock
    measured), else None: the wall clock alone may be days or years off."""
    if clock.synced():
        return clock.now()
    anchor = boot_anchor(db, clock.boot_id)
    return anchor.true_at(clock.monotonic_ns()) if anchor else None


# The best known time of a row: corrected, else the device time if NTP had synced.
_ROW_TIME = "coalesce(corrected_time, CASE WHEN clock_synced = 1 THEN wall_time END)"


def purge_delivered(
    db: Database, *, retention_days: int, clock: Clock | None = None,
    now: datetime | None = None,
) -> int:
    """Delete delivered rows older than ``retention_days``; undelivered rows always stay.

    Nothing is deleted unless the time is known right (issue 9 #7): NTP synced in this
    boot or the central's clock measured in it (``now`` given by the caller counts as
    known), and never when that time is earlier than the newest row time known right.
    A row whose own time is unknown (recorded unsynced, never corrected) ages by its
    delivery time.
    """
    if now is None:
        now = trusted_now(db, clock or Clock())
        if now is None:
            log.info("retention: the clock is not known to be right in this boot (no NTP, no "
                     "central time yet); no delivered row purged")
            return 0
    (newest,) = db.execute(f"SELECT max({_ROW_TIME}) FROM checkins").fetchone()
    if newest is not None and parse_iso(newest) > now + PURGE_CLOCK_TOLERANCE:
        log.warning("retention: the time %s is earlier than the newest row (%s); the clock "
                    "or that row is wrong, no delivered row purged", iso(now), newest)
        return 0
    cutoff = iso(now - timedelta(days=retention_days))
    with immediate(db):
        cursor = db.execute(
            f"DELETE FROM checkins WHERE state = 'sent' "
            f"AND coalesce({_ROW_TIME}, sent_at, wall_time) < ?",
            [cutoff],
        )
    return cursor.rowcount


def db_size(path: str | os.PathLike[str]) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.stat(f"{os.fspath(path)}{suffix}").st_size
        except FileNotFoundError:
            pass
    return total


def get_meta(db: Database) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM sync_meta").fetchall())


def queue_stats(
    db: Database,
    path: str | os.PathLike[str],
    *,
    now: datetime,
    disk_low_below: int,
) -> dict[str, Any]:
    """The ``queue stats`` JSON: counts by delivery state, oldest pending age, sizes, and
    free disk against the kiosk's threshold (``store.disk_warn_mb``, no default here: every
    report must judge "disk low" by the same number)."""
    counts = dict.fromkeys(("pending", "in_flight", "sent", "rejected", "conflict"), 0)
    counts.update(db.execute("SELECT state, count(*) FROM checkins GROUP BY state").fetchall())
    (forbidden,) = db.execute(
        "SELECT count(*) FROM checkins WHERE forbidden = 1 AND state IN ('pending', 'in_flight')"
    ).fetchone()
    oldest = db.execute(
        "SELECT coalesce(corrected_time, wall_time) FROM checkins "
        "WHERE state IN ('pending', 'in_flight') ORDER BY seq LIMIT 1"
    ).fetchone()
    age = None
    if oldest:
        # A clock that was wrong at record time can make the age negative: clamp.
        age = max(0.0, round((now - parse_iso(oldest[0])).total_seconds(), 3))
    disk = disk_space(Path(path).parent, low_below=disk_low_below)
    meta = get_meta(db)
    return {
        **counts,
        "total": sum(counts.values()),
        # Pending rows the server says this device may not post (re-provisioning).
        "forbidden": forbidden,
        "oldest_pending_age_s": age,
        "db_size_bytes": db_size(path),
        "disk_free_bytes": disk.free_bytes,
        "disk_low": disk.low,
        "last_success": meta.get("last_success"),
        "last_error": meta.get("last_error"),
        "reprovision_needed": meta.get("reprovision_needed") == "1",
        # Documents the last pull refused ([name, why], escaped) and a note on the central
        # key (offline_queue.pinned): the kiosk decides with the last good ones meanwhile.
        "document_errors": _json_list(meta.get("document_errors")),
        "central_key_warning": meta.get("central_key_warning"),
        # Identities held in RAM until the central's sealing key arrives (docs/privacy.md),
        # and rows whose identity a restart lost while it waited.
        **identity_counts(db),
        "sealing_key_id": _sealing_key_id(meta.get(SEALING_KEY_META)),
    }


def identity_counts(db: Database) -> dict[str, int]:
    rows = dict(db.execute(
        "SELECT identity, count(*) FROM checkins WHERE identity IN ('waiting', 'lost', 'clear') "
        "GROUP BY identity").fetchall())
    return {"identities_waiting": rows.get("waiting", 0),
            "identities_lost": rows.get("lost", 0),
            "identities_clear": rows.get("clear", 0)}


SEALING_KEY_META = "sealing_key"


class _Held:
    """Identities recorded before the central's sealing key was known, per database file,
    in this process's memory only (never on disk).  The store that recorded them and the
    sync worker's outbox (same process, own connection) both seal them into their rows as
    soon as the key is in ``sync_meta``; a restart loses them (docs/privacy.md)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_db: dict[str, dict[str, dict[str, str]]] = {}

    @staticmethod
    def _name(path: str | os.PathLike[str]) -> str:
        return os.path.realpath(os.fspath(path))

    def hold(self, path: str | os.PathLike[str], checkin_id: str,
             identity: dict[str, str]) -> None:
        with self._lock:
            self._by_db.setdefault(self._name(path), {})[checkin_id] = identity

    def ids(self, path: str | os.PathLike[str]) -> set[str]:
        with self._lock:
            return set(self._by_db.get(self._name(path), {}))

    def take(self, path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
        with self._lock:
            return self._by_db.pop(self._name(path), {})

    def put_back(self, path: str | os.PathLike[str], held: dict[str, dict[str, str]]) -> None:
        with self._lock:
            self._by_db.setdefault(self._name(path), {}).update(held)


HELD = _Held()


def seal_held(db: Database, path: str | os.PathLike[str], sealer: Sealer) -> int:
    """Seal the identities this process holds for ``path`` into their rows; how many."""
    held = HELD.take(path)
    if not held:
        return 0
    try:
        rows = dict(db.execute(
            "SELECT id, device_id FROM checkins WHERE identity = 'waiting'").fetchall())
        updates = [(sealer.seal(identity, aad_for(i, rows[i])), i)
                   for i, identity in held.items() if i in rows]
        with immediate(db):
            db.conn.executemany("UPDATE checkins SET sealed = ?, identity = 'sealed' "
                                "WHERE id = ? AND identity = 'waiting'", updates)
    except BaseException:
        HELD.put_back(path, held)
        raise
    return len(updates)


def read_sealing_key(text: str | None) -> SealingKey | None:
    """The central's sealing key kept in ``sync_meta`` (verified when it was fetched)."""
    if not text:
        return None
    try:
        return SealingKey.from_json(json.loads(text))
    except (ValueError, SealError) as e:
        log.warning("the sealing key in the queue database is unreadable (%s); identities "
                    "wait in memory until the next sync fetches it again", e)
        return None


def seal_clear_rows(db: Database, sealer: Sealer) -> int:
    """Seal the rows an earlier release wrote with a clear identity, overwrite the clear
    values (``secure_delete`` zeroes them) and truncate the WAL; returns how many."""
    rows = []
    for checkin_id, device_id, person_key, reason in db.execute(
            "SELECT id, device_id, person_key, override_reason FROM checkins "
            "WHERE identity = 'clear'").fetchall():
        identity = _identity(person_key, reason)
        rows.append((sealer.seal(identity, aad_for(checkin_id, device_id)) if identity
                     else None, "sealed" if identity else "none",
                     None if "override_reason" in identity else reason, checkin_id))
    if not rows:
        return 0
    with immediate(db):
        db.conn.executemany(
            "UPDATE checkins SET sealed = ?, identity = ?, person_key = NULL, "
            "override_reason = ? WHERE id = ? AND identity = 'clear'", rows)
    truncate_wal(db)  # the clear values were in pages the WAL copied
    return len(rows)


def truncate_wal(db: Database) -> None:
    """Copy the WAL into the file and cut it to nothing (its old frames may hold what a
    sealing just overwrote).  A reader holding a snapshot may keep it: done again at the
    next sealing."""
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as e:
        log.warning("WAL checkpoint failed: %s", e)


def _sealing_key_id(text: str | None) -> str | None:
    key = read_sealing_key(text)
    return key.id if key else None


def _json_list(text: str | None) -> list[Any]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def read_stats(
    path: str | os.PathLike[str], *, disk_low_below: int, now: datetime | None = None
) -> dict[str, Any]:
    """:func:`queue_stats` of the database at ``path``, read while the kiosk runs (WAL lets
    a second reader in): no migration, no write.  ``now`` defaults to the wall clock."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"no check-in database at {str(path)!r}; check the path "
                         "(store.path of the kiosk config, or --db)")
    db = connect(path, synchronous="NORMAL", migrate=False)
    try:
        return queue_stats(db, path, now=now or Clock().now(), disk_low_below=disk_low_below)
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the check-in database {str(path)!r}: {e}") from e
    finally:
        db.close()


def read_document(db: Database, name: str) -> Document | None:
    row = db.execute(
        "SELECT body, etag, fetched_at, expires_at FROM documents WHERE name = ?",
        [check_name(name)],
    ).fetchone()
    if row is None:
        return None
    body, etag, fetched_at, expires_at = row
    return Document(
        name=name,
        body=bytes(body),
        etag=etag,
        fetched_at=parse_iso(fetched_at),
        expires_at=parse_iso(expires_at) if expires_at else None,
    )


class Connection:
    """One SQLite connection behind a lock, closed once, as a context manager: what
    :class:`Store` and ``offline_queue.outbox.Outbox`` (each on its own connection) share."""

    _db: Database
    _lock: threading.Lock
    _closed: bool

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()


class Store(Connection):
    """The kiosk's check-in queue; safe to call from any thread (one lock, one connection).

    Opening runs ``PRAGMA quick_check`` and raises :class:`StoreIntegrityError` (a
    :class:`StoreError`) if the file is damaged: the kiosk shows its fault screen rather
    than lighting green for records that may not survive.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        device_id: str,
        checkpoint_id: str,
        retention_days: int = 30,
        clock: Clock | None = None,
        tz: tzinfo | None = None,
        app_version: str = "unknown",
    ) -> None:
        if not device_id or not checkpoint_id:
            raise ValueError(
                f"Store needs a device_id and a checkpoint_id, got {device_id!r} and "
                f"{checkpoint_id!r}; provision the kiosk first"
            )
        if retention_days < 1:
            raise ValueError(f"retention_days is {retention_days!r}; use a whole number >= 1")
        self.path = Path(path)
        self.device_id = device_id
        self.checkpoint_id = checkpoint_id
        self.retention_days = retention_days
        self.clock = clock or Clock()
        self.tz = tz
        self.app_version = app_version  # recorded with each check-in (the kiosk's version)
        self._lock = threading.Lock()
        self._closed = False
        self._sealer: Sealer | None = None
        self._sealer_text: str | None = None
        self._legacy = False  # rows of an earlier release still hold a clear identity
        self._waiting = False  # identities of this store held in memory (HELD)
        self._db = connect(self.path, synchronous="FULL", migrate=False)
        try:
            problems = quick_check(self._db)
            if problems:
                raise StoreIntegrityError(
                    f"the check-in database {str(self.path)!r} is damaged "
                    f"(quick_check: {'; '.join(problems[:5])!r}); stop the kiosk, copy the "
                    "file for a technician, then move it aside to start a new one"
                )
            migrations.apply(self._db)
            reset = reset_in_flight(self._db)
            purged = purge_delivered(self._db, retention_days=retention_days, clock=self.clock)
            lost = self._open_identities()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StoreIntegrityError(
                f"the check-in database {str(self.path)!r} cannot be read ({e}); stop the "
                "kiosk, copy the file for a technician, then move it aside to start a new one"
            ) from e
        except BaseException:
            self._db.close()
            raise
        log.info(
            "check-in store %s open: %d in-flight rows back to pending, %d delivered rows purged",
            self.path, reset, purged,
        )
        if lost:
            log.warning("%d check-in(s) recorded before the central's sealing key was known "
                        "lost their identity in a restart (kept in memory only); they are "
                        "sent without it, marked identity_not_kept", lost)

    # -- identities at rest (docs/privacy.md) ------------------------------------------------

    def _open_identities(self) -> int:
        """At open: identities a previous process held in RAM are gone (marked); rows of an
        earlier release are sealed if the key is known; a file never cleaned since the
        upgrade is vacuumed once, so no deleted clear row survives in free pages.  Returns
        how many rows lost their identity."""
        held = HELD.ids(self.path)  # this process's, still in memory: not lost
        with immediate(self._db):
            lost = 0
            for (checkin_id,) in self._db.execute(
                    "SELECT id FROM checkins WHERE identity = 'waiting'").fetchall():
                if checkin_id not in held:
                    lost += self._db.execute(
                        "UPDATE checkins SET identity = 'lost', "
                        "reasons = json_insert(reasons, '$[#]', 'identity_not_kept') "
                        "WHERE id = ?", [checkin_id]).rowcount
        self._legacy = self._db.execute(
            "SELECT 1 FROM checkins WHERE identity = 'clear' LIMIT 1").fetchone() is not None
        self._seal_pending()
        if get_meta(self._db).get("at_rest") != "sealed":
            self._db.execute("VACUUM")
            with immediate(self._db):
                self._db.execute("INSERT INTO sync_meta (key, value) VALUES ('at_rest', "
                                 "'sealed') ON CONFLICT(key) DO UPDATE SET value = 'sealed'")
            truncate_wal(self._db)
        return lost

    def _current_sealer(self) -> Sealer | None:
        """The sealer of the central key in ``sync_meta`` (the sync worker keeps it)."""
        row = self._db.execute("SELECT value FROM sync_meta WHERE key = ?",
                               [SEALING_KEY_META]).fetchone()
        text = row[0] if row else None
        if text != self._sealer_text:
            key = read_sealing_key(text)
            self._sealer = Sealer(key) if key is not None else None
            self._sealer_text = text
        return self._sealer

    def _seal_pending(self) -> int:
        """Seal what waits (identities in RAM, clear rows of an earlier release) once the
        central's key is known; returns how many rows were sealed.  Caller holds the lock
        (or is the constructor)."""
        if not (self._waiting or self._legacy):
            return 0
        sealer = self._current_sealer()
        if sealer is None:
            return 0
        held = seal_held(self._db, self.path, sealer)
        self._waiting = False
        legacy = 0
        if self._legacy:
            legacy = seal_clear_rows(self._db, sealer)
            self._legacy = False
        if held or legacy:
            log.info("sealed %d identities to the central's key %s", held + legacy,
                     sealer.key.id)
        return held + legacy

    def protect(self) -> int:
        """Seal identities waiting for the central's key, if it has arrived (the scan loop
        calls this now and then; a check-in does too).  Returns how many were sealed."""
        with self._lock:
            self._check_open()
            try:
                return self._seal_pending()
            except sqlite3.Error as e:
                raise StoreError(f"could not seal waiting identities in {str(self.path)!r}: "
                                 f"{e}; check free space and the SD card") from e

    @property
    def identities_waiting(self) -> int:
        """Identities held in RAM for want of the central's sealing key."""
        return len(HELD.ids(self.path))

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, device_id={self.device_id!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the check-in store {str(self.path)!r} is closed")

    def record(self, entry: CheckIn) -> str:
        """Commit one check-in durably (``synchronous=FULL``) and return its UUIDv7 id."""
        now = self.clock.now()
        mono = self.clock.monotonic_ns()
        synced = self.clock.synced()
        checkin_id = uuid7()
        identity = _identity(entry.person_key, entry.override_reason)
        reason = None if "override_reason" in identity else entry.override_reason
        with self._lock:
            self._check_open()
            try:
                if self._waiting or self._legacy:
                    self._waiting = bool(HELD.ids(self.path))
                    self._seal_pending()
                sealer = self._current_sealer() if identity else None
                sealed = sealer.seal(identity, aad_for(checkin_id, self.device_id)) \
                    if sealer is not None else None
                state = "none" if not identity else "sealed" if sealed else "waiting"
                # The identity is never written in clear: sealed, or held in RAM.
                row = (
                    checkin_id, self.device_id, self.checkpoint_id, entry.direction,
                    entry.kind, None,
                    json.dumps(dict(entry.display), ensure_ascii=False, sort_keys=True),
                    entry.decision, json.dumps(list(entry.reasons)), entry.source,
                    entry.override_of, entry.original_decision, reason, iso(now), mono,
                    self.clock.boot_id, int(synced), self.app_version,
                    "ntp" if synced else "none", sealed, state, entry.officer,
                )
                with immediate(self._db):
                    if entry.override_of is not None:
                        found = self._db.execute(
                            "SELECT 1 FROM checkins WHERE id = ?", [entry.override_of]
                        ).fetchone()
                        if not found:
                            raise StoreError(
                                f"override_of {entry.override_of!r} is not a check-in recorded "
                                "on this kiosk; override a row returned by record()/recent()"
                            )
                    self._db.execute(
                        "INSERT INTO checkins (id, device_id, checkpoint_id, direction, kind, "
                        "person_key, display, decision, reasons, source, override_of, "
                        "original_decision, override_reason, wall_time, mono_ns, boot_id, "
                        "clock_synced, app_version, time_source, sealed, identity, officer) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                if state == "waiting":
                    HELD.hold(self.path, checkin_id, identity)
                    self._waiting = True
            except sqlite3.Error as e:
                raise StoreError(
                    f"could not record the check-in in {str(self.path)!r}: {e}; "
                    "check free space and the SD card"
                ) from e
        log.debug("recorded check-in %s (%s, %s)", checkin_id, entry.kind, entry.decision)
        return checkin_id

    def _local_day_bounds(self, now: datetime) -> tuple[str, str]:
        local = now.astimezone(self.tz) if self.tz else now.astimezone()
        start = datetime.combine(local.date(), time(), tzinfo=local.tzinfo)
        end = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=local.tzinfo)
        return iso(start), iso(end)

    def counts_today(self, *, now: datetime | None = None) -> dict[str, int]:
        """Counts for the local calendar day; an override replaces the row it overrides."""
        start, end = self._local_day_bounds(now or self.clock.now())
        counts = dict.fromkeys((*DIRECTIONS, *DECISIONS, "total"), 0)
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT direction, decision, count(*) FROM checkins AS c "
                "WHERE wall_time >= ? AND wall_time < ? AND NOT EXISTS "
                "(SELECT 1 FROM checkins AS o WHERE o.override_of = c.id) "
                "GROUP BY direction, decision",
                [start, end],
            ).fetchall()
        for direction, decision, n in rows:
            counts[direction] += n
            counts[decision] += n
            counts["total"] += n
        return counts

    def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        """Newest first, masked fields only (no person key)."""
        with self._lock:
            self._check_open()
            rows = self._db.execute(
                "SELECT id, wall_time, direction, kind, display, decision, reasons, override_of "
                "FROM checkins ORDER BY seq DESC LIMIT ?",
                [limit],
            ).fetchall()
        return [
            {
                "id": r[0], "time": r[1], "direction": r[2], "kind": r[3],
                "display": json.loads(r[4]), "decision": r[5], "reasons": json.loads(r[6]),
                "override_of": r[7],
            }
            for r in rows
        ]

    def document(self, name: str) -> Document | None:
        """The last applied version of a down-synced document, or None before the first."""
        with self._lock:
            self._check_open()
            return read_document(self._db, name)


def _identity(person_key: str | None, override_reason: str | None) -> dict[str, str]:
    """What of a check-in is sealed: its person key, and an override reason holding a
    digit (an officer may type a document number there); empty when there is nothing."""
    identity = {}
    if person_key:
        identity["person_key"] = person_key
    if override_reason and needs_sealing(override_reason):
        identity["override_reason"] = override_reason
    return identity
