"""The central's schema on SQLite and PostgreSQL, and the migrations that reach it.

Check-ins live in ``scans``: one narrow row each, the columns the queries need
(checkpoint, event time, corrected time, person key, kind, decision, direction) and what
an auditor needs besides, with times as integer microseconds since 1970 UTC and the
vocabularies as small integer codes, so that a row costs under 250 bytes on disk with
its indexes (docs/central.md, "Size").  The body a kiosk sent is kept only where it is
needed: for a *conflict* (same id, other content), for a technician.

``daily_counts`` holds scans per checkpoint and local day, kept up to date by ingest:
the activity report reads it instead of millions of rows, and it holds no personal data,
so retention leaves it alone.

SQLite databases made by earlier versions (sqlite-utils migrations m001-m003, one
``checkins`` table with every row's JSON body) are converted by m004; a ``checkins``
view keeps the old shape for tools that read it.  PostgreSQL starts at the current
schema (``schema_version`` counts its later migrations).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from offline_queue import wire
from offline_queue.central.backend import CentralDB
from offline_queue.records import DECISIONS, DIRECTIONS, KINDS, OFFICER_ID, SOURCES

# Codes stored for each vocabulary: the 1-based position in these tuples.  Append only:
# a stored code never changes meaning (test_central_store checks every word has one).
KIND_CODES = ("cccd", "pc_covid", "bhyt", "eu_dcc", "venue", "unknown")
DECISION_CODES = ("pass", "check", "stop")
DIRECTION_CODES = ("in", "out")
SOURCE_CODES = ("scan", "manual", "scanner", "declared")  # append only: the index is stored
TIME_BASIS_CODES = ("corrected", "device_synced", "device_unsynced", "received")
TIME_SOURCE_CODES = ("none", "central", "ntp")
assert set(KINDS) <= set(KIND_CODES) and set(DECISIONS) <= set(DECISION_CODES)
assert set(DIRECTIONS) <= set(DIRECTION_CODES) and set(SOURCES) <= set(SOURCE_CODES)

# The local day of ``daily_counts`` and the report: Vietnam (UTC+7, no daylight saving).
DEFAULT_DAY_OFFSET_MINUTES = 7 * 60
US_PER_DAY = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PG_SCHEMA_VERSION = 1  # what _pg_ddl() creates; PG_MIGRATIONS go on from it


def code(vocabulary: Sequence[str], word: str | None) -> int | None:
    return None if word is None else vocabulary.index(word) + 1


def word(vocabulary: Sequence[str], value: int | None) -> str | None:
    return None if value is None else vocabulary[value - 1]


def to_us(when: datetime) -> int:
    """A datetime as integer microseconds since 1970 UTC (exact)."""
    delta = when - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def _scans_ddl(pg: bool, *, table: str = "scans", device_key: bool = False) -> list[str]:
    """``device_key``: the key is (device, id) (m006), so that one device cannot take
    another's check-in id; before m006 it was the id alone."""
    uuid_type = "uuid" if pg else "TEXT"
    big = "bigint" if pg else "INTEGER"
    small = "smallint" if pg else "INTEGER"
    key = ("NOT NULL", ", PRIMARY KEY (device, id)") if device_key else ("PRIMARY KEY", "")
    # Fixed-width columns first, widest first: PostgreSQL pads each to its alignment.
    return [
        f"CREATE TABLE {table} (id {uuid_type} {key[0]}, "
        f"event_time {big} NOT NULL, recorded_at {big} NOT NULL, received_at {big} NOT NULL, "
        f"corrected_at {big}, content_hash {big} NOT NULL, "
        "checkpoint INTEGER NOT NULL, device INTEGER NOT NULL, posted_by INTEGER, "
        f"kind {small} NOT NULL, decision {small} NOT NULL, direction {small} NOT NULL, "
        f"source {small} NOT NULL, time_basis {small} NOT NULL, time_source {small}, "
        f"clock_synced {small} NOT NULL, original_decision {small}, "
        f"person_key TEXT, display TEXT, reasons TEXT, override_of {uuid_type}, "
        f"override_reason TEXT{key[1]})" + ("" if pg else " WITHOUT ROWID"),
        # PostgreSQL: single-column B-trees, which it stores deduplicated (a checkpoint
        # or a person named once per page, then only row pointers), ANDed with a BRIN
        # index on event_time (a few pages for millions of rows, which arrive roughly in
        # time order) for "checkpoint X between T1 and T2" and retention.  Composite
        # (checkpoint, event_time) and (person_key, event_time) indexes cost 95 bytes a
        # row instead (measured: docs/central.md, "Size").  SQLite: the composites.
        *([
            "CREATE INDEX scans_checkpoint ON scans (checkpoint)",
            "CREATE INDEX scans_person ON scans (person_key) WHERE person_key IS NOT NULL",
            "CREATE INDEX scans_event_time_brin ON scans USING brin (event_time) "
            "WITH (pages_per_range = 16)",
        ] if pg else [
            "CREATE INDEX scans_checkpoint_time ON scans (checkpoint, event_time)",
            "CREATE INDEX scans_person_time ON scans (person_key, event_time) "
            "WHERE person_key IS NOT NULL",
        ]),
        f"CREATE TABLE daily_counts (checkpoint INTEGER NOT NULL, day INTEGER NOT NULL, "
        f"scans {big} NOT NULL, PRIMARY KEY (checkpoint, day))",
        "CREATE TABLE central_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE retention_runs (ran_at TEXT NOT NULL, cutoff {big} NOT NULL, "
        f"days INTEGER NOT NULL, deleted {big} NOT NULL, conflicts_deleted {big} NOT NULL)",
    ]


