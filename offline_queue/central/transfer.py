"""Move a SQLite central to PostgreSQL: ``checkpoint-kiosk central copy``.

A single hospital runs the central on SQLite; a province takes it over on PostgreSQL.
:func:`copy_central` copies every table that matters, verifies the copy and says what it
did (docs/central.md, "Moving from SQLite to PostgreSQL").

- The source is opened read-only (``mode=ro``) and read in one transaction: one
  consistent snapshot even if a server still writes to it (stop it first all the same:
  rows accepted after the snapshot would be missing from the copy).  A source at an
  older schema is refused, not migrated: migrating would write to it.  Running this
  version once on it (any ``central`` sub-command that opens it, e.g. ``report``) brings
  it to the current schema.  A source from a newer release is refused too.
- The target is brought to the current schema with the central's own migrations, and
  must be empty: a target that holds check-ins (or devices, users...) is refused with
  the table and its count.  There is no merge: the check-ins point at checkpoints and
  devices by their number (``num``), and merging two centrals would have to renumber
  them; a failed copy leaves nothing behind (below), so running it again is the retry.
- The tables are streamed (``COPY ... FROM STDIN``, rows fetched in batches): the memory
  used does not grow with the number of check-ins.  Everything is written in ONE
  PostgreSQL transaction: either all of it is there or nothing.
- Identity columns (``checkpoints.num``, ``devices.num``, ``conflicts.seq``,
  ``dashboard_users.id``, ``audit_log.seq``) keep their values, and their sequences are
  set past the copied ones (and past SQLite's AUTOINCREMENT counter), so new rows do not
  collide.
- :func:`verify` then reads both databases again: per table the row count and a checksum
  over every copied column of every row (order-independent: the sum of 64-bit BLAKE2b
  hashes of the rows, each value in one canonical form), and reports any difference.

What each table does (``TABLES``, ``DROPPED``): every table of the current schema is
either copied or dropped with its reason; a table this module does not know is refused,
so that a later migration cannot add a table that is silently left behind.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from offline_queue import wire
from offline_queue.central import schema
from offline_queue.central.backend import CentralDB, describe, is_postgres
from offline_queue.errors import StoreError

# Tables copied, in an order the foreign keys accept.
TABLES = (
    "checkpoints",        # id, name, district/commune, num (the scans point at it)
    "enrolment_tokens",   # hashed; an unused, unexpired token still enrols
    "devices",            # hashed tokens (kiosks go on with theirs), revoked, backlog, num
    "device_links",       # which device may deliver an older one's rows
    "dashboard_users",    # Argon2id hashes, roles, disabled: the same logins
    "audit_log",          # who traced, exported, whom: kept whole
    "documents",          # published bodies, etags, versions (signed when served)
    "document_imports",   # the province's imported status (people.py)
    "central_meta",       # day offset, the status republisher's state
    "retention_runs",     # what retention deleted when
    "conflicts",          # same id, other content: for a technician
    "unopened",           # sealed identities not opened yet (central reopen)
    "daily_counts",       # the activity report's counts
    "scans",              # the check-ins
)

# Tables not copied, and why.
DROPPED = {
    "dashboard_sessions": "logins of the old server: users sign in again; a session copied "
                          "would be a cookie that outlives the move",
    "_sqlite_migrations": "SQLite's migration record; PostgreSQL has schema_version",
    "sqlite_sequence": "SQLite's AUTOINCREMENT counters: the sequences are set from them",
    "schema_version": "PostgreSQL's migration record, written by the migrations",
}

# central_meta is written by the migrations of a new PostgreSQL database (the day offset):
# the source's values replace those rows.
UPSERT = {"central_meta": "key"}

BATCH = 5_000


class CopyRefused(StoreError):
    """The copy did not start: the source or the target is not as it must be."""


@dataclass
class TableResult:
    name: str
    rows: int = 0
    seconds: float = 0.0
    source_count: int = 0
    target_count: int = 0
    source_sum: int = 0
    target_sum: int = 0

    @property
    def matches(self) -> bool:
        return (self.source_count == self.target_count
                and self.source_sum == self.target_sum)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Report:
    tables: dict[str, TableResult] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    copied: bool = False

    @property
    def mismatches(self) -> list[TableResult]:
        return [t for t in self.tables.values() if not t.matches]

    def lines(self) -> list[str]:
        out = []
        for t in self.tables.values():
            copy = (f"copied {t.rows} rows in {t.seconds:.1f} s ({t.rate:,.0f} rows/s); "
                    if self.copied else "")
            state = "ok" if t.matches else (
                f"MISMATCH: source {t.source_count} rows checksum {t.source_sum:016x}, "
                f"target {t.target_count} rows checksum {t.target_sum:016x}")
            out.append(f"{t.name}: {copy}{t.source_count} rows, checksum "
                       f"{t.source_sum:016x}: {state}")
        for column, value in self.sequences.items():
            out.append(f"sequence of {column}: next value {value}")
        for name, why in DROPPED.items():
            out.append(f"{name}: not copied ({why})")
        return out


# --- opening ------------------------------------------------------------------------------

def open_source(path: str | Path) -> sqlite3.Connection:
    """The SQLite central at ``path``, read-only, at the current schema (else CopyRefused),
    inside a read transaction (one snapshot for the copy and its verification)."""
    if is_postgres(str(path)):
        raise CopyRefused(f"--from {describe(str(path))!r} is a PostgreSQL URL; the source is "
                          "the SQLite file of the central being moved")
    source = Path(path)
    if not source.is_file():
        raise CopyRefused(f"no SQLite central database at {str(source)!r}; check --from")
    try:
        conn = _read_only(source, "mode=ro")
    except sqlite3.Error as e:
        # A WAL database read-only needs its -shm file, which SQLite makes in the folder:
        # a user who may not write there is refused.  With no -wal file left (a server
        # stopped cleanly writes it back and removes it) nothing can change the file but
        # a server, which must be stopped: it may be read as immutable.
        wal = source.with_name(source.name + "-wal")
        if "readonly" not in str(e) or (wal.exists() and wal.stat().st_size):
            raise CopyRefused(
                f"cannot open {str(source)!r} read-only: {e}; check that it is a "
                "checkpoint-kiosk central database, that this user may read it and (while "
                f"{wal.name} holds rows) write its folder, and that the server is stopped"
            ) from e
        try:
            conn = _read_only(source, "immutable=1")
        except sqlite3.Error as again:
            raise CopyRefused(f"cannot open {str(source)!r} read-only: {again}; check that "
                              "it is a checkpoint-kiosk central database") from again
    try:
        _check_source_version(conn, str(source))
    except BaseException:
        conn.close()
        raise
    return conn


def _read_only(source: Path, flag: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"{source.resolve().as_uri()}?{flag}", uri=True,
                           isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _check_source_version(conn: sqlite3.Connection, path: str) -> None:
    db = Database(conn, execute_plugins=False)
    applied = [m.name for m in schema.migrations.applied(db)]
    known = [m.name for m in schema.migrations._migrations]  # noqa: SLF001 - no public list
    if not applied:
        raise CopyRefused(f"{path!r} is not a checkpoint-kiosk central database (it has no "
                          "record of the central's migrations); check --from")
    newer = [name for name in applied if name not in known]
    if newer:
        raise CopyRefused(f"{path!r} was written by a newer checkpoint-kiosk (migrations "
                          f"{', '.join(newer)}); copy it with that release")
    pending = [m.name for m in schema.migrations.pending(db)]
    if pending:
        raise CopyRefused(
            f"{path!r} is at an older schema (missing {', '.join(pending)}); the copy opens "
            "the source read-only and does not migrate it: run this version once on it, "
            f"e.g. 'checkpoint-kiosk central --db {path} report > /dev/null', then copy again")


def open_target(url: str) -> CentralDB:
    """The PostgreSQL central at ``url``, migrated to the current schema."""
    from offline_queue.central import db as central_db

    if not is_postgres(url):
        raise CopyRefused(f"--to {url!r} is not a postgresql:// URL; the target is the "
                          "province's PostgreSQL database")
    return central_db.connect(url)


# --- what each table holds ------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # information_schema's data_type
    identity: bool


def _target_tables(target: CentralDB) -> dict[str, list[Column]]:
    rows = target.execute(
        "SELECT c.table_name, c.column_name, c.data_type, c.is_identity FROM "
        "information_schema.columns AS c JOIN information_schema.tables AS t "
        "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' "
        "ORDER BY c.table_name, c.ordinal_position").fetchall()
    tables: dict[str, list[Column]] = {}
    for table, column, pg_type, identity in rows:
        tables.setdefault(table, []).append(Column(column, pg_type, identity == "YES"))
    return tables


def _source_tables(conn: sqlite3.Connection) -> dict[str, list[str]]:
    names = [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: [r[1] for r in conn.execute(f"PRAGMA table_info({_quote(name)})")]
            for name in names}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def plan(conn: sqlite3.Connection, target: CentralDB) -> dict[str, list[Column]]:
    """Table -> the columns to copy; CopyRefused if either database has a table this module
    does not know, or the two disagree on a table's columns."""
    source, dest = _source_tables(conn), _target_tables(target)
    for side, names in (("source", source), ("target", dest)):
        unknown = sorted(set(names) - set(TABLES) - set(DROPPED))
        if unknown:
            raise CopyRefused(f"the {side} has tables this version does not know how to copy: "
                              f"{', '.join(unknown)}; use the release that made them")
    out: dict[str, list[Column]] = {}
    for table in TABLES:
        if table not in source or table not in dest:
            raise CopyRefused(f"table {table} is missing from the "
                              f"{'source' if table not in source else 'target'}")
        if set(source[table]) != {c.name for c in dest[table]}:
            raise CopyRefused(f"table {table} has columns {sorted(source[table])} in the "
                              f"source but {sorted(c.name for c in dest[table])} in the "
                              "target; both must be at this version's schema")
        out[table] = dest[table]
    return out


