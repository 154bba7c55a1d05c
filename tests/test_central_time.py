"""Issue 9 #16 (central side): device time, corrected time and how it was corrected are
stored per check-in; the report time says which one it used; responses carry server_time."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import requests

from offline_queue import wire
from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer
from offline_queue.clock import parse_iso
from tests.central_helpers import enrol, item, post, statuses


@pytest.fixture
def server(tmp_path):
    with CentralServer(tmp_path / "c.db", admin_token="adm") as s:
        yield s


def stored(tmp_path, checkin_id: str) -> dict:
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM checkins WHERE id = ?", [checkin_id]).fetchone()
    conn.close()
    return dict(row)


def test_unsynced_row_of_an_earlier_boot_keeps_its_device_time(server, tmp_path):
    """Three days without NTP: the report must not move the check-in to the receive day."""
    device = enrol(server, tmp_path / "c.db")
    three_days_ago = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    a = item(device, recorded_at=three_days_ago, clock_synced=False, time_source="none")
    assert statuses(post(server, device, [a])) == ["accepted"]
    row = stored(tmp_path, a["id"])
    assert row["recorded_at"] == three_days_ago
    assert row["corrected_at"] is None and row["time_source"] == "none"
    assert row["time_basis"] == "device_unsynced"
    assert parse_iso(row["event_time"]) == parse_iso(three_days_ago)


def test_implausible_device_time_falls_back_to_receive_time_and_says_so(server, tmp_path):
    device = enrol(server, tmp_path / "c.db")
    a = item(device, recorded_at="1970-01-01T00:00:42Z", clock_synced=False)
    b = item(device, recorded_at=(datetime.now(UTC) + timedelta(days=400)).isoformat(),
             clock_synced=True)
    assert statuses(post(server, device, [a, b])) == ["accepted", "accepted"]
    for x in (a, b):
        row = stored(tmp_path, x["id"])
        assert row["time_basis"] == "received"
        assert row["event_time"] == row["received_at"]
        assert row["recorded_at"] == x["recorded_at"]  # the device time is still kept


def test_corrected_time_wins_and_a_resend_with_a_new_correction_is_a_duplicate(
    server, tmp_path
):
    device = enrol(server, tmp_path / "c.db")
    wrong = "2021-01-01T00:00:00+00:00"
    a = item(device, recorded_at=wrong, clock_synced=False)
    assert statuses(post(server, device, [a])) == ["accepted"]
    assert stored(tmp_path, a["id"])["time_basis"] == "device_unsynced"
    fixed = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    resend = dict(a, corrected_at=fixed, time_source="central")
    assert wire.content_hash(resend) == wire.content_hash(a)
    assert statuses(post(server, device, [resend])) == ["duplicate"]
    row = stored(tmp_path, a["id"])
    assert (row["corrected_at"], row["time_source"], row["time_basis"]) == (
        fixed, "central", "corrected")
    assert parse_iso(row["event_time"]) == parse_iso(fixed)
    # A later NTP correction is better than one from the central's clock: it replaces it.
    ntp = (datetime.now(UTC) - timedelta(hours=2, seconds=3)).isoformat()
    assert statuses(post(server, device, [dict(a, corrected_at=ntp, time_source="ntp")])) \
        == ["duplicate"]
    row = stored(tmp_path, a["id"])
    assert (row["corrected_at"], row["time_source"]) == (ntp, "ntp")
    # ...but a worse one never replaces a better one.
    post(server, device, [dict(a, corrected_at=fixed, time_source="central")])
    assert stored(tmp_path, a["id"])["corrected_at"] == ntp


def test_synced_row_uses_its_device_time(server, tmp_path):
    device = enrol(server, tmp_path / "c.db")
    a = item(device, time_source="ntp")
    post(server, device, [a])
    row = stored(tmp_path, a["id"])
    assert (row["time_basis"], row["time_source"]) == ("device_synced", "ntp")


def test_report_counts_an_old_unsynced_row_on_its_device_day(server, tmp_path):
    device = enrol(server, tmp_path / "c.db")
    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    post(server, device, [item(device, recorded_at=ten_days_ago, clock_synced=False)])
    report = requests.get(server.url + "/v1/report/scans", params={"days": 7}, timeout=5,
                          headers={"Authorization": "Bearer adm"}).json()
    assert report["checkpoints"][0]["scans"] == 0


def assert_server_time(value: str) -> None:
    assert value.endswith("Z") or value.endswith("+00:00")
    assert abs(parse_iso(value) - datetime.now(UTC)) < timedelta(seconds=30)


def test_checkins_and_health_carry_server_time(server, tmp_path):
    device = enrol(server, tmp_path / "c.db")
    answer = post(server, device, [item(device)])
    assert_server_time(answer.json()["server_time"])
    assert "Date" in answer.headers
    assert_server_time(requests.get(server.url + "/v1/health", timeout=5).json()["server_time"])


def test_an_old_database_is_migrated_and_its_rows_get_a_time_basis(tmp_path):
    path = tmp_path / "old.db"
    db = central_db.connect(path, migrate=False)
    central_db.migrations.apply(db, stop_before="m002_time_basis")
    db.execute("INSERT INTO checkpoints VALUES ('CP', 'cp', '2021-01-01T00:00:00Z')")
    for n, (synced, corrected) in enumerate(((1, None), (0, None),
                                              (0, "2021-09-20T10:00:00Z"))):
        body = {"recorded_at": f"2021-09-2{n}T08:00:00Z"}
        db.execute(
            "INSERT INTO checkins (id, device_id, checkpoint_id, content_hash, body, "
            "event_time, clock_synced, corrected_at, received_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [f"id{n}", "kiosk-a", "CP", "h", __import__("json").dumps(body),
             "2021-09-25T00:00:00Z", synced, corrected, "2021-09-25T00:00:00Z"],
        )
    db.conn.commit()
    db.close()
    with central_db.connect(path) as db:
        rows = db.execute(
            "SELECT id, recorded_at, time_basis FROM checkins ORDER BY id").fetchall()
    assert rows == [("id0", "2021-09-20T08:00:00Z", "device_synced"),
                    ("id1", "2021-09-21T08:00:00Z", "received"),
                    ("id2", "2021-09-22T08:00:00Z", "corrected")]


def test_export_shows_the_stored_correction_and_time_basis(server, tmp_path):
    device = enrol(server, tmp_path / "c.db")
    a = item(device, recorded_at="2021-01-01T00:00:00Z", clock_synced=False)
    post(server, device, [a])
    fixed = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    post(server, device, [dict(a, corrected_at=fixed, time_source="ntp")])
    with central_db.connect(tmp_path / "c.db") as conn:
        (exported,) = list(central_db.export_checkins(conn))
    assert (exported["corrected_at"], exported["time_source"], exported["time_basis"],
            exported["posted_by"]) == (fixed, "ntp", "corrected", device["device_id"])
