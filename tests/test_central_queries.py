"""Issue 12: the activity report, tracing, retention, the report command and the size of
a check-in, on SQLite and on a real PostgreSQL (``db_target``)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from kiosk.cli import cli
from offline_queue.central import db as central_db
from offline_queue.central import queries, render
from offline_queue.records import uuid7

NOW = datetime(2026, 3, 10, 5, 0, tzinfo=UTC)  # 12:00 in Vietnam


def device_at(conn, checkpoint: str, name: str | None = None) -> central_db.Device:
    token = central_db.create_enrolment_token(conn, checkpoint_id=checkpoint,
                                              name=name or checkpoint)
    device, _ = central_db.enrol(conn, token)
    return device


def row(device, when: datetime, person: str | None = "001085012345", **kw) -> dict:
    base = {
        "id": uuid7(),  # what kiosks send: time-ordered ids
        "device_id": device.id, "checkpoint_id": device.checkpoint_id,
        "direction": "in", "kind": "cccd", "person_key": person,
        "display": {"name": "N***"}, "decision": "pass", "reasons": [], "source": "scan",
        "override_of": None, "original_decision": None, "override_reason": None,
        "recorded_at": when.isoformat(), "monotonic_ns": 1, "boot_id": "b",
        "clock_synced": True, "corrected_at": None, "app_version": "0.1.0",
    }
    base.update(kw)
    return base


@pytest.fixture
def conn(db_target):
    with central_db.connect(db_target) as c:
        yield c


def test_activity_report_counts_local_days_and_names_the_silent_checkpoints(conn):
    busy, quiet = device_at(conn, "CB-01", "Tà Lùng"), device_at(conn, "CB-02")
    # 23:30 UTC on 8 March is 06:30 on 9 March in Vietnam: counted on the 9th.
    rows = [row(busy, datetime(2026, 3, 8, 23, 30, tzinfo=UTC)),
            row(busy, datetime(2026, 3, 10, 1, 0, tzinfo=UTC)),
            row(busy, datetime(2026, 3, 10, 2, 0, tzinfo=UTC)),
            row(busy, NOW - timedelta(days=8))]  # before the window
    results = central_db.ingest(conn, busy, rows, now=NOW)
    assert [r["status"] for r in results] == ["accepted"] * 4
    # A resend counts nothing twice.
    central_db.ingest(conn, busy, rows[:2], now=NOW)
    report = queries.activity_report(conn, days=7, now=NOW)
    assert report["dates"][-3:] == ["2026-03-08", "2026-03-09", "2026-03-10"]
    by_id = {c["id"]: c for c in report["checkpoints"]}
    assert by_id["CB-01"]["per_day"][-3:] == [0, 1, 2] and by_id["CB-01"]["scans"] == 3
    assert by_id["CB-02"]["scans"] == 0
    assert report["without_scans"] == ["CB-02"] and report["active_checkpoints"] == 1
    assert report["scans_per_day"][-1] == 2
    del quiet


def test_person_trace_window_and_contacts(conn):
    a, b = device_at(conn, "CB-01"), device_at(conn, "CB-02")
    case, other, far = "001085000001", "001085000002", "001085000003"
    visit = NOW - timedelta(days=2)
    central_db.ingest(conn, a, [
        row(a, visit, case), row(a, visit + timedelta(minutes=10), other),
        row(a, visit + timedelta(minutes=50), far),
        row(a, NOW - timedelta(days=20), case),  # outside a 14-day trace
        row(a, visit + timedelta(minutes=5), None, kind="unknown"),
    ], now=NOW)
    central_db.ingest(conn, b, [row(b, visit + timedelta(minutes=1), other)], now=NOW)

    trace = queries.trace_person(conn, f"  {case} ", days=14, now=NOW)
    assert [c["checkpoint_id"] for c in trace["checkins"]] == ["CB-01"]
    assert trace["checkins"][0]["decision"] == "pass"
    oldest = NOW - timedelta(days=20)
    assert trace["coverage"]["data_since"] == f"{oldest:%Y-%m-%dT%H:%M:%S}.000000Z"
    assert queries.trace_person(conn, "079999999999", now=NOW)["checkins"] == []

    window = queries.passed_checkpoint(conn, "CB-01", visit - timedelta(minutes=1),
                                       visit + timedelta(hours=1), now=NOW)
    assert [c["person_key"] for c in window["checkins"]] == [case, None, other, far]
    assert queries.passed_checkpoint(conn, "NOPE", visit, visit, now=NOW)["checkins"] == []
    with pytest.raises(ValueError, match="at most 7 days"):
        queries.passed_checkpoint(conn, "CB-01", visit, visit + timedelta(days=8))

    near = queries.contacts(conn, case, days=14, minutes=15, now=NOW)
    assert near["people"] == [other]  # same checkpoint within 15 min; not CB-02, not 50 min
    assert len(near["visits"]) == 1


def test_retention_deletes_old_checkins_keeps_counts_and_says_how_far_back(conn, caplog):
    d = device_at(conn, "CB-01")
    old = row(d, NOW - timedelta(days=31), "001085000009")
    central_db.ingest(conn, d, [old, row(d, NOW - timedelta(days=29))], now=NOW)
    caplog.set_level("INFO")
    done = queries.apply_retention(conn, days=30, now=NOW)
    assert done["deleted"] == 1
    assert "deleted 1 check-ins" in caplog.text and "001085000009" not in caplog.text
    assert queries.trace_person(conn, "001085000009", days=60, now=NOW)["checkins"] == []
    cover = queries.coverage(conn, now=NOW)
    assert cover["retention_days"] == 30
    assert cover["deleted_before"] == cover["data_since"] == "2026-02-08T05:00:00.000000Z"
    assert queries.activity_report(conn, days=60, now=NOW)["checkpoints"][0]["scans"] == 2
    # A resend of a deleted row is stored again (it is a new check-in to the central).
    assert central_db.ingest(conn, d, [old], now=NOW)[0]["status"] == "accepted"


def test_report_command_csv_neutralises_formulas_and_html_escapes(db_target, tmp_path):
    with central_db.connect(db_target) as conn:
        d = device_at(conn, "=HYPERLINK(\"x\")", "<script>alert(1)</script>")
        central_db.ingest(conn, d, [row(d, datetime.now(UTC))])
    runner = CliRunner()
    base = ["central", "--db", str(db_target), "report", "--days", "7"]
    out = runner.invoke(cli, base + ["--format", "csv"])
    assert out.exit_code == 0, out.output
    cells = list(csv.reader(io.StringIO(out.output)))
    assert cells[1][0] == "'=HYPERLINK(\"x\")" and cells[1][2] == "1"
    page = tmp_path / "week.html"
    assert runner.invoke(cli, base + ["--format", "html", "-o", str(page)]).exit_code == 0
    text = page.read_text(encoding="utf-8")
    assert "<script>" not in text and "&lt;script&gt;" in text
    data = json.loads(runner.invoke(cli, base + ["--format", "json"]).output)
    assert data["checkpoints"][0]["scans"] == 1
    done = runner.invoke(cli, ["central", "--db", str(db_target), "retention", "--days", "30"])
    assert done.exit_code == 0 and "deleted 0 check-ins" in done.output


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\t=x"])
def test_every_formula_start_is_neutralised(value):
    assert render.safe_cell(value) == "'" + value


def test_a_checkin_costs_at_most_250_bytes_on_disk(pg_url):
    """The issue's target, on PostgreSQL with every index (20,000 rows)."""
    with central_db.connect(pg_url) as conn:
        devices = [device_at(conn, f"CB-{i:02d}") for i in range(20)]
        start = NOW - timedelta(days=20)
        for n, d in enumerate(devices):
            rows = [row(d, start + timedelta(minutes=j), f"0010{n:02d}{j:06d}",
                        reasons=["ok"]) for j in range(1000)]
            central_db.ingest(conn, d, rows, now=NOW)
        conn.execute("VACUUM ANALYZE scans")
        size = conn.execute("SELECT pg_total_relation_size('scans')").fetchone()[0]
    assert size / 20_000 <= 250, f"{size / 20_000:.0f} bytes a check-in"