def _iso_sql(column: str) -> str:
    """SQLite: integer microseconds as the ISO text ``offline_queue.clock.iso`` writes."""
    return (f"CASE WHEN {column} IS NULL THEN NULL ELSE "
            f"strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000000, 'unixepoch') || "
            f"printf('.%06dZ', {column} % 1000000) END")


def _word_sql(column: str, vocabulary: Sequence[str]) -> str:
    cases = " ".join(f"WHEN {i} THEN '{w}'" for i, w in enumerate(vocabulary, 1))
    return f"CASE {column} {cases} END"


def _sqlite_checkins_view(officer: bool = False) -> str:
    """The pre-m004 ``checkins`` table as a view (body rebuilt from the columns; with the
    ``officer`` column from m007 on)."""
    kind, decision = _word_sql("s.kind", KIND_CODES), _word_sql("s.decision", DECISION_CODES)
    direction, source = (_word_sql("s.direction", DIRECTION_CODES),
                         _word_sql("s.source", SOURCE_CODES))
    original = _word_sql("s.original_decision", DECISION_CODES)
    time_source = _word_sql("s.time_source", TIME_SOURCE_CODES)
    return (
        "CREATE VIEW checkins AS SELECT s.id AS id, d.id AS device_id, "
        "p.id AS checkpoint_id, "
        f"json_object('id', s.id, 'device_id', d.id, 'checkpoint_id', p.id, "
        f"'direction', {direction}, 'kind', {kind}, 'person_key', s.person_key, "
        "'display', json(coalesce(s.display, '{}')), "
        f"'decision', {decision}, 'reasons', json(coalesce(s.reasons, '[]')), "
        f"'source', {source}, 'override_of', s.override_of, 'original_decision', {original}, "
        f"'override_reason', s.override_reason, "
        + ("'officer', s.officer, " if officer else "")
        + f"'recorded_at', {_iso_sql('s.recorded_at')}, "
        f"'clock_synced', json(CASE s.clock_synced WHEN 1 THEN 'true' ELSE 'false' END)) "
        f"AS body, {_iso_sql('s.event_time')} AS event_time, s.clock_synced AS clock_synced, "
        f"{_iso_sql('s.corrected_at')} AS corrected_at, "
        f"{_iso_sql('s.received_at')} AS received_at, "
        f"{_iso_sql('s.recorded_at')} AS recorded_at, {time_source} AS time_source, "
        f"{_word_sql('s.time_basis', TIME_BASIS_CODES)} AS time_basis, "
        "coalesce(b.id, d.id) AS posted_by "
        "FROM scans AS s JOIN devices AS d ON d.num = s.device "
        "JOIN checkpoints AS p ON p.num = s.checkpoint "
        "LEFT JOIN devices AS b ON b.num = s.posted_by"
    )