def target_rows(target: CentralDB) -> dict[str, int]:
    """Rows already in the target's tables (central_meta's rows from the migrations left
    out: they are replaced)."""
    counts = {}
    for table in (*TABLES, "dashboard_sessions"):
        if table in UPSERT:
            continue
        (n,) = target.one(f"SELECT count(*) FROM {table}")
        if n:
            counts[table] = int(n)
    return counts


def check_target_empty(target: CentralDB) -> None:
    counts = target_rows(target)
    if not counts:
        return
    held = ", ".join(f"{n} rows in {t}" for t, n in counts.items())
    first = "scans" if "scans" in counts else next(iter(counts))
    what = (f"{counts['scans']} check-ins (table scans)" if first == "scans"
            else f"{counts[first]} rows in table {first}")
    raise CopyRefused(
        f"the target {describe(target.target)!r} is not empty: it already holds {what} "
        f"({held}); the copy does not merge two centrals: give it a new, empty database "
        "(createdb), or drop this one if it is a failed earlier copy")


# --- canonical values: what is copied and what the checksum reads ---------------------------

def _canon(pg_type: str) -> Callable[[Any], Any]:
    """A function giving a value, from either engine, in one form for ``pg_type``."""
    if pg_type == "bytea":
        return lambda v: v if v is None else (
            v.encode("utf-8") if isinstance(v, str) else bytes(v))
    if pg_type in ("integer", "bigint", "smallint"):
        return lambda v: v if v is None else int(v)
    if pg_type == "uuid":
        return lambda v: v if v is None else str(uuid.UUID(str(v)))
    return lambda v: v if v is None else str(v)


