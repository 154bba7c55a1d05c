"""Issue 9 #7 and #16: retention trusts only a known-right clock; without NTP the central's
clock corrects the times of this boot's rows, and every row says how its time was set."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

from offline_queue.clock import Clock, iso, parse_iso
from offline_queue.outbox import Outbox
from offline_queue.store import Store
from offline_queue.sync import sync_once
from tests import test_sync as base
from tests.synchelp import ScriptedServer, give_sealing_key
from tests.test_sync import entry, kiosk_store

central, enrolled = base.central, base.enrolled  # the same fixtures


def fake_clock(start: datetime, *, synced: bool = False, boot_id: str = "boot-now") -> Clock:
    """A wall clock that is wrong by a fixed amount but runs at the monotonic rate."""
    mono0 = time.monotonic_ns()
    return Clock(wall=lambda: start + timedelta(microseconds=(time.monotonic_ns() - mono0)
                                                // 1000),
                 synced=lambda: synced, boot_id=boot_id)


def raw(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def _delivered_rows(path, clock: Clock, n: int = 5) -> None:
    with Store(path, device_id="d", checkpoint_id="c", clock=clock) as store:
        for i in range(n):
            store.record(entry(i))
    with raw(path) as conn:
        conn.execute("UPDATE checkins SET state = 'sent'")


def test_a_clock_far_ahead_at_boot_purges_nothing(tmp_path):
    path = tmp_path / "k.db"
    _delivered_rows(path, Clock(synced=lambda: True, boot_id="yesterday"))
    ahead = fake_clock(datetime.now(UTC) + timedelta(days=400), synced=False)
    with Store(path, device_id="d", checkpoint_id="c", clock=ahead), Outbox(path) as outbox:
        assert outbox.purge(retention_days=30, clock=ahead) == 0
    assert raw(path).execute("SELECT count(*) FROM checkins").fetchone()[0] == 5


def test_a_synced_clock_earlier_than_the_newest_row_purges_nothing(tmp_path):
    path = tmp_path / "k.db"
    # Rows written while NTP said the time was 2031 (a bad time server, since fixed).
    _delivered_rows(path, fake_clock(datetime(2031, 1, 1, tzinfo=UTC), synced=True))
    with raw(path) as conn:  # plus old rows that retention would delete
        conn.execute("UPDATE checkins SET wall_time = '2020-01-01T00:00:00.000000Z' "
                     "WHERE seq <= 3")
    now = fake_clock(datetime.now(UTC), synced=True)
    with Store(path, device_id="d", checkpoint_id="c", clock=now), Outbox(path) as outbox:
        assert outbox.purge(retention_days=30, clock=now) == 0
    assert raw(path).execute("SELECT count(*) FROM checkins").fetchone()[0] == 5


def test_purge_runs_on_a_central_measurement_of_this_boot(tmp_path):
    path = tmp_path / "k.db"
    _delivered_rows(path, Clock(synced=lambda: True, boot_id="long-ago"), n=3)
    with raw(path) as conn:
        conn.execute("UPDATE checkins SET wall_time = ? WHERE seq = 1",
                     [iso(datetime.now(UTC) - timedelta(days=45))])
    # Unsynced and 2 days behind, but the central's clock was measured in this boot.
    behind = fake_clock(datetime.now(UTC) - timedelta(days=2), boot_id="this-boot")
    with Store(path, device_id="d", checkpoint_id="c", clock=behind), Outbox(path) as outbox:
        assert outbox.purge(retention_days=30, clock=behind) == 0  # not known right yet
        outbox.record_clock(clock=behind, server_time=datetime.now(UTC),
                            wall=behind.now(), mono_ns=behind.monotonic_ns(),
                            uncertainty_s=0.01, source="central")
        assert outbox.purge(retention_days=30, clock=behind) == 1
    assert raw(path).execute("SELECT count(*) FROM checkins").fetchone()[0] == 2


def test_central_clock_corrects_this_boots_rows_recorded_before_the_measurement(
    central, enrolled, tmp_path
):
    stale = fake_clock(datetime(2021, 1, 1, tzinfo=UTC), boot_id="boot-now")
    with kiosk_store(tmp_path, enrolled, stale) as store:
        before = store.record(entry(1))
        true_at_record = datetime.now(UTC)
        other_boot = store.record(entry(2))
        with raw(store.path) as conn:
            conn.execute("UPDATE checkins SET boot_id = 'boot-before' WHERE id = ?",
                         [other_boot])
        time.sleep(0.3)
        result = sync_once(db_path=store.path, server_url=central.url,
                           token=enrolled["device_token"], clock=stale)
        assert result.ok, result
        after = store.record(entry(3))
        assert sync_once(db_path=store.path, server_url=central.url,
                         token=enrolled["device_token"], clock=stale).ok
    rows = {r["id"]: r for r in raw(tmp_path / "kiosk.db").execute("SELECT * FROM checkins")}
    assert rows[before]["wall_time"].startswith("2021-01-01")  # device time kept
    corrected = parse_iso(rows[before]["corrected_time"])
    # The Date header has 1 s resolution: within 2 s of the true time.
    assert abs((corrected - true_at_record).total_seconds()) < 2.0, corrected
    assert rows[before]["time_source"] == "central"
    assert rows[after]["time_source"] == "central" and rows[after]["corrected_time"]
    assert rows[other_boot]["time_source"] == "none"
    assert rows[other_boot]["corrected_time"] is None
    anchor = raw(tmp_path / "kiosk.db").execute("SELECT * FROM boot_clock").fetchone()
    assert anchor["boot_id"] == "boot-now" and anchor["source"] == "central"
    assert abs(anchor["offset_s"] - (datetime.now(UTC) - stale.now()).total_seconds()) < 2
    server = raw(tmp_path / "central.db")
    sent = {r["id"]: r["corrected_at"] for r in server.execute("SELECT id, corrected_at "
                                                              "FROM checkins")}
    assert sent[before] == rows[before]["corrected_time"] and sent[other_boot] is None


def test_server_time_is_preferred_to_the_date_header(tmp_path):
    true = datetime(2026, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)
    stale = fake_clock(datetime(2021, 1, 1, tzinfo=UTC), boot_id="boot-now")

    def answer(method, path, body):
        if path == "/v1/checkins":
            return 200, {"results": [{"id": c["id"], "status": "accepted"}
                                     for c in body["checkins"]],
                         "server_time": iso(true)}, {}
        if path == "/v1/health":
            return 200, {"status": "ok", "server_time": iso(true)}, {}
        return 404, {"error": "none"}, {}

    path = tmp_path / "k.db"
    give_sealing_key(path)
    with Store(path, device_id="d", checkpoint_id="c", clock=stale) as store:
        row = store.record(entry(1))
    with ScriptedServer(answer) as server:
        assert sync_once(db_path=path, server_url=server.url, token="t", clock=stale).ok
        posted = [b for m, p, b in server.seen if p == "/v1/checkins"][0]["checkins"][0]
    corrected = parse_iso(raw(path).execute("SELECT corrected_time FROM checkins WHERE id = ?",
                                            [row]).fetchone()[0])
    assert abs((corrected - true).total_seconds()) < 1.0  # not the real "now" of the Date
    assert posted["time_source"] == "central" and posted["corrected_at"] == iso(corrected)
