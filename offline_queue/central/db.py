"""The central platform's SQLite database: schema, enrolment, ingest, documents, report."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from offline_queue import wire
from offline_queue.clock import iso, parse_iso
from offline_queue.documents import check_name, sha256, validate
from offline_queue.errors import StoreError

migrations = Migrations("checkpoint_kiosk.central")

# Which time a check-in's event_time is (see ``ingest``), best first.
TIME_BASES = ("corrected", "device_synced", "device_unsynced", "received")
MAX_PREVIOUS_DEVICES = 16
MAX_DEVICE_ID = 64

Validators = Mapping[str, Callable[[bytes], None]]


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


@migrations()
def m002_time_basis(db: Database) -> None:
    # Device time, the kiosk's correction and its source, and which of them (or the
    # receive time) the report uses, so a technician can see how a time was obtained.
    db.execute("ALTER TABLE checkins ADD COLUMN recorded_at TEXT")
    db.execute("ALTER TABLE checkins ADD COLUMN time_source TEXT")
    db.execute(
        "ALTER TABLE checkins ADD COLUMN time_basis TEXT NOT NULL DEFAULT 'received' "
        "CHECK (time_basis IN ('corrected', 'device_synced', 'device_unsynced', 'received'))"
    )
    # What m001's ingest did: corrected, else device time if synced, else receive time.
    db.execute(
        "UPDATE checkins SET recorded_at = json_extract(body, '$.recorded_at'), "
        "time_basis = CASE WHEN corrected_at IS NOT NULL THEN 'corrected' "
        "WHEN clock_synced THEN 'device_synced' ELSE 'received' END"
    )


@migrations()
def m003_device_links(db: Database) -> None:
    # A re-enrolled kiosk (new device id) may deliver what it recorded under the ids
    # it replaces; posted_by keeps which device actually delivered each row.
    db.execute(
        "CREATE TABLE device_links (device_id TEXT NOT NULL REFERENCES devices(id), "
        "previous_device_id TEXT NOT NULL REFERENCES devices(id), linked_at TEXT NOT NULL, "
        "PRIMARY KEY (device_id, previous_device_id))"
    )
    db.execute("ALTER TABLE checkins ADD COLUMN posted_by TEXT")
    db.execute("UPDATE checkins SET posted_by = device_id")


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


def check_previous_device_ids(value: Any) -> list[str]:
    """The ``previous_device_ids`` of an enrol request; ValueError says what is wrong."""
    if not isinstance(value, list) or len(value) > MAX_PREVIOUS_DEVICES or not all(
        isinstance(v, str) and 0 < len(v) <= MAX_DEVICE_ID for v in value
    ):
        raise ValueError(
            f"previous_device_ids is {wire.short_repr(value)}; send a list of at most "
            f"{MAX_PREVIOUS_DEVICES} device ids (strings of 1 to {MAX_DEVICE_ID} characters) "
            "this kiosk was enrolled as before"
        )
    return list(dict.fromkeys(value))


def enrol(
    db: Database, enrolment_token: str, *, previous_device_ids: list[str] | tuple[str, ...] = ()
) -> tuple[Device, str] | None:
    """Exchange an unused enrolment token for a device and its token; None if invalid.

    ``previous_device_ids`` are ids this kiosk had before; those the central knows at the
    same checkpoint are linked, so the new device may deliver their backlog
    (:func:`linked_devices` lists them).
    """
    previous = check_previous_device_ids(list(previous_device_ids))
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
        # Only devices of the token's own checkpoint: an enrolment token is the admin's
        # trust in one checkpoint, not a way to speak for kiosks elsewhere.  Revoked ones
        # count (being refused is the usual reason to re-enrol).
        for previous_id in previous:
            db.execute(
                "INSERT INTO device_links (device_id, previous_device_id, linked_at) "
                "SELECT ?, id, ? FROM devices WHERE id = ? AND checkpoint_id = ? "
                "ON CONFLICT DO NOTHING",
                [device_id, stamp, previous_id, checkpoint_id],
            )
        device = Device(device_id, checkpoint_id)
    return device, device_token


def link_devices(db: Database, device_id: str, previous_device_id: str) -> bool:
    """Let ``device_id`` deliver the rows of ``previous_device_id`` (an admin's decision,
    also across checkpoints: a kiosk that was moved).  False if it was linked already."""
    known = {r[0] for r in db.execute(
        "SELECT id FROM devices WHERE id IN (?, ?)", [device_id, previous_device_id])}
    for name, value in (("device", device_id), ("previous device", previous_device_id)):
        if value not in known:
            raise ValueError(f"unknown {name} {value!r}; see the device ids in "
                             "'checkpoint-kiosk central export' or the enrolment answer")
    if device_id == previous_device_id:
        raise ValueError(f"device {device_id!r} cannot replace itself")
    if previous_device_id in postable_devices(db, Device(device_id, "")):
        return False
    if device_id in postable_devices(db, Device(previous_device_id, "")):
        raise ValueError(f"{device_id!r} already comes before {previous_device_id!r}; links "
                         "point from a newer device to an older one")
    with db.atomic():
        db.execute(
            "INSERT INTO device_links (device_id, previous_device_id, linked_at) "
            "VALUES (?, ?, ?)", [device_id, previous_device_id, iso(now_utc())],
        )
    return True


def linked_devices(db: Database, device_id: str) -> list[str]:
    """The device ids ``device_id`` directly replaces, in link order."""
    return [r[0] for r in db.execute(
        "SELECT previous_device_id FROM device_links WHERE device_id = ? ORDER BY rowid",
        [device_id],
    )]


def postable_devices(db: Database, device: Device) -> dict[str, str]:
    """Device id -> checkpoint of every device whose rows ``device`` may deliver: itself and,
    transitively, those it replaces."""
    rows = db.execute(
        "WITH RECURSIVE chain(id) AS (SELECT ? UNION "
        "SELECT l.previous_device_id FROM device_links AS l JOIN chain ON l.device_id = chain.id) "
        "SELECT d.id, d.checkpoint_id FROM devices AS d JOIN chain ON d.id = chain.id",
        [device.id],
    ).fetchall()
    return dict(rows)


def device_for_token(db: Database, token: str) -> Device | None:
    row = db.execute(
        "SELECT id, checkpoint_id FROM devices WHERE token_hash = ? AND revoked = 0",
        [hash_token(token)],
    ).fetchone()
    return Device(*row) if row else None


def revoke_device(db: Database, device_id: str) -> bool:
    with db.atomic():
        return db.execute("UPDATE devices SET revoked = 1 WHERE id = ?", [device_id]).rowcount == 1


def _event_time(item: dict[str, Any], received: datetime) -> tuple[str, str]:
    """(event_time, time_basis): the corrected time, else a plausible device time, else
    the receive time.  A device time from an unsynced clock is still better than the
    receive time, which may be days later after an outage; time_basis says which it is."""
    # validation_errors() refused an unparsable corrected_at; None here means "not given".
    corrected = wire.parse_time(item["corrected_at"]) if item.get("corrected_at") else None
    if corrected is not None:
        return iso(corrected), "corrected"
    recorded = wire.parse_time(item["recorded_at"])
    if recorded is not None and wire.plausible(recorded, received):
        return iso(recorded), "device_synced" if item["clock_synced"] else "device_unsynced"
    return iso(received), "received"


def _source_rank(source: str | None) -> int:
    return wire.TIME_SOURCES.index(source) if source in wire.TIME_SOURCES else -1


def _forbidden(item: dict[str, Any], device: Device, allowed: Mapping[str, str]) -> str | None:
    """Why ``device`` may not deliver ``item``; None if it may."""
    owner = allowed.get(item["device_id"])
    if owner is not None and owner == item["checkpoint_id"]:
        return None
    return (
        f"check-in names device {wire.short_repr(item['device_id'])} at checkpoint "
        f"{wire.short_repr(item['checkpoint_id'])} but the token belongs to {device.id!r} at "
        f"{device.checkpoint_id!r}; a re-enrolled kiosk lists its old ids in "
        "previous_device_ids when it enrols"
    )


def ingest(
    db: Database, device: Device, items: list[Any], *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Store a batch; one result per item: accepted, duplicate, conflict, forbidden (this
    device may not deliver it: keep it) or rejected (the row itself is invalid)."""
    results: list[dict[str, Any]] = []
    received = now or now_utc()
    stamp = iso(received)
    with db.atomic():
        allowed = postable_devices(db, device)
        for item in items:
            raw_id = item.get("id") if isinstance(item, dict) else None
            # Echo an id only when it can be the kiosk's: never a huge or odd value.
            item_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
            errors = wire.validation_errors(item, now=received)
            if errors:
                results.append({"id": item_id, "status": "rejected", "errors": errors})
                continue
            why = _forbidden(item, device, allowed)
            if why:
                results.append({"id": item_id, "status": "forbidden", "errors": [why]})
                continue
            results.append(_store(db, device, item, received, stamp))
    return results


