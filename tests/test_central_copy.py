"""`checkpoint-kiosk central copy`: a SQLite central moved to a real PostgreSQL.

A hospital's central (real SQLite, filled through the real HTTP API, the kiosk's real
sync and the dashboard) is copied; the PostgreSQL central then answers the same report,
trace and dashboard login, and the same kiosk syncs on against it with its token (a
resent check-in is not stored twice).  A non-empty target is refused; a row changed in
the target after the copy is found by the verification; an older source is refused."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlite_utils import Database

from kiosk.cli import cli
from kiosk.domain.documents import VALIDATORS
from kiosk.domain.watchlist import Watchlist
from offline_queue.central import db as central_db
from offline_queue.central import queries, schema, transfer
from offline_queue.central.app import create_app
from offline_queue.central.dashboard.users import add_user
from offline_queue.central.keys import KeyFile
from offline_queue.central.server import CentralServer
from offline_queue.store import Store
from offline_queue.sync import sync_once
from tests.central_helpers import enrol, item, post, statuses
from tests.test_dashboard import csrf_of, logged_in, login
from tests.test_sync import entry

PASSWORD = "correct horse battery"
ADMIN = "admin-token-for-the-test"


def listing(*numbers: str) -> bytes:
    return Watchlist.build([(n, date(2099, 1, 1)) for n in numbers],
                           valid_for=timedelta(days=30))


def copy_cli(*args: str):
    return CliRunner().invoke(cli, ["central", "copy", *args], catch_exceptions=False)


class Hospital:
    """A SQLite central with a bit of everything, and its kiosk."""

    def __init__(self, tmp_path) -> None:
        self.db = tmp_path / "central.db"
        self.key_path = tmp_path / "central.key"
        self.kiosk_db = tmp_path / "kiosk.db"
        with CentralServer(self.db, validators=VALIDATORS, admin_token=ADMIN,
                           signing_key=KeyFile(self.key_path)) as server:
            self.device = enrol(server, self.db, "CP-MOVE")
            self.pin = self.device["central_key"]["public_key"]
            # The kiosk: 30 check-ins through its store and its real sync (sealed once it
            # has the central's sealing key).
            with Store(self.kiosk_db, device_id=self.device["device_id"],
                       checkpoint_id=self.device["checkpoint_id"]) as store:
                self.kiosk_ids = [store.record(entry(i)) for i in range(30)]
            result = self.sync(server.url)
            assert result.ok, result.error
            # A kiosk re-enrolled (the old one revoked, linked), a conflict, a spare token.
            old = enrol(server, self.db, "CP-GATE")
            assert statuses(post(server, old, [item(old) for _ in range(3)])) == \
                ["accepted"] * 3
            with central_db.connect(self.db) as conn:
                assert central_db.revoke_device(conn, old["device_id"])
            new = enrol(server, self.db, "CP-GATE", previous_device_ids=[old["device_id"]])
            same = item(new)
            # What COPY's text format escapes: tab, newline, backslash; and Vietnamese.
            odd = item(new, display={"name": "Tab\there\nnewline \\N back\\slash Đặng"},
                       reasons=["a\tb", "\\."], source="manual", decision="check",
                       person_key="001085000004")
            assert statuses(post(server, new, [same, odd])) == ["accepted"] * 2
            assert statuses(post(server, new, [same | {"decision": "stop"}])) == ["conflict"]
            self.new = new
        with central_db.connect(self.db) as conn:
            self.spare_token = central_db.create_enrolment_token(
                conn, checkpoint_id="CP-LATER", name="Later")
            central_db.set_document(conn, "watchlist", listing("001085000001"),
                                    validators=VALIDATORS)
            central_db.set_document(conn, "watchlist", listing("001085000002"),
                                    validators=VALIDATORS)
            conn.execute("UPDATE checkpoints SET district = 'Cao Lộc', commune = 'Đồng Đăng' "
                         "WHERE id = 'CP-MOVE'")
            conn.commit()
            add_user(conn, "olga", "official", PASSWORD)
            add_user(conn, "ada", "administrator", PASSWORD)
            # A row whose sealed identity could not be opened (what ingest keeps aside).
            (num,) = conn.one("SELECT num FROM devices WHERE id = ?",
                              [self.device["device_id"]])
            conn.execute("INSERT INTO unopened VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [num, "0190aaaa-0000-7000-8000-000000000001",
                          self.device["device_id"], "k-lost", "unknown key", "{}",
                          "2026-01-01T00:00:00.000000Z"])
            queries.apply_retention(conn, days=3650)
            conn.commit()
        # A trace in the dashboard: an audit row, and a session (not copied).
        app = create_app(self.db, validators=VALIDATORS)
        try:
            olga = logged_in(app, "olga")
            answer = olga.post("/dashboard/trace/person", data={
                "identifier": "001085000003", "csrf_token": olga.csrf})
            assert answer.status_code == 200
        finally:
            app.extensions["checkpoint_kiosk_close"]()

    def sync(self, url: str):
        return sync_once(db_path=self.kiosk_db, server_url=url,
                         token=self.device["device_token"], validators=VALIDATORS,
                         central_key=self.pin)


@pytest.fixture
def hospital(tmp_path):
    return Hospital(tmp_path)


def answers(target, now) -> dict:
    """What the central answers: the report, a trace, the audit log, users, devices."""
    with central_db.connect(target) as conn:
        return {
            "report": central_db.scans_report(conn, days=7, now=now),
            "trace": queries.trace_person(conn, "001085000003", now=now),
            "audit": [(r[0], r[1], r[2]) for r in conn.execute(
                "SELECT seq, username, action FROM audit_log ORDER BY seq")],
            "users": conn.execute("SELECT id, username, password_hash FROM dashboard_users "
                                  "ORDER BY id").fetchall(),
            "devices": conn.execute("SELECT id, num, revoked, token_hash, backlog FROM "
                                    "devices ORDER BY num").fetchall(),
            "documents": conn.execute("SELECT name, etag, version, body FROM documents"
                                      ).fetchall(),
            "export": sorted(central_db.export_checkins(conn), key=lambda r: r["id"]),
        }


def test_a_hospital_central_moves_to_postgresql_and_the_kiosk_syncs_on(
        hospital, pg_url, tmp_path):
    now = central_db.now_utc()
    before = answers(hospital.db, now)
    assert len(before["export"]) == 30 + 3 + 2
    result = copy_cli("--from", str(hospital.db), "--to", pg_url,
                      "--key-file", str(hospital.key_path))
    assert result.exit_code == 0, result.output
    fingerprint = KeyFile(hospital.key_path).fingerprint
    assert f"fingerprint {fingerprint}" in result.output
    assert "scans: copied 35 rows" in result.output
    assert "dashboard_sessions: not copied" in result.output
    assert "copied and verified: 14 tables equal" in result.output
    # The source was only read.
    with sqlite3.connect(hospital.db) as conn:
        assert conn.execute("SELECT count(*) FROM dashboard_sessions").fetchone()[0] == 1

    after = answers(pg_url, now)
    assert after == before
    with central_db.connect(pg_url) as conn:
        assert conn.one("SELECT count(*) FROM dashboard_sessions")[0] == 0
        assert conn.one("SELECT district, commune FROM checkpoints WHERE id = 'CP-MOVE'") == \
            ("Cao Lộc", "Đồng Đăng")
        assert conn.one("SELECT count(*) FROM unopened")[0] == 1
        assert conn.one("SELECT count(*) FROM conflicts")[0] == 1
        assert conn.one("SELECT count(*) FROM device_links")[0] == 1
        # New rows take numbers past the copied ones (identity columns' sequences).
        device, _ = central_db.enrol(conn, hospital.spare_token)  # the spare token works
        nums = [r[0] for r in conn.execute("SELECT num FROM devices ORDER BY num")]
        assert nums == sorted(set(nums)) and nums[-1] == len(nums)
        assert add_user(conn, "vic", "viewer", PASSWORD).id == 3

    # The dashboard on PostgreSQL: the same login; the trace, audited after the copied rows.
    app = create_app(pg_url, validators=VALIDATORS)
    try:
        _, refused = login(app, "olga", "wrong password")
        assert refused.status_code != 303
        olga = logged_in(app, "olga")
        answer = olga.post("/dashboard/trace/person", data={
            "identifier": "001085000003", "csrf_token": olga.csrf})
        assert answer.status_code == 200 and "CP-MOVE" in answer.get_data(as_text=True)
        ada = logged_in(app, "ada")
        audit = ada.get("/dashboard/audit").get_data(as_text=True)
        assert audit.count("olga") >= 2
        assert csrf_of(ada.get("/dashboard/activity").data)
    finally:
        app.extensions["checkpoint_kiosk_close"]()

    # The same kiosk, same token and pinned key, against the PostgreSQL central: new
    # check-ins delivered, one already delivered sent again and not stored twice.
    with CentralServer(pg_url, validators=VALIDATORS,
                       signing_key=KeyFile(hospital.key_path)) as server:
        with Store(hospital.kiosk_db, device_id=hospital.device["device_id"],
                   checkpoint_id=hospital.device["checkpoint_id"]) as store:
            fresh = [store.record(entry(100 + i)) for i in range(5)]
        with sqlite3.connect(hospital.kiosk_db) as kiosk:
            assert kiosk.execute("SELECT count(*) FROM checkins WHERE identity = 'sealed'"
                                 ).fetchone()[0] == 35
        with sqlite3.connect(hospital.kiosk_db) as kiosk:
            kiosk.execute("UPDATE checkins SET state = 'pending', sent_at = NULL WHERE id = ?",
                          [hospital.kiosk_ids[0]])
        result = hospital.sync(server.url)
        assert result.ok, result.error
        with sqlite3.connect(hospital.kiosk_db) as kiosk:
            states = dict(kiosk.execute("SELECT id, state FROM checkins").fetchall())
        assert {states[i] for i in [*fresh, hospital.kiosk_ids[0]]} == {"sent"}
    with central_db.connect(pg_url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id::text FROM scans")]
        assert len(ids) == 35 + 5 and len(set(ids)) == len(ids)
        assert set(fresh) <= set(ids)
        # Sealed by the kiosk, opened with the carried key file: none kept aside.
        opened = conn.one("SELECT count(*) FROM scans WHERE id::text = ANY(?) AND "
                          "person_key IS NOT NULL", [fresh])[0]
        assert opened == 5 and conn.one("SELECT count(*) FROM unopened")[0] == 1
        (counted,) = conn.one("SELECT sum(scans) FROM daily_counts")
        assert counted == 40


def test_a_target_that_holds_check_ins_is_refused(hospital, pg_url):
    assert copy_cli("--from", str(hospital.db), "--to", pg_url).exit_code == 0
    again = copy_cli("--from", str(hospital.db), "--to", pg_url)
    assert again.exit_code == 1
    assert "already holds 35 check-ins (table scans)" in again.output
    with central_db.connect(pg_url) as conn:
        assert conn.one("SELECT count(*) FROM scans")[0] == 35


@pytest.mark.parametrize("change", [
    "UPDATE scans SET person_key = '001085099999' WHERE id = "
    "(SELECT id FROM scans ORDER BY id LIMIT 1)",
    "UPDATE scans SET id = gen_random_uuid() WHERE id = (SELECT id FROM scans ORDER BY id "
    "LIMIT 1)",
    "UPDATE devices SET revoked = 0",
    "UPDATE documents SET body = body || '\\x00'::bytea",
    "DELETE FROM audit_log",
    "UPDATE documents SET version = version + 1",
])
def test_a_changed_row_in_the_target_fails_the_verification(hospital, pg_url, change):
    assert copy_cli("--from", str(hospital.db), "--to", pg_url).exit_code == 0
    assert copy_cli("--from", str(hospital.db), "--to", pg_url,
                    "--verify-only").exit_code == 0
    with central_db.connect(pg_url) as conn:
        assert conn.execute(change).rowcount >= 1
    result = copy_cli("--from", str(hospital.db), "--to", pg_url, "--verify-only")
    assert result.exit_code == 1
    table = change.split()[1] if change.startswith("UPDATE") else change.split()[2]
    assert f"{table}: " in result.output and "MISMATCH" in result.output
    assert f"differs from {str(hospital.db)!r} in: {table}" in result.output
    report = transfer.verify(hospital.db, pg_url)
    assert [t.name for t in report.mismatches] == [table]


def test_an_older_source_is_refused_left_as_it_was_and_taken_once_migrated(tmp_path, pg_url):
    old = tmp_path / "old.db"
    schema.migrations.apply(Database(old), stop_before="m008_people")
    data = old.read_bytes()
    result = copy_cli("--from", str(old), "--to", pg_url)
    assert result.exit_code == 1
    assert "older schema (missing m008_people)" in result.output
    assert "report" in result.output
    assert old.read_bytes() == data
    with central_db.connect(pg_url) as conn:
        assert conn.one("SELECT count(*) FROM checkpoints")[0] == 0
    # What the message says to do, then the copy goes through.
    ran = CliRunner().invoke(cli, ["central", "--db", str(old), "report"])
    assert ran.exit_code == 0, ran.output
    assert copy_cli("--from", str(old), "--to", pg_url).exit_code == 0


def test_every_table_is_copied_or_dropped_with_a_reason(tmp_path, pg_url):
    with central_db.connect(tmp_path / "c.db") as conn:
        names = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    with central_db.connect(pg_url) as conn:
        names |= {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert names == set(transfer.TABLES) | set(transfer.DROPPED)


def test_the_keys_are_named_and_a_missing_key_file_stops_the_copy(hospital, pg_url, tmp_path):
    missing = copy_cli("--from", str(hospital.db), "--to", pg_url,
                       "--key-file", str(tmp_path / "elsewhere.key"))
    assert missing.exit_code == 1 and "no signing key at" in missing.output
    assert not (tmp_path / "elsewhere.key").exists()
    with central_db.connect(pg_url) as conn:
        assert conn.one("SELECT count(*) FROM scans")[0] == 0
    result = copy_cli("--from", str(hospital.db), "--to", pg_url)
    assert result.exit_code == 0, result.output
    assert "the keys are not in the database" in result.output
