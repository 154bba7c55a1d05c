"""Issue 13: the officer who made an override or recorded a declaration is a field of the
check-in (it was ``display["officer"]``): the record, the kiosk's store and its migration,
the wire, the central's column and its migration, the export and the trace."""

from __future__ import annotations

import json

import pytest
from central_helpers import enrol, item, post, statuses
from sqlite_utils import Database

from kiosk.domain.officers import OFFICER_KEY, SHARED_PIN
from offline_queue import migrations as kiosk_migrations
from offline_queue import records, wire
from offline_queue.central import db as central_db
from offline_queue.central import queries, schema
from offline_queue.central.server import CentralServer
from offline_queue.store import Store


@pytest.mark.parametrize("bad", ["", "a" * 33, "hn 017", "hn-017\n", "\u202ehn", "nguyễn",
                                 "-hn", 17])
def test_a_check_in_refuses_an_officer_that_is_not_an_officer_id(bad):
    with pytest.raises(ValueError, match="CheckIn.officer"):
        records.CheckIn(direction="in", kind="cccd", person_key=None, officer=bad)
    assert wire.validation_errors(item({"device_id": "d", "checkpoint_id": "c"},
                                       officer=bad))


def test_the_ids_the_kiosk_uses_without_an_officer_list_are_officer_ids():
    for officer in ("hn-017", SHARED_PIN, OFFICER_KEY, "A.b_9"):
        records.CheckIn(direction="in", kind="cccd", person_key=None, officer=officer)
        assert wire.validation_errors(item({"device_id": "d", "checkpoint_id": "c"},
                                           officer=officer)) == []


def test_the_store_records_the_officer_and_the_wire_leaves_it_out_when_none(tmp_path):
    with Store(tmp_path / "k.db", device_id="k", checkpoint_id="c") as store:
        made = store.record(records.CheckIn(direction="in", kind="cccd", person_key=None,
                                            source="declared", officer="hn-017",
                                            display={"name": "N***"}))
        plain = store.record(records.CheckIn(direction="in", kind="cccd", person_key=None))
    db = Database(tmp_path / "k.db")
    rows = {r["id"]: wire.from_row(r) for r in db.query("SELECT * FROM checkins")}
    assert rows[made]["officer"] == "hn-017" and rows[made]["display"] == {"name": "N***"}
    # A row nobody made has no officer member: its content hash is what it was before the
    # field existed, so a resend of an old row is a duplicate, not a conflict.
    assert "officer" not in rows[plain]
    assert wire.validation_errors(rows[made]) == []


def test_the_kiosk_migration_moves_display_officer_where_no_attempt_carried_it(tmp_path):
    path = tmp_path / "old.db"
    db = Database(path)
    kiosk_migrations.migrations.apply(db, stop_before="m007_officer")
    columns = ("id, device_id, checkpoint_id, direction, kind, display, decision, reasons, "
               "source, wall_time, mono_ns, boot_id, clock_synced, app_version, state, "
               "attempts, seq")
    for n, (state, attempts) in enumerate([("sent", 1), ("pending", 0), ("pending", 2),
                                          ("in_flight", 1)]):
        db.execute(f"INSERT INTO checkins ({columns}) VALUES (?, 'k', 'c', 'in', 'cccd', ?, "
                   "'check', '[]', 'declared', '2026-01-01T00:00:00Z', 1, 'b', 1, '0', ?, ?, ?)",
                   [f"id-{n}", json.dumps({"name": "N***", "officer": "hn-017"}), state,
                    attempts, n + 1])
    db.conn.commit()
    kiosk_migrations.apply(db)
    got = {r["id"]: (r["officer"], json.loads(r["display"]))
           for r in db.query("SELECT id, officer, display FROM checkins")}
    assert got["id-0"] == got["id-1"] == ("hn-017", {"name": "N***"})
    # An attempt may have reached the central: the same content goes again.
    assert got["id-2"] == got["id-3"] == (None, {"name": "N***", "officer": "hn-017"})