def _store(
    db: Database, device: Device, item: dict[str, Any], received: datetime, stamp: str
) -> dict[str, Any]:
    item_id = item["id"]
    digest = wire.content_hash(item)
    body = json.dumps(item, ensure_ascii=False, sort_keys=True)
    event_time, basis = _event_time(item, received)
    corrected_at, source = item.get("corrected_at"), item.get("time_source")
    inserted = db.execute(
        "INSERT INTO checkins (id, device_id, checkpoint_id, content_hash, body, event_time, "
        "clock_synced, corrected_at, received_at, recorded_at, time_source, time_basis, "
        "posted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
        [item_id, item["device_id"], item["checkpoint_id"], digest, body, event_time,
         int(item["clock_synced"]), corrected_at, stamp, item["recorded_at"], source, basis,
         device.id],
    ).rowcount
    if inserted:
        return {"id": item_id, "status": "accepted"}
    stored_hash, stored_corrected, stored_source = db.execute(
        "SELECT content_hash, corrected_at, time_source FROM checkins WHERE id = ?", [item_id]
    ).fetchone()
    if stored_hash != digest:
        db.execute(
            "INSERT INTO conflicts (id, device_id, content_hash, body, received_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [item_id, device.id, digest, body, stamp],
        )
        return {"id": item_id, "status": "conflict",
                "errors": ["the server holds this id with different content"]}
    # An honest resend may carry a correction made since; a better source (NTP over the
    # central's clock) replaces an earlier one, a worse one never does.
    if corrected_at and (
        stored_corrected is None or _source_rank(source) > _source_rank(stored_source)
    ):
        db.execute(
            "UPDATE checkins SET corrected_at = ?, time_source = ?, time_basis = 'corrected', "
            "event_time = ? WHERE id = ?",
            [corrected_at, source, event_time, item_id],
        )
    return {"id": item_id, "status": "duplicate"}


def set_document(
    db: Database, name: str, body: bytes, *, expires_at: datetime | None = None,
    validators: Validators | None = None,
) -> str:
    """Publish a new version of a document; returns its ETag.

    ``validators`` maps each document name to the kiosk's own check (raising ValueError),
    so nothing is published that a kiosk could not apply.  Without it only the JSON
    shape is checked; the CLI and the served app always pass the kiosk's.
    """
    check_name(name)
    if validators is not None:
        check = validators.get(name)
        if check is None:
            raise ValueError(f"no validator for document {name!r}; the central was built "
                             f"with validators for {', '.join(sorted(validators)) or 'none'}")
        check(body)
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


def export_checkins(db: Database) -> Iterator[dict[str, Any]]:
    """Every received check-in as a dict, in receive order."""
    # The columns win over the body: a resend may have improved the correction since.
    columns = ("corrected_at", "time_source", "received_at", "event_time", "time_basis",
               "posted_by")
    for row in db.execute(f"SELECT body, {', '.join(columns)} FROM checkins ORDER BY rowid"):
        item = json.loads(row[0])
        item.update(zip(columns, row[1:], strict=True))
        yield item
