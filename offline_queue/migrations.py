"""Versioned schema of the kiosk's queue database (sqlite-utils 4.x ``Migrations``).

Migrations are only ever appended: a device in the field may be several releases behind,
and each step runs once inside a transaction together with its record.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("checkpoint_kiosk.queue")


@migrations()
def m001_checkins(db: Database) -> None:
    # ``seq`` is the creation order: UUIDv7 ids follow the wall clock, which may step
    # back after a power cut, and VACUUM may renumber an implicit rowid.
    db.execute(
        """
        CREATE TABLE checkins (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            device_id TEXT NOT NULL,
            checkpoint_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            kind TEXT NOT NULL,
            person_key TEXT,
            display TEXT NOT NULL DEFAULT '{}',
            decision TEXT NOT NULL CHECK (decision IN ('pass', 'check', 'stop')),
            reasons TEXT NOT NULL DEFAULT '[]',
            source TEXT NOT NULL DEFAULT 'scan',
            override_of TEXT,
            original_decision TEXT,
            override_reason TEXT,
            wall_time TEXT NOT NULL,
            mono_ns INTEGER NOT NULL,
            boot_id TEXT NOT NULL,
            clock_synced INTEGER NOT NULL,
            corrected_time TEXT,
            app_version TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'in_flight', 'sent', 'rejected', 'conflict')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            sent_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX checkins_state_seq ON checkins (state, seq)")
    db.execute("CREATE INDEX checkins_wall_time ON checkins (wall_time)")
    db.execute(
        "CREATE INDEX checkins_override_of ON checkins (override_of) "
        "WHERE override_of IS NOT NULL"
    )


@migrations()
def m002_documents(db: Database) -> None:
    # Down-synced documents are kept as opaque bytes; one row is replaced in one
    # statement, so a reader sees either the old or the new version, never a mix.
    db.execute(
        """
        CREATE TABLE documents (
            name TEXT PRIMARY KEY,
            body BLOB NOT NULL,
            etag TEXT,
            sha256 TEXT NOT NULL,
            fetched_at TEXT NOT NULL,
            expires_at TEXT
        )
        """
    )


@migrations()
def m003_sync_meta(db: Database) -> None:
    # Last sync outcome, so ``queue stats`` in another process can report it.
    db.execute("CREATE TABLE sync_meta (key TEXT PRIMARY KEY, value TEXT)")


@migrations()
def m004_time_source_and_forbidden(db: Database) -> None:
    # How a row's time was set (issue 9 #16): 'ntp' (the clock was synced, or NTP synced
    # later in the same boot), 'central' (the central's clock measured in the same boot),
    # 'none' (device time only).  Rows corrected before this release were corrected by NTP.
    db.execute(
        "ALTER TABLE checkins ADD COLUMN time_source TEXT NOT NULL DEFAULT 'none' "
        "CHECK (time_source IN ('ntp', 'central', 'none'))"
    )
    db.execute(
        "UPDATE checkins SET time_source = 'ntp' "
        "WHERE clock_synced = 1 OR corrected_time IS NOT NULL"
    )
    db.execute(
        "CREATE INDEX checkins_uncorrected ON checkins (boot_id) WHERE time_source = 'none'"
    )
    # 1 while the server answers "forbidden" for a pending row (not this device's to post,
    # e.g. before a re-enrolment is linked): the row stays pending, never dead letter.
    db.execute("ALTER TABLE checkins ADD COLUMN forbidden INTEGER NOT NULL DEFAULT 0")


@migrations()
def m005_boot_clock(db: Database) -> None:
    # One time anchor per boot: true time = true_time + (mono_ns of a row - mono_ns).
    # Wall minus monotonic is constant within a boot unless the clock is stepped, and the
    # monotonic clock is never stepped, so the anchor corrects every row of that boot.
    db.execute(
        """
        CREATE TABLE boot_clock (
            boot_id TEXT PRIMARY KEY,
            source TEXT NOT NULL CHECK (source IN ('ntp', 'central')),
            true_time TEXT NOT NULL,
            mono_ns INTEGER NOT NULL,
            offset_s REAL NOT NULL,
            uncertainty_s REAL NOT NULL,
            measured_at TEXT NOT NULL
        )
        """
    )


@migrations()
def m006_sealed_identity(db: Database) -> None:
    # Issue 14: no identity in clear at rest.  ``sealed`` holds the identity sealed to the
    # central's key (offline_queue.sealing); ``identity`` says where a row's identity is:
    # 'none' (it has none), 'sealed', 'waiting' (no sealing key yet: held in the kiosk's
    # RAM, the row is not sent), 'lost' (the process ended while it waited) or 'clear'
    # (a row of an earlier release, sealed as soon as the key is known).
    db.execute("ALTER TABLE checkins ADD COLUMN sealed TEXT")
    db.execute(
        "ALTER TABLE checkins ADD COLUMN identity TEXT NOT NULL DEFAULT 'none' "
        "CHECK (identity IN ('none', 'sealed', 'waiting', 'lost', 'clear'))"
    )
    # Delivered rows: the central has the identity, the kiosk needs none.
    db.execute("UPDATE checkins SET person_key = NULL WHERE state = 'sent'")
    db.execute("UPDATE checkins SET override_reason = NULL "
               "WHERE state = 'sent' AND override_reason GLOB '*[0-9]*'")
    db.execute(
        "UPDATE checkins SET identity = 'clear' WHERE person_key IS NOT NULL "
        "OR override_reason GLOB '*[0-9]*'"
    )
    db.execute("CREATE INDEX checkins_identity ON checkins (identity) "
               "WHERE identity IN ('waiting', 'clear')")


@migrations()
def m007_officer(db: Database) -> None:
    # Issue 13: the officer who made an override or a declaration, a field of its own (it
    # was kept as display["officer"]).  Rows no send attempt has carried yet, and rows the
    # central already holds, are moved to the column; a row that may have reached the
    # central in an attempt whose answer was lost keeps it in display, so its resend has
    # the same content (the central reads display.officer of such rows as the officer).
    db.execute("ALTER TABLE checkins ADD COLUMN officer TEXT")
    db.execute(
        "UPDATE checkins SET officer = json_extract(display, '$.officer'), "
        "display = json_remove(display, '$.officer') "
        "WHERE json_type(display, '$.officer') = 'text' "
        "AND (state = 'sent' OR (state = 'pending' AND attempts = 0))"
    )


def apply(db: Database) -> None:
    migrations.apply(db)