def _canonical_rows(rows: Iterator[Sequence[Any]], columns: list[Column]
                    ) -> Iterator[tuple[Any, ...]]:
    canon = [_canon(c.pg_type) for c in columns]
    for row in rows:
        yield tuple(f(v) for f, v in zip(canon, row, strict=True))


def _checked_rows(rows: Iterator[Sequence[Any]], columns: list[Column], *, source: bool
                  ) -> Iterator[tuple[Any, ...]]:
    """Rows as the checksum reads them, for a million rows in seconds: as the engine gives
    them but for UUIDs (PostgreSQL's read as text, SQLite's in the one spelling the copy
    wrote) and bytea (bytes).  SQLite's column affinity already gives the integer and text
    columns PostgreSQL's types; a value of another type would show as a difference, never
    hide one."""
    fix = [i for i, c in enumerate(columns)
           if c.pg_type == "bytea" or (source and c.pg_type == "uuid")]
    if not fix:
        for row in rows:
            yield tuple(row)
        return
    canon = {i: (_spelled if columns[i].pg_type == "uuid" else _canon("bytea")) for i in fix}
    for row in rows:
        values = list(row)
        for i in fix:
            if values[i] is not None:
                values[i] = canon[i](values[i])
        yield tuple(values)


def _spelled(value: Any) -> Any:
    """A UUID in its one spelling; anything else as it is (it shows as a difference)."""
    try:
        return wire.canonical_uuid(str(value))
    except ValueError:
        return value


