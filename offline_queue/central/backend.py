"""One connection type over the central's two databases: SQLite and PostgreSQL.

The central's SQL is written once, with ``?`` placeholders and the SQL both engines
share (``ON CONFLICT``, ``RETURNING``, ``WITH RECURSIVE``, integer times); this module
opens the database a ``--db`` names and hides the few differences:

- a SQLite path (the embedded default: the demo, a single hospital, the tests), opened
  with WAL and ``synchronous=FULL``;
- a ``postgresql://`` URL (a province), through psycopg 3, placeholders turned into
  psycopg's ``%s``.  Why psycopg with hand-written SQL rather than SQLAlchemy Core:
  docs/central.md, "Choices".
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from offline_queue.errors import StoreError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
SQLITE = "sqlite"
POSTGRES = "postgresql"

_PLACEHOLDER = re.compile(r"\?")

# One result row as the engine gives it: a tuple of SQL values (text, integers, reals, bytes,
# NULL; psycopg may add its own types).  Code that hands a row on to another function turns
# it into a named row type first (db.Device, queries' and the dashboard's TypedDicts).
Row = tuple[Any, ...]


class Cursor(Protocol):
    """What :meth:`CentralDB.execute` returns, on either engine (sqlite3's and psycopg's
    cursors both have this shape)."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Sequence[Sequence[Any]] | None: ...
    def fetchone(self) -> Row | None: ...
    def fetchall(self) -> list[Row]: ...
    def __iter__(self) -> Iterator[Row]: ...


def is_postgres(target: str | os.PathLike[str]) -> bool:
    """True when ``target`` is a PostgreSQL URL rather than a SQLite path."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def describe(target: str | os.PathLike[str]) -> str:
    """``target`` for messages and logs: a URL without its password."""
    text = str(target)
    if is_postgres(text):
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", text)
    return text


class CentralDB:
    """An open central database: :meth:`execute`, :meth:`atomic`, :meth:`close`.

    ``dialect`` is ``"sqlite"`` or ``"postgresql"``.  Outside :meth:`atomic` each
    PostgreSQL statement commits by itself; SQLite keeps Python's default (a write opens
    a transaction that :meth:`commit` or :meth:`atomic` ends), as sqlite-utils did.
    """

    def __init__(self, conn: Any, dialect: str, target: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.target = target
        self._sql_cache: dict[str, str] = {}
        self._depth = 0

    @property
    def postgres(self) -> bool:
        return self.dialect == POSTGRES

    def sql(self, text: str) -> str:
        """``text`` in this engine's placeholder style."""
        if not self.postgres:
            return text
        cached = self._sql_cache.get(text)
        if cached is None:
            cached = self._sql_cache[text] = _PLACEHOLDER.sub("%s", text.replace("%", "%%"))
        return cached

    def execute(self, text: str, params: Sequence[object] = ()) -> Cursor:
        """Run one statement; a cursor (``fetchone``, ``fetchall``, iteration, ``rowcount``)."""
        cursor: Cursor = self.conn.execute(self.sql(text), params)
        return cursor

    def one(self, text: str, params: Sequence[object] = ()) -> Row:
        """The row a statement always gives (an aggregate, a row just written or locked)."""
        row = self.execute(text, params).fetchone()
        if row is None:
            raise StoreError(f"the central database {describe(self.target)!r} returned no row "
                             f"for {text!r}; its schema may be damaged: restore it from the "
                             "backup (docs/central.md)")
        return row

    def executescript(self, statements: Sequence[str]) -> None:
        for statement in statements:
            self.conn.execute(statement)

    @contextmanager
    def atomic(self) -> Iterator[CentralDB]:
        """A transaction (nested calls join the outer one); rolled back on an exception."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            if self.postgres:
                with self.conn.transaction():
                    yield self
            else:
                if self.conn.in_transaction:
                    self.conn.commit()
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self
                except BaseException:
                    self.conn.rollback()
                    raise
                self.conn.commit()
        finally:
            self._depth = 0

    def commit(self) -> None:
        if not self.postgres:
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> CentralDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sqlite(path: str | os.PathLike[str]) -> CentralDB:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 (it holds every check-in): SQLite would make it 0644 under the usual
    # umask, and its -wal and -shm files copy the database's mode.
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # "accepted" is a promise the kiosk acts on: commit it durably.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return CentralDB(conn, SQLITE, str(path))


def open_postgres(url: str) -> CentralDB:
    try:
        import psycopg
    except ImportError as e:
        raise StoreError(
            "the central's --db is a PostgreSQL URL but psycopg is not installed; "
            "pip install 'checkpoint-kiosk[central]'") from e
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as e:
        raise StoreError(f"cannot connect to the central database {describe(url)!r}: "
                         f"{str(e).strip()}; {_connect_hint(str(e))}") from e
    return CentralDB(conn, POSTGRES, url)


def _connect_hint(error: str) -> str:
    """What to check after a failed connection.  Peer authentication (the local socket,
    docs/central.md) lets a role log in only from the system user of the same name: root
    running a central command is refused, and the fix is to run it as that user."""
    peer = re.search(r'Peer authentication failed for user "([^"]+)"', error)
    if peer:
        return (f"PostgreSQL's peer authentication lets only the system user {peer.group(1)!r} "
                f"log in as that role: run the command as that user (as root: runuser -u "
                f"{peer.group(1)} -- COMMAND; docs/central.md)")
    return "check the URL, that PostgreSQL runs and that the role may log in (docs/central.md)"


def db_errors() -> tuple[type[BaseException], ...]:
    """The exception types either engine raises for a database problem."""
    errors: list[type[BaseException]] = [sqlite3.Error]
    try:
        import psycopg
        errors.append(psycopg.Error)
    except ImportError:
        pass
    return tuple(errors)