# --- SQLite: sqlite-utils migrations (m001-m003 as released, m004 the conversion) -----------

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
    db.execute("ALTER TABLE checkins ADD COLUMN recorded_at TEXT")
    db.execute("ALTER TABLE checkins ADD COLUMN time_source TEXT")
    db.execute(
        "ALTER TABLE checkins ADD COLUMN time_basis TEXT NOT NULL DEFAULT 'received' "
        "CHECK (time_basis IN ('corrected', 'device_synced', 'device_unsynced', 'received'))"
    )
    db.execute(
        "UPDATE checkins SET recorded_at = json_extract(body, '$.recorded_at'), "
        "time_basis = CASE WHEN corrected_at IS NOT NULL THEN 'corrected' "
        "WHEN clock_synced THEN 'device_synced' ELSE 'received' END"
    )


@migrations()
def m003_device_links(db: Database) -> None:
    db.execute(
        "CREATE TABLE device_links (device_id TEXT NOT NULL REFERENCES devices(id), "
        "previous_device_id TEXT NOT NULL REFERENCES devices(id), linked_at TEXT NOT NULL, "
        "PRIMARY KEY (device_id, previous_device_id))"
    )
    db.execute("ALTER TABLE checkins ADD COLUMN posted_by TEXT")
    db.execute("UPDATE checkins SET posted_by = device_id")


def _numbered(db: Database, table: str) -> None:
    db.execute(f"ALTER TABLE {table} ADD COLUMN num INTEGER")
    db.execute(f"UPDATE {table} SET num = (SELECT count(*) FROM {table} AS o "
               f"WHERE o.rowid <= {table}.rowid)")
    db.execute(f"CREATE UNIQUE INDEX {table}_num ON {table} (num)")


@migrations()
def m004_scans(db: Database) -> None:
    """One narrow row per check-in instead of its JSON body (see the module text)."""
    _numbered(db, "checkpoints")
    _numbered(db, "devices")
    db.execute("ALTER TABLE devices ADD COLUMN app_version TEXT")
    db.execute("ALTER TABLE devices ADD COLUMN last_seen_at TEXT")
    for statement in _scans_ddl(pg=False):
        db.execute(statement)
    db.execute("INSERT INTO central_meta VALUES ('day_offset_minutes', ?)",
               [str(DEFAULT_DAY_OFFSET_MINUTES)])
    devices = dict(db.execute("SELECT id, num FROM devices").fetchall())
    checkpoints = dict(db.execute("SELECT id, num FROM checkpoints").fetchall())
    rows = db.execute("SELECT body, content_hash, event_time, corrected_at, received_at, "
                      "time_source, time_basis, posted_by, checkpoint_id, device_id "
                      "FROM checkins ORDER BY rowid")
    insert = ("INSERT INTO scans (" + ", ".join(M006_COLUMNS) + ") VALUES ("
              + ", ".join("?" * len(M006_COLUMNS)) + ")")
    for body, digest, event, corrected, received, source, basis, posted, cp, dev in rows:
        item = json.loads(body)
        item["corrected_at"], item["time_source"] = corrected, source
        row = scan_row(item, digest=hash_code(digest), event_time=to_us(_utc(event)),
                       basis=basis, received_us=to_us(_utc(received)),
                       checkpoint=checkpoints[cp], device=devices[dev],
                       posted_by=devices.get(posted) if posted != dev else None)
        db.execute(insert, row[:len(M006_COLUMNS)])
    db.execute("DROP TABLE checkins")
    db.execute(
        "INSERT INTO daily_counts (checkpoint, day, scans) SELECT checkpoint, "
        f"(event_time + {DEFAULT_DAY_OFFSET_MINUTES * 60_000_000}) / {US_PER_DAY}, count(*) "
        "FROM scans GROUP BY 1, 2")
    db.execute(_sqlite_checkins_view())


