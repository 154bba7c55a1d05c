"""Issue 9 #16 (central side): device time, corrected time and how it was corrected are
stored per check-in; the report time says which one it used; responses carry server_time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from offline_queue import wire
from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer
from offline_queue.clock import parse_iso
from tests.central_helpers import enrol, item, post, statuses


@pytest.fixture
def server(tmp_path, db_target):
    with CentralServer(db_target, admin_token="adm") as s:
        yield s


def stored(target, checkin_id: str) -> dict:
    """The row as the central keeps it (export form: times in ISO text)."""
    with central_db.connect(target) as conn:
        (row,) = [r for r in central_db.export_checkins(conn) if r["id"] == checkin_id]
    return row


def test_unsynced_row_of_an_earlier_boot_keeps_its_device_time(server, tmp_path, db_target):
    """Three days without NTP: the report must not move the check-in to the receive day."""
    device = enrol(server, db_target)
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    a = item(device, recorded_at=three_days_ago, clock_synced=False, time_source="none")
    assert statuses(post(server, device, [a])) == ["accepted"]
    row = stored(db_target, a["id"])
    assert parse_iso(row["recorded_at"]) == parse_iso(three_days_ago)
    assert row["corrected_at"] is None and row["time_source"] == "none"
    assert row["time_basis"] == "device_unsynced"
    assert parse_iso(row["event_time"]) == parse_iso(three_days_ago)


def test_implausible_device_time_falls_back_to_receive_time_and_says_so(
    server, tmp_path, db_target):
    device = enrol(server, db_target)
    a = item(device, recorded_at="1970-01-01T00:00:42Z", clock_synced=False)
    b = item(device, recorded_at=(datetime.now(UTC) + timedelta(days=400)).isoformat(),
             clock_synced=True)
    assert statuses(post(server, device, [a, b])) == ["accepted", "accepted"]
    for x in (a, b):
        row = stored(db_target, x["id"])
        assert row["time_basis"] == "received"
        assert row["event_time"] == row["received_at"]
        # the device time is still kept
        assert parse_iso(row["recorded_at"]) == parse_iso(x["recorded_at"])


def test_corrected_time_wins_and_a_resend_with_a_new_correction_is_a_duplicate(
    server, tmp_path, db_target):
    device = enrol(server, db_target)
    wrong = "2021-01-01T00:00:00+00:00"
    a = item(device, recorded_at=wrong, clock_synced=False)
    assert statuses(post(server, device, [a])) == ["accepted"]
    assert stored(db_target, a["id"])["time_basis"] == "device_unsynced"
    fixed = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    resend = dict(a, corrected_at=fixed, time_source="central")
    assert wire.content_hash(resend) == wire.content_hash(a)
    assert statuses(post(server, device, [resend])) == ["duplicate"]
    row = stored(db_target, a["id"])
    assert (parse_iso(row["corrected_at"]), row["time_source"], row["time_basis"]) == (
        parse_iso(fixed), "central", "corrected")
    assert parse_iso(row["event_time"]) == parse_iso(fixed)
    # A later NTP correction is better than one from the central's clock: it replaces it.
    ntp = (datetime.now(UTC) - timedelta(hours=2, seconds=3)).isoformat()
    assert statuses(post(server, device, [dict(a, corrected_at=ntp, time_source="ntp")])) \
        == ["duplicate"]
    row = stored(db_target, a["id"])
    assert (parse_iso(row["corrected_at"]), row["time_source"]) == (parse_iso(ntp), "ntp")
    # ...but a worse one never replaces a better one.
    post(server, device, [dict(a, corrected_at=fixed, time_source="central")])
    assert parse_iso(stored(db_target, a["id"])["corrected_at"]) == parse_iso(ntp)


def test_synced_row_uses_its_device_time(server, tmp_path, db_target):
    device = enrol(server, db_target)
    a = item(device, time_source="ntp")
    post(server, device, [a])
    row = stored(db_target, a["id"])
    assert (row["time_basis"], row["time_source"]) == ("device_synced", "ntp")


def test_report_counts_an_old_unsynced_row_on_its_device_day(server, tmp_path, db_target):
    device = enrol(server, db_target)
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    post(server, device, [item(device, recorded_at=ten_days_ago, clock_synced=False)])
    report = requests.get(server.url + "/v1/report/scans", params={"days": 7}, timeout=5,
                          headers={"Authorization": "Bearer adm"}).json()
    assert report["checkpoints"][0]["scans"] == 0


def assert_server_time(value: str) -> None:
    assert value.endswith("Z") or value.endswith("+00:00")
    assert abs(parse_iso(value) - datetime.now(UTC)) < timedelta(seconds=30)


def test_checkins_and_health_carry_server_time(server, tmp_path, db_target):
    device = enrol(server, db_target)
    answer = post(server, device, [item(device)])
    assert_server_time(answer.json()["server_time"])
    assert "Date" in answer.headers
    assert_server_time(requests.get(server.url + "/v1/health", timeout=5).json()["server_time"])


def test_an_old_database_is_migrated_and_its_rows_get_a_time_basis(tmp_path):
    """A database of the m001 schema (one JSON body per row) keeps its rows through
    m002-m004: time basis, then the narrow ``scans`` table and the daily counts."""
    from sqlite_utils import Database

    path = tmp_path / "old.db"
    db = central_db.connect(path, migrate=False)
    central_db.migrations.apply(Database(db.conn), stop_before="m002_time_basis")
    db.execute("INSERT INTO checkpoints VALUES ('CP', 'cp', '2021-01-01T00:00:00Z')")
    db.execute("INSERT INTO devices VALUES ('kiosk-a', 'CP', 'h', '2021-01-01T00:00:00Z', 0)")
    device = {"device_id": "kiosk-a", "checkpoint_id": "CP"}
    ids = []
    for n, (synced, corrected) in enumerate(((1, None), (0, None),
                                              (0, "2021-09-20T10:00:00.000000Z"))):
        body = item(device, recorded_at=f"2021-09-2{n}T08:00:00Z", clock_synced=bool(synced))
        ids.append(body["id"])
        db.execute(
            "INSERT INTO checkins (id, device_id, checkpoint_id, content_hash, body, "
            "event_time, clock_synced, corrected_at, received_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [body["id"], "kiosk-a", "CP", wire.content_hash(body),
             __import__("json").dumps(body), "2021-09-25T00:00:00Z", synced, corrected,
             "2021-09-25T00:00:00Z"],
        )
    db.conn.commit()
    db.close()
    with central_db.connect(path) as db:
        rows = {r[0]: r[1:] for r in db.execute(
            "SELECT id, recorded_at, time_basis, posted_by FROM checkins").fetchall()}
        counts = db.execute("SELECT sum(scans) FROM daily_counts").fetchone()[0]
    assert [rows[i] for i in ids] == [
        ("2021-09-20T08:00:00.000000Z", "device_synced", "kiosk-a"),
        ("2021-09-21T08:00:00.000000Z", "received", "kiosk-a"),
        ("2021-09-22T08:00:00.000000Z", "corrected", "kiosk-a")]
    assert counts == 3
    # The body survives as far as the central keeps it (the view rebuilds it).
    with central_db.connect(path) as db:
        body = db.execute("SELECT body FROM checkins WHERE id = ?", [ids[0]]).fetchone()[0]
    assert __import__("json").loads(body)["person_key"] == "001085012345"


def test_export_shows_the_stored_correction_and_time_basis(server, tmp_path, db_target):
    device = enrol(server, db_target)
    a = item(device, recorded_at="2021-01-01T00:00:00Z", clock_synced=False)
    post(server, device, [a])
    fixed = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    post(server, device, [dict(a, corrected_at=fixed, time_source="ntp")])
    with central_db.connect(db_target) as conn:
        (exported,) = list(central_db.export_checkins(conn))
    assert (parse_iso(exported["corrected_at"]), exported["time_source"],
            exported["time_basis"], exported["posted_by"]) == (
        parse_iso(fixed), "ntp", "corrected", device["device_id"])