def test_the_central_stores_the_officer_in_its_column_also_from_an_old_kiosk(db_target):
    with CentralServer(db_target) as server:
        device = enrol(server, db_target, "CP-A")
        new = item(device, source="declared", officer="hn-017", person_key="001185012345")
        old = item(device, display={"name": "N***", "officer": "hn-021"}, source="manual")
        odd = item(device, display={"officer": "not an id!"})
        assert statuses(post(server, device, [new, old, odd])) == ["accepted"] * 3
        refused = item(device, officer="x" * 40)
        assert statuses(post(server, device, [refused])) == ["rejected"]
    with central_db.connect(db_target) as cdb:
        exported = {c["id"]: c for c in central_db.export_checkins(cdb)}
        traced = queries.trace_person(cdb, "001185012345")["checkins"]
    assert exported[new["id"]]["officer"] == "hn-017"
    assert (exported[old["id"]]["officer"], exported[old["id"]]["display"]) == \
        ("hn-021", {"name": "N***"})
    # Not an officer id: left in display as the kiosk sent it, no officer claimed.
    assert (exported[odd["id"]]["officer"], exported[odd["id"]]["display"]) == \
        (None, {"officer": "not an id!"})
    assert [(t["source"], t["officer"]) for t in traced] == [("declared", "hn-017")]
    assert {"source", "officer", "override_of"} <= set(queries.TRACE_FIELDS)


def _old_row(db, n: int, display: dict) -> str:
    body = item({"device_id": "kiosk-a", "checkpoint_id": "CP"}, display=display)
    row = schema.scan_row({**body, "time_source": None}, digest=n, event_time=n,
                          basis="received", received_us=n, checkpoint=1, device=1,
                          posted_by=None)
    columns = schema.M006_COLUMNS
    values = list(row[:len(columns)])
    values[columns.index("display")] = json.dumps(display)  # as the old ingest stored it
    db.execute("INSERT INTO scans (" + ", ".join(columns) + ") VALUES ("
               + ", ".join("?" * len(columns)) + ")", values)
    return body["id"]


def _seed(db) -> None:
    db.execute("INSERT INTO checkpoints (id, name, created_at, num) "
               "VALUES ('CP', 'cp', '2021-01-01T00:00:00Z', 1)")
    db.execute("INSERT INTO devices (id, checkpoint_id, token_hash, enrolled_at, num) "
               "VALUES ('kiosk-a', 'CP', 'h', '2021-01-01T00:00:00Z', 1)")


def test_the_central_migration_moves_display_officer_sqlite(tmp_path):
    path = tmp_path / "old.db"
    db = central_db.connect(path, migrate=False)
    central_db.migrations.apply(Database(db.conn), stop_before="m008_people")
    _seed(db)
    both = _old_row(db, 1, {"name": "N***", "officer": "hn-017"})
    only = _old_row(db, 2, {"officer": "hn-021"})
    none = _old_row(db, 3, {"name": "N***"})
    db.conn.commit()
    db.close()
    _check_moved(path, both, only, none)
    with central_db.connect(path) as db:  # the old-shape view for technicians' tools
        body = json.loads(db.execute("SELECT body FROM checkins WHERE id = ?",
                                     [both]).fetchone()[0])
    assert body["officer"] == "hn-017" and body["display"] == {"name": "N***"}


def test_the_central_migration_moves_display_officer_postgresql(pg_url):
    from offline_queue.central.backend import open_postgres

    db = open_postgres(pg_url)
    db.executescript(schema._pg_ddl())
    for version in (2, 3, 4):
        db.executescript(schema.PG_MIGRATIONS[version])
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (4)")
    _seed(db)
    both = _old_row(db, 1, {"name": "N***", "officer": "hn-017"})
    only = _old_row(db, 2, {"officer": "hn-021"})
    none = _old_row(db, 3, {"name": "N***"})
    db.close()
    _check_moved(pg_url, both, only, none)


def _check_moved(target, both, only, none) -> None:
    with central_db.connect(target) as db:
        got = {str(r[0]): (r[1], json.loads(r[2]) if r[2] else None)
               for r in db.execute("SELECT id, officer, display FROM scans")}
    assert got[both] == ("hn-017", {"name": "N***"})
    assert got[only] == ("hn-021", None)
    assert got[none] == (None, {"name": "N***"})


def test_an_override_records_its_officer_in_the_field(tmp_path):
    from test_ui_loop import build_kit

    from kiosk.domain.model import Outcome

    with build_kit(tmp_path) as kit:
        first = kit.loop.process(
            "001085067890||Đỗ Thị Lan|09091985|Nữ|Sóc Sơn, Hà Nội|01072021")
        done = kit.loop.override(first.checkin_id, Outcome.PASS, "seen the card", "hn-017")
        row = kit.row(done.checkin_id)
    assert row["officer"] == "hn-017"
    assert "officer" not in json.loads(row["display"])