def dashboard_ddl(pg: bool) -> list[str]:
    """The dashboard's tables (``offline_queue.central.dashboard``): its users (Argon2id
    password hashes), their sessions (the cookie's token hashed), the audit log of
    tracing; the district and commune of a checkpoint (set by an administrator: the
    kiosks do not know them) and what the fleet page shows of a device."""
    key = ("bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY" if pg
           else "INTEGER PRIMARY KEY AUTOINCREMENT")
    big = "bigint" if pg else "INTEGER"
    return [
        f"CREATE TABLE dashboard_users (id {key}, username TEXT NOT NULL UNIQUE, "
        "role TEXT NOT NULL CHECK (role IN ('administrator', 'official', 'viewer')), "
        "password_hash TEXT NOT NULL, created_at TEXT NOT NULL, disabled_at TEXT, "
        "last_login_at TEXT)",
        "CREATE TABLE dashboard_sessions (token_hash TEXT PRIMARY KEY, "
        f"user_id {big} NOT NULL REFERENCES dashboard_users(id), csrf TEXT NOT NULL, "
        f"created_at {big} NOT NULL, last_seen {big} NOT NULL)",
        "CREATE INDEX dashboard_sessions_user ON dashboard_sessions (user_id)",
        f"CREATE TABLE audit_log (seq {key}, at TEXT NOT NULL, username TEXT NOT NULL, "
        "role TEXT NOT NULL, action TEXT NOT NULL, params TEXT NOT NULL, "
        "result_rows INTEGER, client TEXT)",
        "ALTER TABLE checkpoints ADD COLUMN district TEXT",
        "ALTER TABLE checkpoints ADD COLUMN commune TEXT",
        "ALTER TABLE devices ADD COLUMN backlog INTEGER",
        f"ALTER TABLE devices ADD COLUMN clock_offset_ms {big}",
        "ALTER TABLE devices ADD COLUMN last_error TEXT",
        "ALTER TABLE devices ADD COLUMN last_error_at TEXT",
    ]


@migrations()
def m005_dashboard(db: Database) -> None:
    for statement in dashboard_ddl(pg=False):
        db.execute(statement)


@migrations()
def m006_signed_and_scoped(db: Database) -> None:
    """Issue 14: documents carry a signed version; enrolment tokens expire; a check-in id
    is unique per device (one device can no longer pre-empt another's id)."""
    db.execute("ALTER TABLE documents ADD COLUMN version INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE enrolment_tokens ADD COLUMN expires_at TEXT")
    # SQLite cannot change a WITHOUT ROWID table's key: copy into a new table.  The view
    # goes first (a rename checks the views that name the table).
    db.execute("DROP VIEW IF EXISTS checkins")
    statements = _scans_ddl(pg=False, table="scans_m006", device_key=True)
    db.execute(statements[0])
    db.execute("INSERT INTO scans_m006 (" + ", ".join(M006_COLUMNS) + ") SELECT "
               + ", ".join(M006_COLUMNS) + " FROM scans")
    db.execute("DROP TABLE scans")
    db.execute("ALTER TABLE scans_m006 RENAME TO scans")
    for statement in _scans_ddl(pg=False)[1:3]:  # its two indexes
        db.execute(statement)
    db.execute(_sqlite_checkins_view())


def unopened_ddl() -> list[str]:
    """Check-ins whose sealed identity the central could not open (unknown key, changed or
    cut ciphertext): kept with the error until a key is restored (``central reopen``)."""
    return [
        "CREATE TABLE unopened (device INTEGER NOT NULL, id TEXT NOT NULL, "
        "device_id TEXT NOT NULL, key_id TEXT, error TEXT NOT NULL, body TEXT NOT NULL, "
        "received_at TEXT NOT NULL, PRIMARY KEY (device, id))",
    ]


DECLARED = SOURCE_CODES.index("declared") + 1


