"""The central platform's SQLite database: schema, enrolment, ingest, documents, report."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from kiosk.errors import StoreError
from offline_queue import wire
from offline_queue.clock import iso, parse_iso
from offline_queue.documents import check_name, sha256, validate

migrations = Migrations("checkpoint_kiosk.central")


@migrations()
def m001_initial(db: Database) -> None:
    db.execute(
        "CREATE TABLE checkpoints (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "created_at TEXT NOT NULL)"
    )
    # Tokens are stored hashed: a copy of the database does not let anyone enrol or post.
    db.execute(
        "CREATE TABLE enrolment_tokens (token_hash TEXT PRIMARY KEY, "
        "checkpoint_id TEXT NOT NULL REFERENCES checkpoints(id), created_at TEXT NOT NULL, "
        "used_at TEXT, device_id TEXT)"
    )
    db.execute(
        "CREATE TABLE devices (id TEXT PRIMARY KEY, checkpoint_id TEXT NOT NULL "
        "REFERENCES checkpoints(id), token_hash TEXT NOT NULL UNIQUE, enrolled_at TEXT NOT NULL, "
        "revoked INTEGER NOT NULL DEFAULT 0)"
    )
    # The permanent dedupe: one row per check-in id, ever.
    db.execute(
        "CREATE TABLE checkins (id TEXT PRIMARY KEY, device_id TEXT NOT NULL, "
        "checkpoint_id TEXT NOT NULL, content_hash TEXT NOT NULL, body TEXT NOT NULL, "
        "event_time TEXT NOT NULL, clock_synced INTEGER NOT NULL, corrected_at TEXT, "
        "received_at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX checkins_checkpoint_time ON checkins (checkpoint_id, event_time)")
    # Same id, other content: kept for a technician, never merged automatically.
    db.execute(
        "CREATE TABLE conflicts (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, "
        "device_id TEXT NOT NULL, content_hash TEXT NOT NULL, body TEXT NOT NULL, "
        "received_at TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TABLE documents (name TEXT PRIMARY KEY, body BLOB NOT NULL, etag TEXT NOT NULL, "
        "updated_at TEXT NOT NULL, expires_at TEXT)"
    )


def connect(path: str | os.PathLike[str], *, migrate: bool = True) -> Database:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # "accepted" is a promise the kiosk acts on: commit it durably.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        db = Database(conn, execute_plugins=False)
        if migrate:
            migrations.apply(db)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(
            f"cannot open the central database {str(path)!r}: {e}; "
            "check the path and that the file is a checkpoint-kiosk central database"
        ) from e
    return db


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


def create_enrolment_token(db: Database, *, checkpoint_id: str, name: str) -> str:
    """Register the checkpoint if new and return a one-time enrolment token."""
    if not checkpoint_id.strip():
        raise ValueError("checkpoint id is empty; pass --checkpoint with e.g. 'HN-NOIBAI-T2'")
    token = "enrol-" + secrets.token_urlsafe(24)
    stamp = iso(now_utc())
    with db.atomic():
        db.execute(
            "INSERT INTO checkpoints (id, name, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            [checkpoint_id, name, stamp],
        )
        db.execute(
            "INSERT INTO enrolment_tokens (token_hash, checkpoint_id, created_at) VALUES (?, ?, ?)",
            [hash_token(token), checkpoint_id, stamp],
        )
    return token


@dataclass(frozen=True)
class Device:
    id: str
    checkpoint_id: str


def enrol(db: Database, enrolment_token: str) -> tuple[Device, str] | None:
    """Exchange an unused enrolment token for a device and its token; None if invalid."""
    token_hash = hash_token(enrolment_token)
    device_token = "dev-" + secrets.token_urlsafe(32)
    device = None
    with db.atomic():
        # The conditional UPDATE makes a token single-use even under concurrent requests.
        device_id = f"kiosk-{uuid.uuid4().hex[:12]}"
        stamp = iso(now_utc())
        cursor = db.execute(
            "UPDATE enrolment_tokens SET used_at = ?, device_id = ? "
            "WHERE token_hash = ? AND used_at IS NULL",
            [stamp, device_id, token_hash],
        )
        if cursor.rowcount != 1:
            return None
        (checkpoint_id,) = db.execute(
            "SELECT checkpoint_id FROM enrolment_tokens WHERE token_hash = ?", [token_hash]
        ).fetchone()
        db.execute(
            "INSERT INTO devices (id, checkpoint_id, token_hash, enrolled_at) VALUES (?, ?, ?, ?)",
            [device_id, checkpoint_id, hash_token(device_token), stamp],
        )
        device = Device(device_id, checkpoint_id)
    return device, device_token


def device_for_token(db: Database, token: str) -> Device | None:
    row = db.execute(
        "SELECT id, checkpoint_id FROM devices WHERE token_hash = ? AND revoked = 0",
        [hash_token(token)],
    ).fetchone()
    return Device(*row) if row else None


def revoke_device(db: Database, device_id: str) -> bool:
    with db.atomic():
        return db.execute("UPDATE devices SET revoked = 1 WHERE id = ?", [device_id]).rowcount == 1


def ingest(db: Database, device: Device, items: list[Any]) -> list[dict[str, Any]]:
    """Store a batch; one result per item: accepted, duplicate, conflict or rejected."""
    results = []
    stamp = iso(now_utc())
    with db.atomic():
        for item in items:
            errors = wire.validation_errors(item)
            if not errors and (item["device_id"], item["checkpoint_id"]) != (
                device.id, device.checkpoint_id,
            ):
                errors = [
                    f"check-in names device {item['device_id']!r} at checkpoint "
                    f"{item['checkpoint_id']!r} but the token belongs to {device.id!r} at "
                    f"{device.checkpoint_id!r}"
                ]
            item_id = item.get("id") if isinstance(item, dict) else None
            if errors:
                results.append({"id": item_id, "status": "rejected", "errors": errors})
                continue
            digest = wire.content_hash(item)
            body = json.dumps(item, ensure_ascii=False, sort_keys=True)
            # An unsynced clock from an earlier boot cannot be trusted; the report falls
            # back to the receive time for those.
            event_time = item["corrected_at"] or (
                item["recorded_at"] if item["clock_synced"] else stamp
            )
            inserted = db.execute(
                "INSERT INTO checkins (id, device_id, checkpoint_id, content_hash, body, "
                "event_time, clock_synced, corrected_at, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                [item_id, device.id, device.checkpoint_id, digest, body, event_time,
                 int(item["clock_synced"]), item.get("corrected_at"), stamp],
            ).rowcount
            if inserted:
                results.append({"id": item_id, "status": "accepted"})
                continue
            (stored_hash,) = db.execute(
                "SELECT content_hash FROM checkins WHERE id = ?", [item_id]
            ).fetchone()
            if stored_hash == digest:
                if item.get("corrected_at"):
                    db.execute(
                        "UPDATE checkins SET corrected_at = ?, event_time = ? "
                        "WHERE id = ? AND corrected_at IS NULL",
                        [item["corrected_at"], item["corrected_at"], item_id],
                    )
                results.append({"id": item_id, "status": "duplicate"})
            else:
                db.execute(
                    "INSERT INTO conflicts (id, device_id, content_hash, body, received_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [item_id, device.id, digest, body, stamp],
                )
                results.append({
                    "id": item_id, "status": "conflict",
                    "errors": ["the server holds this id with different content"],
                })
    return results


def set_document(
    db: Database, name: str, body: bytes, *, expires_at: datetime | None = None
) -> str:
    """Publish a new version of a document; returns its ETag."""
    check_name(name)
    validate(name, body)
    etag = sha256(body)[:32]
    with db.atomic():
        db.execute(
            "INSERT INTO documents (name, body, etag, updated_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET body = excluded.body, "
            "etag = excluded.etag, updated_at = excluded.updated_at, "
            "expires_at = excluded.expires_at",
            [name, body, etag, iso(now_utc()), iso(expires_at) if expires_at else None],
        )
    return etag


def get_document(db: Database, name: str) -> tuple[bytes, str, datetime | None] | None:
    row = db.execute(
        "SELECT body, etag, expires_at FROM documents WHERE name = ?", [check_name(name)]
    ).fetchone()
    if row is None:
        return None
    return bytes(row[0]), row[1], parse_iso(row[2]) if row[2] else None


def scans_report(db: Database, *, days: int = 7, now: datetime | None = None) -> dict[str, Any]:
    """Per checkpoint, check-ins in the last ``days`` days, and which checkpoints had none."""
    until = now or now_utc()
    since = until - timedelta(days=days)
    rows = db.execute(
        "SELECT p.id, p.name, count(c.id) FROM checkpoints AS p LEFT JOIN checkins AS c "
        "ON c.checkpoint_id = p.id AND c.event_time >= ? AND c.event_time < ? "
        "GROUP BY p.id ORDER BY p.id",
        [iso(since), iso(until)],
    ).fetchall()
    checkpoints = [{"id": r[0], "name": r[1], "scans": r[2]} for r in rows]
    return {
        "since": iso(since),
        "until": iso(until),
        "days": days,
        "checkpoints": checkpoints,
        "without_scans": [c["id"] for c in checkpoints if c["scans"] == 0],
    }


def export_checkins(db: Database):
    """Every received check-in as a dict, in receive order."""
    for (body, received_at) in db.execute(
        "SELECT body, received_at FROM checkins ORDER BY rowid"
    ):
        item = json.loads(body)
        item["received_at"] = received_at
        yield item
