"""The sync worker's side of the queue database: claim, mark, correct times, documents.

It has its own connection with ``synchronous=NORMAL``: losing a "sent" mark in a power
cut only causes a resend, which the server's dedupe answers with "duplicate".
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from kiosk.errors import StoreError
from offline_queue import wire
from offline_queue.clock import Clock, iso
from offline_queue.documents import Document, sha256
from offline_queue.store import (
    connect,
    get_meta,
    purge_delivered,
    queue_stats,
    read_document,
    reset_in_flight,
)


class Outbox:
    """Delivery bookkeeping on a dedicated connection; context manager."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path
        self._db = connect(path, synchronous="NORMAL")
        self._db.conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def _run(self, fn, *args: Any) -> Any:  # noqa: ANN001 - internal helper
        with self._lock:
            if self._closed:
                raise StoreError(f"the outbox on {str(self.path)!r} is closed")
            try:
                with self._db.atomic():
                    return fn(*args)
            except sqlite3.Error as e:
                raise StoreError(f"queue database {str(self.path)!r}: {e}") from e

    def reset_in_flight(self) -> int:
        with self._lock:
            return reset_in_flight(self._db)

    def claim(self, limit: int) -> list[dict[str, Any]]:
        """Mark the oldest ``limit`` pending rows in flight and return them in wire form."""

        def claim() -> list[dict[str, Any]]:
            rows = self._db.execute(
                "SELECT * FROM checkins WHERE state = 'pending' ORDER BY seq LIMIT ?", [limit]
            ).fetchall()
            if rows:
                self._db.conn.executemany(
                    "UPDATE checkins SET state = 'in_flight', attempts = attempts + 1 "
                    "WHERE seq = ?",
                    [(r["seq"],) for r in rows],
                )
            return [wire.from_row(dict(r)) for r in rows]

        return self._run(claim)

    def claim_ids(self, ids: list[str]) -> list[dict[str, Any]]:
        """Mark these pending rows in flight (a one-by-one resend) and return them."""

        def claim() -> list[dict[str, Any]]:
            rows = []
            for i in ids:
                row = self._db.execute(
                    "SELECT * FROM checkins WHERE id = ? AND state = 'pending'", [i]
                ).fetchone()
                if row is not None:
                    rows.append(row)
                    self._db.execute(
                        "UPDATE checkins SET state = 'in_flight', attempts = attempts + 1 "
                        "WHERE seq = ?", [row["seq"]],
                    )
            return [wire.from_row(dict(r)) for r in rows]

        return self._run(claim)

    def release(self, ids: Iterable[str], error: str) -> None:
        """Send these rows again later."""
        self._set_states([("pending", error, None, i) for i in ids])

    def _set_states(self, params: list[tuple[str, str | None, str | None, str]]) -> None:
        """(state, error, sent_at, id) for rows still in flight; others are left alone."""

        def update() -> None:
            self._db.conn.executemany(
                "UPDATE checkins SET state = ?, last_error = ?, sent_at = coalesce(?, sent_at) "
                "WHERE id = ? AND state = 'in_flight'",
                params,
            )

        self._run(update)

    def mark_results(self, results: dict[str, tuple[str, str | None]], now: datetime) -> None:
        """Apply the server's answer: id -> (state, error)."""
        stamp = iso(now)
        self._set_states([
            (state, error, stamp if state == "sent" else None, i)
            for i, (state, error) in results.items()
        ])

    def correct_times(self, clock: Clock) -> int:
        """Once NTP has synced in this boot, derive true times from the monotonic clock.

        Rows of earlier boots cannot be corrected (the monotonic clock restarted); they
        go out flagged ``clock_synced: false``.
        """
        if not clock.synced():
            return 0
        now, mono = clock.now(), clock.monotonic_ns()

        def correct() -> int:
            rows = self._db.execute(
                "SELECT seq, mono_ns FROM checkins WHERE boot_id = ? AND clock_synced = 0 "
                "AND corrected_time IS NULL AND state != 'sent'",
                [clock.boot_id],
            ).fetchall()
            self._db.conn.executemany(
                "UPDATE checkins SET corrected_time = ? WHERE seq = ?",
                [(iso(now - timedelta(microseconds=(mono - r["mono_ns"]) // 1000)), r["seq"])
                 for r in rows],
            )
            return len(rows)

        return self._run(correct)

    def purge(self, *, retention_days: int, now: datetime) -> int:
        with self._lock:
            return purge_delivered(self._db, retention_days=retention_days, now=now)

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts = dict.fromkeys(("pending", "in_flight", "sent", "rejected", "conflict"), 0)
            counts.update(
                (r[0], r[1])
                for r in self._db.execute("SELECT state, count(*) FROM checkins GROUP BY state")
            )
            return counts

    def stats(self, now: datetime) -> dict[str, Any]:
        with self._lock:
            return queue_stats(self._db, self.path, now=now)

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

    def apply_documents(self, documents: list[Document], touched: list[str], now: datetime):
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