def _row_hash(row: tuple[Any, ...]) -> int:
    return int.from_bytes(hashlib.blake2b(repr(row).encode("utf-8"), digest_size=8).digest(),
                          "big")


def _sqlite_rows(conn: sqlite3.Connection, table: str, columns: list[Column]
                 ) -> Iterator[Sequence[Any]]:
    cursor = conn.execute(f"SELECT {', '.join(_quote(c.name) for c in columns)} "
                          f"FROM {_quote(table)}")
    while batch := cursor.fetchmany(BATCH):
        yield from batch


def _pg_rows(target: CentralDB, table: str, columns: list[Column]
             ) -> Iterator[Sequence[Any]]:
    conn = target.conn
    with conn.transaction(), conn.cursor(name=f"verify_{table}") as cursor:
        cursor.itersize = BATCH
        cursor.execute("SELECT " + ", ".join(
            f"{c.name}::text" if c.pg_type == "uuid" else c.name for c in columns)
            + f" FROM {table}")
        yield from cursor


def _summed(rows: Iterator[tuple[Any, ...]]) -> tuple[int, int]:
    count = total = 0
    for row in rows:
        count += 1
        total = (total + _row_hash(row)) % 2**64
    return count, total


# --- the copy -------------------------------------------------------------------------------

def _copy_table(conn: sqlite3.Connection, target: CentralDB, table: str,
                columns: list[Column]) -> int:
    names = ", ".join(c.name for c in columns)
    rows = _canonical_rows(_sqlite_rows(conn, table, columns), columns)
    if table in UPSERT:
        key = UPSERT[table]
        updates = ", ".join(f"{c.name} = excluded.{c.name}" for c in columns if c.name != key)
        marks = ", ".join("%s" for _ in columns)
        data = list(rows)  # a handful of settings
        with target.conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks}) "
                               f"ON CONFLICT ({key}) DO UPDATE SET {updates}", data)
        return len(data)
    count = 0
    with target.conn.cursor() as cursor, \
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _set_sequences(conn: sqlite3.Connection, target: CentralDB,
                   tables: dict[str, list[Column]]) -> dict[str, int]:
    """Each identity column's sequence set past the copied values and SQLite's
    AUTOINCREMENT counter: the next value given to a new row."""
    counters: dict[str, int] = {}
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        counters = {name: int(seq) for name, seq in conn.execute(
            "SELECT name, seq FROM sqlite_sequence")}
    out = {}
    for table, columns in tables.items():
        for column in columns:
            if not column.identity:
                continue
            (top,) = target.one(f"SELECT coalesce(max({column.name}), 0) FROM {table}")
            following = max(int(top), counters.get(table, 0)) + 1
            target.execute("SELECT setval(pg_get_serial_sequence(?, ?), ?, false)",
                           [table, column.name, following])
            out[f"{table}.{column.name}"] = following
    return out


