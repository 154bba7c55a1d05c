"""``queue stats`` and ``export`` on a real kiosk database."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from click.testing import CliRunner

from kiosk.cli import cli
from offline_queue.clock import Clock
from offline_queue.export import neutralise
from offline_queue.records import CheckIn
from offline_queue.store import Store


def make_db(tmp_path):
    wall = [datetime(2021, 9, 20, 3, 0, tzinfo=UTC)]
    clock = Clock(wall=lambda: wall[0], synced=lambda: True, boot_id="b")
    path = tmp_path / "k.db"
    with Store(path, device_id="d", checkpoint_id="c", clock=clock) as store:
        store.record(CheckIn(direction="in", kind="cccd", person_key="001085012345",
                             display={"name": "=HYPERLINK(\"http://x\")"}, decision="pass"))
        wall[0] = datetime(2021, 9, 22, 3, 0, tzinfo=UTC)
        store.record(CheckIn(direction="out", kind="bhyt", person_key="DN4797912345678",
                             display={"name": "N***"}, decision="check",
                             reasons=("-1+1", "@x")))
    return path


def test_neutralise_formula_starts():
    for bad in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(bad) == "'" + bad
    assert neutralise("Trần") == "Trần" and neutralise(None) == ""


def test_export_csv_range_is_neutralised_and_has_no_person_keys(tmp_path):
    path = make_db(tmp_path)
    result = CliRunner().invoke(cli, ["export", "--db", str(path), "--since",
                                      "2021-09-20T00:00+00:00", "--until", "2021-09-21T00:00Z"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert len(rows) == 1 and rows[0]["direction"] == "in"
    assert "001085012345" not in result.output
    everything = CliRunner().invoke(cli, ["export", "--db", str(path), "--since", "2021-01-01",
                                          "--until", "2022-01-01", "--format", "jsonl"])
    items = [json.loads(line) for line in everything.output.splitlines()]
    assert [i["kind"] for i in items] == ["cccd", "bhyt"]
    assert items[1]["reasons"] == ["-1+1", "@x"]


def test_export_csv_cells_that_start_like_formulas(tmp_path):
    path = make_db(tmp_path)
    out = CliRunner().invoke(cli, ["export", "--db", str(path), "--since", "2021-01-01",
                                   "--until", "2022-01-01"]).output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[1]["reasons"] == "'-1+1;@x"
    for row in csv.reader(io.StringIO(out)):
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_export_bad_date_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["export", "--db", str(make_db(tmp_path)), "--since",
                                      "yesterday", "--until", "2022-01-01"])
    assert result.exit_code == 2 and "'yesterday' is not an ISO date" in result.output


def test_queue_stats_json(tmp_path):
    result = CliRunner().invoke(cli, ["queue", "stats", "--db", str(make_db(tmp_path))])
    stats = json.loads(result.output)
    assert stats["pending"] == 2 and stats["in_flight"] == 0 and stats["sent"] == 0
    assert {"rejected", "oldest_pending_age_s", "db_size_bytes"} <= set(stats)
