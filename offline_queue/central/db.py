"""The central platform's database: enrolment, ingest, documents, export.

One module for both engines (``backend``): a SQLite path or a ``postgresql://`` URL; the
schema and its migrations are in ``schema``, the reports and tracing in ``queries``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from offline_queue import wire
from offline_queue.central import schema
from offline_queue.central.backend import (
    CentralDB,
    db_errors,
    describe,
    is_postgres,
    open_postgres,
    open_sqlite,
)
from offline_queue.central.schema import migrations  # noqa: F401 - tests apply them
from offline_queue.clock import iso, parse_iso
from offline_queue.documents import check_name, sha256, validate
from offline_queue.errors import StoreError
from offline_queue.sealing import Opener, SealError, aad_for, sealed_key_id

# Which time a check-in's event_time is (see ``ingest``), best first.
TIME_BASES = schema.TIME_BASIS_CODES
MAX_PREVIOUS_DEVICES = 16
MAX_DEVICE_ID = 64
# Rows per INSERT statement (SQLite allows 32,766 parameters, PostgreSQL 65,535).
INSERT_CHUNK = 500

Validators = Mapping[str, Callable[[bytes], None]]


def connect(target: str | os.PathLike[str], *, migrate: bool = True) -> CentralDB:
    """Open the central database ``target`` (a SQLite path or a postgresql:// URL),
    migrated to the current schema unless ``migrate=False``."""
    errors: tuple[type[BaseException], ...] = (OSError, *db_errors())
    try:
        db = open_postgres(str(target)) if is_postgres(target) else open_sqlite(target)
    except StoreError:
        raise  # open_postgres names the URL and what to check; the file hint is SQLite's
    except errors as e:
        raise StoreError(
            f"cannot open the central database {describe(target)!r}: {e}; check the path "
            "and that the file is a checkpoint-kiosk central database"
        ) from e
    if migrate:
        try:
            schema.migrate(db)
        except db_errors() as e:
            db.close()
            raise StoreError(
                f"cannot bring the central database {describe(target)!r} to the current "
                f"schema: {e}; check that it is a checkpoint-kiosk central database and "
                "that the role may create tables"
            ) from e
    return db


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


ENROLMENT_TOKEN_LIFETIME = timedelta(days=7)
MAX_ENROLMENT_TOKEN_LIFETIME = timedelta(days=366)


def create_enrolment_token(db: CentralDB, *, checkpoint_id: str, name: str,
                           valid_for: timedelta = ENROLMENT_TOKEN_LIFETIME) -> str:
    """Register the checkpoint if new and return a one-time enrolment token that expires
    after ``valid_for`` (default 7 days)."""
    if not checkpoint_id.strip():
        raise ValueError("checkpoint id is empty; pass --checkpoint with e.g. 'HN-NOIBAI-T2'")
    if not timedelta(minutes=1) <= valid_for <= MAX_ENROLMENT_TOKEN_LIFETIME:
        raise ValueError(f"an enrolment token valid for {valid_for} is refused; give from a "
                         "minute to 366 days")
    token = "enrol-" + secrets.token_urlsafe(24)
    now = now_utc()
    stamp = iso(now)
    with db.atomic():
        db.execute(
            "INSERT INTO checkpoints (id, name, created_at" + _num_column(db, "checkpoints")
            + ") ON CONFLICT(id) DO UPDATE SET name = excluded.name",
            [checkpoint_id, name, stamp],
        )
        db.execute(
            "INSERT INTO enrolment_tokens (token_hash, checkpoint_id, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)", [hash_token(token), checkpoint_id, stamp, iso(now + valid_for)],
        )
    return token


def _num_column(db: CentralDB, table: str, values: int = 3) -> str:
    """The end of an INSERT's column list and its VALUES: PostgreSQL numbers the row
    itself (an identity column); SQLite takes the next number inside the transaction."""
    marks = ", ".join("?" * values)
    if db.postgres:
        return f") VALUES ({marks}"
    return f", num) VALUES ({marks}, (SELECT coalesce(max(num), 0) + 1 FROM {table})"


@dataclass(frozen=True)
class Device:
    id: str
    checkpoint_id: str


def check_previous_device_ids(value: object) -> list[str]:
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
    db: CentralDB, enrolment_token: str, *, previous_device_ids: list[str] | tuple[str, ...] = ()
) -> tuple[Device, str] | None:
    """Exchange an unused, unexpired enrolment token for a device and its token; None if
    invalid.  Tokens made before expiry existed last ENROLMENT_TOKEN_LIFETIME from creation.

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
        now = now_utc()
        stamp = iso(now)
        # iso() writes one fixed format, so the text comparison is a time comparison.
        cursor = db.execute(
            "UPDATE enrolment_tokens SET used_at = ?, device_id = ? "
            "WHERE token_hash = ? AND used_at IS NULL AND (expires_at > ? OR "
            "(expires_at IS NULL AND created_at > ?))",
            [stamp, device_id, token_hash, stamp, iso(now - ENROLMENT_TOKEN_LIFETIME)],
        )
        if cursor.rowcount != 1:
            return None
        (checkpoint_id,) = db.one(
            "SELECT checkpoint_id FROM enrolment_tokens WHERE token_hash = ?", [token_hash])
        db.execute(
            "INSERT INTO devices (id, checkpoint_id, token_hash, enrolled_at"
            + _num_column(db, "devices", 4) + ")",
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


def link_devices(db: CentralDB, device_id: str, previous_device_id: str) -> bool:
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


def linked_devices(db: CentralDB, device_id: str) -> list[str]:
    """The device ids ``device_id`` directly replaces, in link order."""
    return [r[0] for r in db.execute(
        "SELECT previous_device_id FROM device_links WHERE device_id = ? "
        "ORDER BY linked_at, previous_device_id",
        [device_id],
    )]


def postable_devices(db: CentralDB, device: Device) -> dict[str, str]:
    """Device id -> checkpoint of every device whose rows ``device`` may deliver: itself and,
    transitively, those it replaces."""
    rows = db.execute(
        "WITH RECURSIVE chain(id) AS (SELECT ? UNION "
        "SELECT l.previous_device_id FROM device_links AS l JOIN chain ON l.device_id = chain.id) "
        "SELECT d.id, d.checkpoint_id FROM devices AS d JOIN chain ON d.id = chain.id",
        [device.id],
    ).fetchall()
    return dict(rows)


@dataclass(frozen=True)
class _Postable:
    num: int
    checkpoint_id: str
    checkpoint_num: int


def _postable_numbers(db: CentralDB, device: Device) -> dict[str, _Postable]:
    rows = db.execute(
        "WITH RECURSIVE chain(id) AS (SELECT ? UNION "
        "SELECT l.previous_device_id FROM device_links AS l JOIN chain ON l.device_id = chain.id) "
        "SELECT d.id, d.num, d.checkpoint_id, p.num FROM devices AS d "
        "JOIN chain ON d.id = chain.id JOIN checkpoints AS p ON p.id = d.checkpoint_id",
        [device.id],
    ).fetchall()
    return {r[0]: _Postable(r[1], r[2], r[3]) for r in rows}


def device_for_token(db: CentralDB, token: str) -> Device | None:
    row = db.execute(
        "SELECT id, checkpoint_id FROM devices WHERE token_hash = ? AND revoked = 0",
        [hash_token(token)],
    ).fetchone()
    return Device(*row) if row else None


def revoke_device(db: CentralDB, device_id: str) -> bool:
    with db.atomic():
        return db.execute("UPDATE devices SET revoked = 1 WHERE id = ?", [device_id]).rowcount == 1


def _event_time(item: wire.CheckIn, received: datetime) -> tuple[int, str]:
    """(event_time in microseconds, time_basis): the corrected time, else a plausible
    device time, else the receive time.  A device time from an unsynced clock is still
    better than the receive time, which may be days later after an outage; time_basis
    says which it is."""
    # validation_errors() refused an unparsable corrected_at; None here means "not given".
    corrected_at = item.get("corrected_at")
    corrected = wire.parse_time(corrected_at) if corrected_at else None
    if corrected is not None:
        return schema.to_us(corrected), "corrected"
    recorded = wire.parse_time(item["recorded_at"])
    if recorded is not None and wire.plausible(recorded, received):
        return schema.to_us(recorded), "device_synced" if item["clock_synced"] else \
            "device_unsynced"
    return schema.to_us(received), "received"


def _source_rank(source: str | None) -> int:
    return wire.TIME_SOURCES.index(source) if source in wire.TIME_SOURCES else -1


def _forbidden(item: wire.CheckIn, device: Device, allowed: Mapping[str, _Postable]
               ) -> str | None:
    """Why ``device`` may not deliver ``item``; None if it may."""
    owner = allowed.get(item["device_id"])
    if owner is not None and owner.checkpoint_id == item["checkpoint_id"]:
        return None
    return (
        f"check-in names device {wire.short_repr(item['device_id'])} at checkpoint "
        f"{wire.short_repr(item['checkpoint_id'])} but the token belongs to {device.id!r} at "
        f"{device.checkpoint_id!r}; a re-enrolled kiosk lists its old ids in "
        "previous_device_ids when it enrols"
    )


def day_offset_us(db: CentralDB) -> int:
    """The local day's offset from UTC in microseconds (``central_meta``)."""
    row = db.execute("SELECT value FROM central_meta WHERE key = 'day_offset_minutes'"
                     ).fetchone()
    minutes = int(row[0]) if row else schema.DEFAULT_DAY_OFFSET_MINUTES
    return minutes * 60_000_000


def _day(event_time: int, offset_us: int) -> int:
    return (event_time + offset_us) // schema.US_PER_DAY


@dataclass
class _Pending:
    """A valid item on its way in: where its answer goes and its ``scans`` values."""

    index: int
    answer_id: str  # the id as the kiosk sent it (``item`` has it in one spelling)
    item: wire.CheckIn
    digest: str
    row: tuple[Any, ...]


_INSERT_HEAD = "INSERT INTO scans (" + ", ".join(schema.SCAN_COLUMNS) + ") VALUES "
_ROW_MARKS = "(" + ", ".join("?" * len(schema.SCAN_COLUMNS)) + ")"
_EVENT, _CHECKPOINT = schema.SCAN_COLUMNS.index("event_time"), \
    schema.SCAN_COLUMNS.index("checkpoint")
_DEVICE = schema.SCAN_COLUMNS.index("device")


def _open_sealed(item: wire.CheckIn, opener: Opener | None) -> wire.CheckIn:
    """``item`` with its sealed identity opened into ``person_key`` (and
    ``override_reason``) and no ``sealed`` member: the content the kiosk recorded, so its
    content hash is the same whether a row travelled sealed or (an earlier release) clear.
    SealError says why it cannot be opened."""
    opened = item.copy()
    sealed = opened.pop("sealed", None)
    if sealed is None:
        return opened
    if opener is None:
        raise SealError("this central was started without its sealing keys; start it with "
                        "its key file (--key-file), then run 'checkpoint-kiosk central reopen'")
    identity = opener.open(sealed, aad_for(item["id"], item["device_id"]))
    opened["person_key"] = identity.get("person_key")
    if "override_reason" in identity:
        opened["override_reason"] = identity["override_reason"]
    return opened


def _keep_unopened(db: CentralDB, device_num: int, item: wire.CheckIn, error: str,
                   received: str) -> None:
    """Keep a row whose identity could not be opened, with why, for the administrator
    (``central unopened``, ``central reopen``): never dropped silently."""
    db.execute(
        "INSERT INTO unopened (device, id, device_id, key_id, error, body, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, id) DO UPDATE SET "
        "error = excluded.error, received_at = excluded.received_at",
        [device_num, item["id"], item["device_id"], sealed_key_id(item.get("sealed") or ""), error,
         json.dumps(item, ensure_ascii=False, sort_keys=True), received])


def ingest(
    db: CentralDB, device: Device, items: list[object], *, now: datetime | None = None,
    backlog: int | None = None, opener: Opener | None = None,
) -> list[wire.RowResult]:
    """Store a batch; one result per item: accepted, duplicate, conflict, forbidden (this
    device may not deliver it: keep it), rejected (the row itself is invalid) or unopened
    (its sealed identity cannot be opened with ``opener``, the central's sealing keys: kept
    aside in ``unopened`` with the error, the kiosk stops sending it).

    The batch goes in with a few multi-row ``INSERT ... ON CONFLICT DO NOTHING
    RETURNING id`` (in id order, so that two requests carrying the same rows lock them
    in the same order), and ``daily_counts`` grows by what was accepted.
    """
    results: list[wire.RowResult | None] = [None] * len(items)
    received = now or now_utc()
    received_us = schema.to_us(received)
    with db.atomic():
        allowed = _postable_numbers(db, device)
        me = allowed[device.id].num if device.id in allowed else None
        pending: list[_Pending] = []
        for index, item in enumerate(items):
            raw_id = item.get("id") if isinstance(item, dict) else None
            # Echo an id only when it can be the kiosk's: never a huge or odd value.
            item_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
            checkin = wire.parse(item, now=received)
            if isinstance(checkin, list):
                results[index] = {"id": item_id, "status": "rejected", "errors": checkin}
                continue
            why = _forbidden(checkin, device, allowed)
            if why:
                results[index] = {"id": item_id, "status": "forbidden", "errors": [why]}
                continue
            # One spelling of the id (PostgreSQL's uuid type would answer another).
            spelled: wire.CheckIn = {**checkin, "id": wire.canonical_uuid(checkin["id"])}
            owner = allowed[spelled["device_id"]]
            try:
                spelled = _open_sealed(spelled, opener)
            except SealError as e:
                _keep_unopened(db, owner.num, spelled, str(e), iso(received))
                results[index] = {"id": item_id, "status": "unopened", "errors": [str(e)]}
                continue
            digest = wire.content_hash(spelled)
            event_time, basis = _event_time(spelled, received)
            row = schema.scan_row(
                spelled, digest=schema.hash_code(digest), event_time=event_time, basis=basis,
                received_us=received_us, checkpoint=owner.checkpoint_num, device=owner.num,
                posted_by=None if owner.num == me else me)
            pending.append(_Pending(index, checkin["id"], spelled, digest, row))
        inserted = _insert(db, sorted(pending, key=lambda p: p.item["id"]))
        counts: dict[tuple[int, int], int] = {}
        offset = day_offset_us(db) if pending else 0
        later: list[_Pending] = []
        for p in pending:
            if _key(p) in inserted:
                inserted.discard(_key(p))  # a second copy in the batch is a resend
                results[p.index] = {"id": p.answer_id, "status": "accepted"}
                key = (p.row[_CHECKPOINT], _day(p.row[_EVENT], offset))
                counts[key] = counts.get(key, 0) + 1
            else:
                later.append(p)
        if later:
            _existing(db, device, later, results, counts, offset, received)
        _count(db, counts)
        if me is not None and items:
            _seen(db, me, received, items, backlog)
            _note_errors(db, me, received, results)
    return [r for r in results if r is not None]


def _key(p: _Pending) -> tuple[int, str]:
    """A check-in's identity at the central: its device and its id (issue 14: an id alone
    let one device take another's)."""
    return p.row[_DEVICE], p.item["id"]


def _insert(db: CentralDB, pending: list[_Pending]) -> set[tuple[int, str]]:
    """Insert the rows; the (device, id) actually inserted (not there before)."""
    if db.postgres:
        return _insert_postgres(db, pending)
    inserted: set[tuple[int, str]] = set()
    for start in range(0, len(pending), INSERT_CHUNK):
        chunk = pending[start:start + INSERT_CHUNK]
        params = [value for p in chunk for value in p.row]
        sql = (_INSERT_HEAD + ", ".join([_ROW_MARKS] * len(chunk))
               + " ON CONFLICT (device, id) DO NOTHING RETURNING device, id")
        inserted.update((int(r[0]), str(r[1])) for r in db.execute(sql, params))
    return inserted


# PostgreSQL column types of ``scans`` (tests/test_central_herd.py compares them with the
# catalogue): the arrays of ``_insert_postgres`` are cast to them.
SCAN_PG_TYPES = {
    "id": "uuid", "event_time": "bigint", "recorded_at": "bigint", "received_at": "bigint",
    "corrected_at": "bigint", "content_hash": "bigint", "checkpoint": "integer",
    "device": "integer", "posted_by": "integer", "person_key": "text", "display": "text",
    "reasons": "text", "override_of": "uuid", "override_reason": "text",
    "officer": "text",
}
# One statement whatever the batch size, its arrays sent in binary: psycopg parses a
# statement's text on every call when it is long (a 500-row VALUES list has 11,000
# placeholders: 0.13 s of Python a batch), and the server plans it once (prepared).
# Measured: docs/central.md, "Ingest".
_INSERT_UNNEST = (
    "INSERT INTO scans (" + ", ".join(schema.SCAN_COLUMNS) + ") SELECT * FROM unnest("
    + ", ".join(f"%b::{SCAN_PG_TYPES.get(c, 'smallint')}[]" for c in schema.SCAN_COLUMNS)
    + ") ON CONFLICT (device, id) DO NOTHING RETURNING device, id")


def _insert_postgres(db: CentralDB, pending: list[_Pending]) -> set[tuple[int, str]]:
    if not pending:
        return set()
    columns = [list(column) for column in zip(*(p.row for p in pending), strict=True)]
    return {(int(r[0]), str(r[1]))
            for r in db.conn.execute(_INSERT_UNNEST, columns, prepare=True)}


def _existing(db: CentralDB, device: Device, later: list[_Pending],
              results: list[wire.RowResult | None],
              counts: dict[tuple[int, int], int], offset: int, received: datetime) -> None:
    """Answer the rows already stored: duplicate, or conflict; take a better correction."""
    by_device: dict[int, set[str]] = {}
    for p in later:
        by_device.setdefault(p.row[_DEVICE], set()).add(p.item["id"])
    stored: dict[tuple[int, str], tuple[Any, ...]] = {}
    columns = "SELECT id, content_hash, corrected_at, time_source, event_time, checkpoint "
    for device_num, id_set in sorted(by_device.items()):
        ids = sorted(id_set)
        if db.postgres:  # one short statement (see _INSERT_UNNEST)
            rows: Iterable[Any] = db.conn.execute(
                columns + "FROM scans WHERE device = %b AND id = ANY(%b::uuid[])",
                [device_num, ids], prepare=True)
        else:
            parts = [ids[start:start + INSERT_CHUNK]
                     for start in range(0, len(ids), INSERT_CHUNK)]
            rows = (row for part in parts for row in db.execute(
                columns + f"FROM scans WHERE device = ? AND id IN ({', '.join('?' * len(part))})",
                [device_num, *part]))
        for row in rows:
            stored[(device_num, str(row[0]))] = row[1:]
    stamp = iso(received)
    for p in later:
        item_id = p.item["id"]
        answer_id = p.answer_id
        found = stored.get(_key(p))
        if found is None:  # deleted by retention meanwhile: nothing to compare
            results[p.index] = {"id": answer_id, "status": "duplicate"}
            continue
        stored_hash, stored_corrected, stored_source, stored_event, checkpoint = found
        if stored_hash != schema.hash_code(p.digest):
            db.execute(
                "INSERT INTO conflicts (id, device_id, content_hash, body, received_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [item_id, device.id, p.digest,
                 json.dumps(p.item, ensure_ascii=False, sort_keys=True), stamp],
            )
            results[p.index] = {"id": answer_id, "status": "conflict",
                                "errors": ["the server holds this id with different content"]}
            continue
        # An honest resend may carry a correction made since; a better source (NTP over
        # the central's clock) replaces an earlier one, a worse one never does.
        corrected_at, source = p.item.get("corrected_at"), p.item.get("time_source")
        stored_word = schema.word(schema.TIME_SOURCE_CODES, stored_source)
        if corrected_at and (
            stored_corrected is None or _source_rank(source) > _source_rank(stored_word)
        ):
            event_time = p.row[_EVENT]
            db.execute(
                "UPDATE scans SET corrected_at = ?, time_source = ?, time_basis = ?, "
                "event_time = ? WHERE device = ? AND id = ?",
                [event_time, schema.code(schema.TIME_SOURCE_CODES, source),
                 schema.code(schema.TIME_BASIS_CODES, "corrected"), event_time,
                 p.row[_DEVICE], item_id],
            )
            old_day, new_day = _day(stored_event, offset), _day(event_time, offset)
            if old_day != new_day:
                counts[(checkpoint, old_day)] = counts.get((checkpoint, old_day), 0) - 1
                counts[(checkpoint, new_day)] = counts.get((checkpoint, new_day), 0) + 1
            stored[_key(p)] = (stored_hash, event_time, stored_source, event_time, checkpoint)
        results[p.index] = {"id": answer_id, "status": "duplicate"}


def _count(db: CentralDB, counts: dict[tuple[int, int], int]) -> None:
    """Add ``counts`` to ``daily_counts`` (in key order: no deadlock between requests)."""
    changes = sorted((k, n) for k, n in counts.items() if n)
    if not changes:
        return
    params = [value for (checkpoint, day), n in changes for value in (checkpoint, day, n)]
    db.execute(
        "INSERT INTO daily_counts (checkpoint, day, scans) VALUES "
        + ", ".join(["(?, ?, ?)"] * len(changes))
        + " ON CONFLICT (checkpoint, day) DO UPDATE SET scans = daily_counts.scans + "
        "excluded.scans", params)


SEEN_EVERY = timedelta(seconds=60)


MAX_BACKLOG = 10**9


def _clock_offset_ms(items: list[object]) -> int | None:
    """The kiosk's clock error as it measured it: corrected_at - recorded_at of the newest
    corrected row of the batch (the kiosk corrects with the offset it measured)."""
    for item in reversed(items):
        if not isinstance(item, dict):
            continue
        corrected_at, recorded_at = item.get("corrected_at"), item.get("recorded_at")
        if isinstance(corrected_at, str) and isinstance(recorded_at, str):
            corrected, recorded = wire.parse_time(corrected_at), wire.parse_time(recorded_at)
            if corrected is not None and recorded is not None:
                return round((corrected - recorded).total_seconds() * 1000)
    return None


def _seen(db: CentralDB, device_num: int, received: datetime, items: list[object],
          backlog: int | None = None) -> None:
    """The device's last contact, app version, backlog (the rows it said it still holds,
    when it says) and clock offset: the fleet page.  Written at most once a minute, and
    when the kiosk says it has drained (else a quiet kiosk would show a backlog it no
    longer has until its next post)."""
    last = items[-1]
    version = last.get("app_version") if isinstance(last, dict) else None
    version = version if isinstance(version, str) and len(version) <= 64 else None
    backlog = backlog if backlog is not None and 0 <= backlog <= MAX_BACKLOG else None
    db.execute(
        "UPDATE devices SET last_seen_at = ?, app_version = coalesce(?, app_version), "
        "backlog = coalesce(?, backlog), clock_offset_ms = coalesce(?, clock_offset_ms) "
        "WHERE num = ? AND (last_seen_at IS NULL OR last_seen_at < ? "
        "OR (? = 0 AND backlog <> 0))",
        [iso(received), version, backlog, _clock_offset_ms(items), device_num,
         iso(received - SEEN_EVERY), backlog])


def _note_errors(db: CentralDB, device_num: int, received: datetime,
                 results: list[wire.RowResult | None]) -> None:
    """The last problem with the device's posts, as counts only (the rows' errors may
    quote personal data): the fleet page's "last error"."""
    tally: dict[str, int] = {}
    for r in results:
        if r is not None and r["status"] in ("rejected", "forbidden", "conflict", "unopened"):
            tally[r["status"]] = tally.get(r["status"], 0) + 1
    if tally:
        text = ", ".join(f"{n} {status}" for status, n in sorted(tally.items()))
        db.execute("UPDATE devices SET last_error = ?, last_error_at = ? WHERE num = ?",
                   [f"{text} of {len(results)} check-ins", iso(received), device_num])


def set_document(
    db: CentralDB, name: str, body: bytes, *, expires_at: datetime | None = None,
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
    now = now_utc()
    with db.atomic():
        row = db.execute("SELECT version FROM documents WHERE name = ?", [name]).fetchone()
        db.execute(
            "INSERT INTO documents (name, body, etag, updated_at, expires_at, version) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET body = excluded.body, "
            "etag = excluded.etag, updated_at = excluded.updated_at, "
            "expires_at = excluded.expires_at, version = excluded.version",
            [name, body, etag, iso(now), iso(expires_at) if expires_at else None,
             next_version(row[0] if row else 0, now)],
        )
    return etag


def next_version(previous: int, now: datetime) -> int:
    """The signed version of a new publication: above the last one, and at least the
    time in milliseconds, so that a central restored from an old backup (or set up again
    with the same key) still publishes versions the kiosks take as newer."""
    return max(int(previous) + 1, int(now.timestamp() * 1000))


@dataclass(frozen=True)
class StoredDocument:
    body: bytes
    etag: str
    expires_at: datetime | None
    version: int


def get_document_record(db: CentralDB, name: str) -> StoredDocument | None:
    """The published document ``name`` with its signed version, or None."""
    row = db.execute(
        "SELECT body, etag, expires_at, version FROM documents WHERE name = ?",
        [check_name(name)]).fetchone()
    if row is None:
        return None
    return StoredDocument(bytes(row[0]), row[1], parse_iso(row[2]) if row[2] else None,
                          int(row[3]))


def get_document(db: CentralDB, name: str) -> tuple[bytes, str, datetime | None] | None:
    found = get_document_record(db, name)
    return None if found is None else (found.body, found.etag, found.expires_at)


def scans_report(db: CentralDB, *, days: int = 7, now: datetime | None = None
                 ) -> dict[str, Any]:
    """Per checkpoint, check-ins in the last ``days`` days, and which checkpoints had none
    (``queries.activity_report`` has the scans per day as well)."""
    from offline_queue.central.queries import activity_report

    report = activity_report(db, days=days, now=now)
    return {key: report[key] for key in ("since", "until", "days", "without_scans")} | {
        "checkpoints": [{"id": c["id"], "name": c["name"], "scans": c["scans"]}
                        for c in report["checkpoints"]]}


def item_of(row: dict[str, Any]) -> dict[str, Any]:
    """A check-in as the wire has it, from a ``scans`` row joined with its device,
    checkpoint and deliverer (the columns of ``EXPORT_SQL``)."""
    def when(value: int | None) -> str | None:
        return None if value is None else iso(schema.from_us(value))

    return {
        "id": str(row["id"]), "device_id": row["device_id"],
        "checkpoint_id": row["checkpoint_id"],
        "direction": schema.word(schema.DIRECTION_CODES, row["direction"]),
        "kind": schema.word(schema.KIND_CODES, row["kind"]),
        "person_key": row["person_key"],
        "display": json.loads(row["display"]) if row["display"] else {},
        "decision": schema.word(schema.DECISION_CODES, row["decision"]),
        "reasons": json.loads(row["reasons"]) if row["reasons"] else [],
        "source": schema.word(schema.SOURCE_CODES, row["source"]),
        "override_of": str(row["override_of"]) if row["override_of"] else None,
        "original_decision": schema.word(schema.DECISION_CODES, row["original_decision"]),
        "override_reason": row["override_reason"],
        "officer": row.get("officer"),
        "recorded_at": when(row["recorded_at"]),
        "clock_synced": bool(row["clock_synced"]),
        "corrected_at": when(row["corrected_at"]),
        "time_source": schema.word(schema.TIME_SOURCE_CODES, row["time_source"]),
        "received_at": when(row["received_at"]),
        "event_time": when(row["event_time"]),
        "time_basis": schema.word(schema.TIME_BASIS_CODES, row["time_basis"]),
        "posted_by": row["posted_by_id"] or row["device_id"],
    }


EXPORT_SQL = (
    "SELECT s.*, d.id AS device_id, p.id AS checkpoint_id, b.id AS posted_by_id "
    "FROM scans AS s JOIN devices AS d ON d.num = s.device "
    "JOIN checkpoints AS p ON p.num = s.checkpoint "
    "LEFT JOIN devices AS b ON b.num = s.posted_by"
)


def rows_as_dicts(cursor: Any) -> Iterator[dict[str, Any]]:
    names = [c[0] for c in cursor.description]
    for row in cursor:
        yield dict(zip(names, row, strict=True))


def export_checkins(db: CentralDB) -> Iterator[dict[str, Any]]:
    """Every stored check-in as a dict (the wire fields the central keeps, and its own:
    received_at, event_time, time_basis, posted_by), in receive order."""
    yield from map(item_of, rows_as_dicts(db.execute(
        EXPORT_SQL + " ORDER BY s.received_at, s.id")))


def unopened_rows(db: CentralDB) -> list[dict[str, Any]]:
    """The check-ins kept aside because their sealed identity could not be opened (no
    identity in them: the sealed text stays sealed), oldest first."""
    return [{"device_id": r[0], "id": str(r[1]), "key_id": r[2], "error": r[3],
             "received_at": r[4]} for r in db.execute(
        "SELECT device_id, id, key_id, error, received_at FROM unopened "
        "ORDER BY received_at, device_id, id")]


def reopen(db: CentralDB, opener: Opener, *, now: datetime | None = None) -> dict[str, int]:
    """Try the kept-aside check-ins again with ``opener`` (a restored or older key): each
    that opens is ingested as its device had sent it and leaves the table.  Returns counts
    by the ingest's answer."""
    rows = db.execute("SELECT d.id, d.checkpoint_id, u.id, u.body FROM unopened AS u "
                      "JOIN devices AS d ON d.num = u.device ORDER BY u.received_at").fetchall()
    tally: dict[str, int] = {}
    for device_id, checkpoint_id, checkin_id, body in rows:
        item = json.loads(body)
        (result,) = ingest(db, Device(device_id, checkpoint_id), [item], now=now, opener=opener)
        tally[result["status"]] = tally.get(result["status"], 0) + 1
        if result["status"] != "unopened":
            with db.atomic():
                db.execute("DELETE FROM unopened WHERE device = (SELECT num FROM devices "
                           "WHERE id = ?) AND id = ?", [device_id, checkin_id])
    return tally