def copy_central(source_path: str | Path, target_url: str, *,
                 progress: Callable[[str], None] = lambda _: None) -> Report:
    """Copy the SQLite central at ``source_path`` into the empty PostgreSQL central at
    ``target_url`` and verify it; the report's ``mismatches`` is empty when the copy is
    whole.  CopyRefused (nothing written) when a database is not as it must be."""
    conn = open_source(source_path)
    try:
        with open_target(target_url) as target:
            tables = plan(conn, target)
            check_target_empty(target)
            report = Report(copied=True)
            with target.conn.transaction():
                for table, columns in tables.items():
                    started = time.monotonic()
                    progress(f"copying {table}")
                    rows = _copy_table(conn, target, table, columns)
                    report.tables[table] = TableResult(table, rows,
                                                       time.monotonic() - started)
                report.sequences = _set_sequences(conn, target, tables)
            progress("analysing the target (its query planner's statistics)")
            target.execute("ANALYZE")
            _verify_into(conn, target, tables, report, progress)
            return report
    finally:
        conn.close()


def verify(source_path: str | Path, target_url: str, *,
           progress: Callable[[str], None] = lambda _: None) -> Report:
    """Compare a copy with its source again (``central copy --verify-only``)."""
    conn = open_source(source_path)
    try:
        with open_target(target_url) as target:
            tables = plan(conn, target)
            report = Report()
            _verify_into(conn, target, tables, report, progress)
            return report
    finally:
        conn.close()


def _verify_into(conn: sqlite3.Connection, target: CentralDB,
                 tables: dict[str, list[Column]], report: Report,
                 progress: Callable[[str], None]) -> None:
    for table, columns in tables.items():
        progress(f"verifying {table}")
        result = report.tables.setdefault(table, TableResult(table))
        source = _checked_rows(_sqlite_rows(conn, table, columns), columns, source=True)
        dest = _checked_rows(_pg_rows(target, table, columns), columns, source=False)
        if table in UPSERT:
            # The target may hold settings the source never wrote (a default of this
            # version's migrations): compare the source's keys only.
            keys = [c.name for c in columns].index(UPSERT[table])
            wanted = list(source)
            present = {row[keys] for row in wanted}
            result.source_count, result.source_sum = _summed(iter(wanted))
            result.target_count, result.target_sum = _summed(
                row for row in dest if row[keys] in present)
            continue
        result.source_count, result.source_sum = _summed(source)
        result.target_count, result.target_sum = _summed(dest)


# --- the keys, which are not in the database ------------------------------------------------

@dataclass(frozen=True)
class KeyCheck:
    path: str
    fingerprint: str
    earlier_fingerprints: tuple[str, ...]
    sealing_key_ids: tuple[str, ...]
    unopened_key_ids_missing: tuple[str, ...]


def check_keys(key_file: str | Path, source_path: str | Path) -> KeyCheck:
    """What the key file holds, read without creating a key (a rotation cut short by a
    crash is finished or forgotten, as the server's next start would): the signing key's
    fingerprint (what kiosks pinned: provisioning's ``central_key``; the database holds
    no fingerprint, documents are signed when served), the fingerprints it rotated from
    (a kiosk pinned to one of those follows the rotations), the sealing key ids, and the
    key ids of kept-aside rows (``unopened``) that this file cannot open."""
    from offline_queue.central import keys

    path = Path(key_file)
    if not path.is_file():
        raise CopyRefused(f"no signing key at {str(path)!r} (--key-file); it is not in the "
                          "database: give the old central's key file")
    if not keys.sealing_path(path).is_file():
        raise CopyRefused(f"no sealing keys at {str(keys.sealing_path(path))!r} beside the "
                          "signing key; carry that file over too (docs/privacy.md)")
    key = keys.load_or_create(path)
    ids = key.sealing.key_ids
    conn = open_source(source_path)
    try:
        wanted = {r[0] for r in conn.execute(
            "SELECT DISTINCT key_id FROM unopened WHERE key_id IS NOT NULL")}
    finally:
        conn.close()
    return KeyCheck(str(path), key.fingerprint,
                    tuple(r.previous for r in key.rotations), ids,
                    tuple(sorted(wanted - set(ids))))