def people_ddl(pg: bool) -> list[str]:
    """Issue 13: the officer of an override or a declaration as a column; the status the
    province imported, kept apart from the ``status`` document published (which also holds
    the declarations made at kiosks: ``offline_queue.central.people``); a partial index of
    the declared check-ins, so that finding them reads only those rows (ingest updates it
    for declared rows only)."""
    blob = "bytea" if pg else "BLOB"
    # The officer who made an override or recorded a declaration: a column of its own
    # (it was display.officer; those rows are moved).
    officer_from_display = (
        "UPDATE scans SET officer = display::jsonb ->> 'officer', display = CASE WHEN "
        "(display::jsonb - 'officer') = '{}'::jsonb THEN NULL ELSE "
        "(display::jsonb - 'officer')::text END WHERE display LIKE '%\"officer\"%' "
        "AND jsonb_typeof(display::jsonb -> 'officer') = 'string'" if pg else
        "UPDATE scans SET officer = json_extract(display, '$.officer'), display = CASE WHEN "
        "json_remove(display, '$.officer') = '{}' THEN NULL ELSE "
        "json_remove(display, '$.officer') END WHERE display LIKE '%\"officer\"%' "
        "AND json_type(display, '$.officer') = 'text'")
    return [
        "ALTER TABLE scans ADD COLUMN officer TEXT",
        officer_from_display,
        f"CREATE TABLE document_imports (name TEXT PRIMARY KEY, body {blob} NOT NULL, "
        "updated_at TEXT NOT NULL, expires_at TEXT)",
        "CREATE INDEX scans_declared ON scans (event_time, received_at) "
        f"WHERE source = {DECLARED} AND person_key IS NOT NULL AND override_of IS NULL",
    ]


@migrations()
def m007_unopened(db: Database) -> None:
    for statement in unopened_ddl():
        db.execute(statement)


@migrations()
def m008_people(db: Database) -> None:
    db.execute("DROP VIEW IF EXISTS checkins")
    for statement in people_ddl(pg=False):
        db.execute(statement)
    db.execute(_sqlite_checkins_view(officer=True))


def _utc(iso_text: str) -> datetime:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).astimezone(UTC)


def _us(iso_text: str | None) -> int | None:
    return None if iso_text is None else to_us(_utc(iso_text))


def hash_code(hex_digest: str) -> int:
    """The first 64 bits of a content hash as a signed integer (a bigint column).  Two
    different contents of one id collide with probability 2**-64."""
    return int(hex_digest[:16], 16) - 2**63


# The columns m004 and m006 copy (the table as they leave it); later ones are added after.
M006_COLUMNS = (
    "id", "event_time", "recorded_at", "received_at", "corrected_at", "content_hash",
    "checkpoint", "device", "posted_by", "kind", "decision", "direction", "source",
    "time_basis", "time_source", "clock_synced", "original_decision", "person_key",
    "display", "reasons", "override_of", "override_reason",
)
SCAN_COLUMNS = (*M006_COLUMNS, "officer")


def scan_row(item: wire.CheckIn, *, digest: int, event_time: int, basis: str,
             received_us: int, checkpoint: int, device: int, posted_by: int | None
             ) -> tuple[Any, ...]:
    """The ``scans`` values (in SCAN_COLUMNS order) of a valid wire check-in."""
    recorded = _us(item["recorded_at"])
    display = item.get("display") or None
    officer = item.get("officer")
    if officer is None and display is not None and isinstance(display.get("officer"), str) \
            and OFFICER_ID.fullmatch(display["officer"]):
        # A kiosk from before the officer field kept it in display: the same column.
        officer = display["officer"]
        display = {k: v for k, v in display.items() if k != "officer"} or None
    reasons = item.get("reasons") or None
    return (
        item["id"], event_time, recorded, received_us, _us(item.get("corrected_at")), digest,
        checkpoint, device, posted_by, code(KIND_CODES, item["kind"]),
        code(DECISION_CODES, item["decision"]), code(DIRECTION_CODES, item["direction"]),
        code(SOURCE_CODES, item["source"]), code(TIME_BASIS_CODES, basis),
        code(TIME_SOURCE_CODES, item.get("time_source")), int(bool(item["clock_synced"])),
        code(DECISION_CODES, item.get("original_decision")), item.get("person_key"),
        json.dumps(display, ensure_ascii=False, separators=(",", ":")) if display else None,
        json.dumps(reasons, ensure_ascii=False, separators=(",", ":")) if reasons else None,
        item.get("override_of"), item.get("override_reason"), officer,
    )


# --- PostgreSQL: the current schema in one step ---------------------------------------------

