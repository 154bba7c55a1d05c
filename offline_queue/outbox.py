"""The sync worker's side of the queue database: claim, mark, correct times, documents.

It has its own connection with ``synchronous=NORMAL``: losing a "sent" mark in a power
cut only causes a resend, which the server's dedupe answers with "duplicate".  Every
write is one short BEGIN IMMEDIATE transaction, so it never makes a check-in fail.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TypeVar

from offline_queue import wire
from offline_queue.clock import Anchor, Clock, iso
from offline_queue.documents import Document, sha256
from offline_queue.errors import StoreError
from offline_queue.sealing import Sealer
from offline_queue.store import (
    SEALING_KEY_META,
    Connection,
    boot_anchor,
    connect,
    get_meta,
    immediate,
    purge_delivered,
    read_document,
    read_sealing_key,
    reset_in_flight,
    seal_clear_rows,
    seal_held,
    trusted_now,
)

T = TypeVar("T")


class Outbox(Connection):
    """Delivery bookkeeping on a dedicated connection; context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._db = connect(path, synchronous="NORMAL")
        self._db.conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._closed = False

    def _run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._closed:
                raise StoreError(f"the outbox on {str(self.path)!r} is closed")
            try:
                with immediate(self._db):
                    return fn(*args)
            except sqlite3.Error as e:
                raise StoreError(f"queue database {str(self.path)!r}: {e}") from e

    def seal_clear(self) -> int:
        """Once the central's sealing key is in ``sync_meta``: seal the identities this
        process holds in memory for want of it, and rows an earlier release wrote with a
        clear identity (``store.seal_held``, ``store.seal_clear_rows``); returns how many."""
        with self._lock:
            key = read_sealing_key(get_meta(self._db).get(SEALING_KEY_META))
            if key is None:
                return 0
            sealer = Sealer(key)
            try:
                return seal_held(self._db, self.path, sealer) + seal_clear_rows(self._db, sealer)
            except sqlite3.Error as e:
                raise StoreError(f"queue database {str(self.path)!r}: {e}") from e

    def reset_in_flight(self) -> int:
        with self._lock:
            return reset_in_flight(self._db)

    def claim(self, limit: int) -> list[wire.CheckIn]:
        """Mark the oldest ``limit`` pending rows in flight and return them in wire form."""
        return self.claim_batch(limit)[0]

    def claim_batch(
        self, limit: int, *, after_seq: int = 0, include_forbidden: bool = True
    ) -> tuple[list[wire.CheckIn], int]:
        """Claim the next pending rows after ``after_seq``; returns them and the last seq.

        A pass of the queue moves its cursor on, so a row released in this pass (no
        answer, forbidden) is not claimed again until the next pass.
        """

        def claim() -> tuple[list[wire.CheckIn], int]:
            rows = self._db.execute(
                "SELECT * FROM checkins WHERE state = 'pending' AND seq > ? "
                "AND (forbidden = 0 OR ?) AND identity NOT IN ('waiting', 'clear') "
                "ORDER BY seq LIMIT ?",
                [after_seq, int(include_forbidden), limit],
            ).fetchall()
            if rows:
                self._db.conn.executemany(
                    "UPDATE checkins SET state = 'in_flight', attempts = attempts + 1 "
                    "WHERE seq = ?",
                    [(r["seq"],) for r in rows],
                )
            last = rows[-1]["seq"] if rows else after_seq
            return [wire.from_row(dict(r)) for r in rows], last

        return self._run(claim)

    def release(self, ids: Iterable[str], error: str) -> None:
        """Send these rows again later."""
        self._set_states([("pending", error, None, None, i) for i in ids])

    def hold(self, errors: dict[str, str]) -> None:
        """The server answered "forbidden" (id -> why): pending, flagged, retried slowly,
        never dead letter."""
        self._set_states([("pending", error, None, 1, i) for i, error in errors.items()])

    def _set_states(
        self, params: list[tuple[str, str | None, str | None, int | None, str]]
    ) -> None:
        """(state, error, sent_at, forbidden, id) for rows still in flight; others are left
        alone.  ``forbidden`` None keeps the flag."""

        def update() -> None:
            self._db.conn.executemany(
                "UPDATE checkins SET state = ?, last_error = ?, sent_at = coalesce(?, sent_at), "
                "forbidden = coalesce(?, forbidden) WHERE id = ? AND state = 'in_flight'",
                params,
            )

        self._run(update)

    def mark_results(self, results: dict[str, tuple[str, str | None]], now: datetime) -> None:
        """Apply the server's answer: id -> (state, error)."""
        stamp = iso(now)
        self._set_states([
            (state, error, stamp if state == "sent" else None, 0, i)
            for i, (state, error) in results.items()
        ])

    def requeue_dead_letter(self) -> int:
        """Dead letter (``rejected``) back to pending, attempts and last error kept; conflicts
        stay.  For a technician, and after a re-enrolment; returns how many."""
        return self._run(lambda: self._db.execute(
            "UPDATE checkins SET state = 'pending' WHERE state = 'rejected'").rowcount)

    def undelivered_device_ids(self) -> list[str]:
        """Distinct device ids of rows not yet delivered (to link at re-enrolment)."""
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT DISTINCT device_id FROM checkins WHERE state != 'sent' ORDER BY 1")]

    def anchor(self, boot_id: str) -> Anchor | None:
        with self._lock:
            return boot_anchor(self._db, boot_id)

    def trusted_now(self, clock: Clock) -> datetime | None:
        """The true time if known in this boot (NTP or the central's clock), else None."""
        with self._lock:
            return trusted_now(self._db, clock)

    def record_clock(
        self, *, clock: Clock, server_time: datetime, wall: datetime, mono_ns: int,
        uncertainty_s: float, source: str = "central",
    ) -> bool:
        """Keep a measurement of true time for this boot; True if it became the anchor.

        An NTP anchor is never replaced by the central's; a central one only by a
        measurement with a smaller uncertainty (a shorter round trip).
        """

        def store() -> bool:
            current = boot_anchor(self._db, clock.boot_id)
            if current is not None and (current.source == "ntp" or (
                    source == "central" and current.uncertainty_s <= uncertainty_s)):
                return False
            self._db.execute(
                "INSERT INTO boot_clock (boot_id, source, true_time, mono_ns, offset_s, "
                "uncertainty_s, measured_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(boot_id) DO UPDATE SET source = excluded.source, "
                "true_time = excluded.true_time, mono_ns = excluded.mono_ns, "
                "offset_s = excluded.offset_s, uncertainty_s = excluded.uncertainty_s, "
                "measured_at = excluded.measured_at",
                [clock.boot_id, source, iso(server_time), mono_ns,
                 (server_time - wall).total_seconds(), uncertainty_s, iso(wall)],
            )
            return True

        return self._run(store)

    def correct_times(self, clock: Clock) -> int:
        """Give this boot's rows of unknown time their true time from the boot's anchor.

        The anchor is NTP once it has synced in this boot, else the central's clock if
        it was measured (issue 9 #16).  Rows recorded before the measurement are corrected
        too, through their monotonic reading.  Rows of earlier boots cannot be corrected
        (the monotonic clock restarted); they go out with ``time_source: none``.
        """
        if clock.synced():
            now, mono = clock.now(), clock.monotonic_ns()
            self.record_clock(clock=clock, server_time=now, wall=now, mono_ns=mono,
                              uncertainty_s=0.0, source="ntp")

        def correct() -> int:
            anchor = boot_anchor(self._db, clock.boot_id)
            if anchor is None:
                return 0
            rows = self._db.execute(
                "SELECT seq, mono_ns FROM checkins WHERE boot_id = ? AND time_source = 'none'",
                [clock.boot_id],
            ).fetchall()
            self._db.conn.executemany(
                "UPDATE checkins SET corrected_time = ?, time_source = ? WHERE seq = ?",
                [(iso(anchor.true_at(r["mono_ns"])), anchor.source, r["seq"]) for r in rows],
            )
            return len(rows)

        return self._run(correct)

    def purge(self, *, retention_days: int, clock: Clock) -> int:
        """Retention, only on a clock known right (see ``store.purge_delivered``)."""
        with self._lock:
            return purge_delivered(self._db, retention_days=retention_days, clock=clock)

    def counts(self) -> dict[str, int]:
        """Rows by delivery state, plus ``forbidden`` (pending rows the server refused
        for this device)."""
        with self._lock:
            counts = dict.fromkeys(("pending", "in_flight", "sent", "rejected", "conflict"), 0)
            counts.update(
                (r[0], r[1])
                for r in self._db.execute("SELECT state, count(*) FROM checkins GROUP BY state")
            )
            counts["forbidden"] = self._db.execute(
                "SELECT count(*) FROM checkins WHERE forbidden = 1 "
                "AND state IN ('pending', 'in_flight')").fetchone()[0]
            return counts

    def meta(self) -> dict[str, str]:
        with self._lock:
            return get_meta(self._db)

    def set_meta(self, **values: str | None) -> None:
        def write() -> None:
            self._db.conn.executemany(
                "INSERT INTO sync_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

        self._run(write)

    def document(self, name: str) -> Document | None:
        with self._lock:
            return read_document(self._db, name)

    def apply_documents(self, documents: list[Document], touched: list[str],
                        now: datetime) -> None:
        """Store new versions together (one transaction); refresh fetch time of unchanged."""

        def apply() -> None:
            for doc in documents:
                self._db.execute(
                    "INSERT INTO documents (name, body, etag, sha256, fetched_at, expires_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                    "body = excluded.body, etag = excluded.etag, sha256 = excluded.sha256, "
                    "fetched_at = excluded.fetched_at, expires_at = excluded.expires_at",
                    [doc.name, doc.body, doc.etag, sha256(doc.body), iso(doc.fetched_at),
                     iso(doc.expires_at) if doc.expires_at else None],
                )
            for name in touched:
                self._db.execute(
                    "UPDATE documents SET fetched_at = ? WHERE name = ?", [iso(now), name]
                )

        self._run(apply)