def _pg_ddl() -> list[str]:
    return [
        "CREATE TABLE checkpoints (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "created_at TEXT NOT NULL, num INTEGER GENERATED BY DEFAULT AS IDENTITY UNIQUE)",
        "CREATE TABLE enrolment_tokens (token_hash TEXT PRIMARY KEY, "
        "checkpoint_id TEXT NOT NULL REFERENCES checkpoints(id), created_at TEXT NOT NULL, "
        "used_at TEXT, device_id TEXT)",
        "CREATE TABLE devices (id TEXT PRIMARY KEY, checkpoint_id TEXT NOT NULL "
        "REFERENCES checkpoints(id), token_hash TEXT NOT NULL UNIQUE, enrolled_at TEXT NOT NULL, "
        "revoked INTEGER NOT NULL DEFAULT 0, "
        "num INTEGER GENERATED BY DEFAULT AS IDENTITY UNIQUE, app_version TEXT, "
        "last_seen_at TEXT)",
        "CREATE TABLE device_links (device_id TEXT NOT NULL REFERENCES devices(id), "
        "previous_device_id TEXT NOT NULL REFERENCES devices(id), linked_at TEXT NOT NULL, "
        "PRIMARY KEY (device_id, previous_device_id))",
        "CREATE TABLE conflicts (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "id TEXT NOT NULL, device_id TEXT NOT NULL, content_hash TEXT NOT NULL, "
        "body TEXT NOT NULL, received_at TEXT NOT NULL)",
        "CREATE TABLE documents (name TEXT PRIMARY KEY, body bytea NOT NULL, "
        "etag TEXT NOT NULL, updated_at TEXT NOT NULL, expires_at TEXT)",
        *_scans_ddl(pg=True),
        # For a technician in psql: the scans with readable times and words.
        "CREATE VIEW checkins AS SELECT s.id, d.id AS device_id, p.id AS checkpoint_id, "
        "to_timestamp(s.event_time / 1e6) AS event_time, "
        "to_timestamp(s.corrected_at / 1e6) AS corrected_at, "
        "to_timestamp(s.received_at / 1e6) AS received_at, "
        "to_timestamp(s.recorded_at / 1e6) AS recorded_at, "
        f"{_word_sql('s.kind', KIND_CODES)} AS kind, "
        f"{_word_sql('s.decision', DECISION_CODES)} AS decision, "
        f"{_word_sql('s.direction', DIRECTION_CODES)} AS direction, "
        f"{_word_sql('s.time_basis', TIME_BASIS_CODES)} AS time_basis, s.person_key "
        "FROM scans AS s JOIN devices AS d ON d.num = s.device "
        "JOIN checkpoints AS p ON p.num = s.checkpoint",
        f"INSERT INTO central_meta VALUES ('day_offset_minutes', '{DEFAULT_DAY_OFFSET_MINUTES}')",
    ]


# Later PostgreSQL migrations: version -> statements.  A new database is made at version 1
# by ``_pg_ddl`` and then brought up by these in order, like an old one.
PG_MIGRATIONS: dict[int, list[str]] = {
    2: dashboard_ddl(pg=True),  # m005 of SQLite
    3: [  # m006 of SQLite (issue 14)
        "ALTER TABLE documents ADD COLUMN version bigint NOT NULL DEFAULT 1",
        "ALTER TABLE enrolment_tokens ADD COLUMN expires_at TEXT",
        "ALTER TABLE scans DROP CONSTRAINT scans_pkey, ADD PRIMARY KEY (device, id)",
    ],
    4: unopened_ddl(),  # m007 of SQLite (issue 14: sealed identities)
    5: people_ddl(pg=True),  # m008 of SQLite (issue 13)
}


def migrate(db: CentralDB) -> None:
    """Bring the database to the current schema (idempotent)."""
    if not db.postgres:
        migrations.apply(Database(db.conn, execute_plugins=False))
        return
    with db.atomic():
        # One migrating process at a time (several central workers may start together).
        db.execute("SELECT pg_advisory_xact_lock(7406581)")
        exists = db.one("SELECT to_regclass('schema_version')")[0]
        if exists is None:
            db.executescript(_pg_ddl())
            db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            db.execute("INSERT INTO schema_version VALUES (?)", [PG_SCHEMA_VERSION])
        (version,) = db.one("SELECT version FROM schema_version")
        for target in sorted(v for v in PG_MIGRATIONS if v > version):
            db.executescript(PG_MIGRATIONS[target])
            db.execute("UPDATE schema_version SET version = ?", [target])
