"""The check-in store on real SQLite files in tmp_path."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk import __version__
from kiosk.errors import StoreError
from offline_queue.clock import Clock
from offline_queue.outbox import Outbox
from offline_queue.records import CheckIn, UUIDv7Factory
from offline_queue.store import Store, StoreIntegrityError, read_stats
from tests.synchelp import queue_stats

VN = ZoneInfo("Asia/Ho_Chi_Minh")


class FakeTime:
    """A settable wall clock and monotonic counter (the data, not the behaviour, is fake)."""

    def __init__(self, start: datetime, synced: bool = True) -> None:
        self.wall = start
        self.mono = 5_000_000_000
        self.is_synced = synced

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += int(seconds * 1e9)

    def clock(self, boot_id: str = "boot-a") -> Clock:
        return Clock(
            wall=lambda: self.wall, monotonic_ns=lambda: self.mono,
            synced=lambda: self.is_synced, boot_id=boot_id,
        )


def entry(**kw) -> CheckIn:
    base = dict(
        direction="in", kind="cccd", person_key="001085012345",
        display={"name": "T** T** B*** N***"}, decision="pass", reasons=("cccd_ok",),
    )
    base.update(kw)
    return CheckIn(**base)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "queue" / "kiosk.db"


def open_store(path, clock: Clock | None = None, **kw) -> Store:
    return Store(path, device_id="dev-1", checkpoint_id="cp-7", clock=clock, **kw)


def raw(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def test_record_is_committed_with_every_field(db_path):
    t = FakeTime(datetime(2021, 9, 20, 3, 0, tzinfo=UTC), synced=False)
    with open_store(db_path, t.clock("boot-x"), app_version=__version__) as store:
        checkin_id = store.record(entry())
        # Read through an independent connection while the store is still open: the
        # row must already be committed when record() returns.
        row = raw(db_path).execute("SELECT * FROM checkins").fetchone()
    assert uuid.UUID(checkin_id).version == 7
    assert row["id"] == checkin_id
    assert (row["device_id"], row["checkpoint_id"]) == ("dev-1", "cp-7")
    assert (row["direction"], row["kind"], row["decision"]) == ("in", "cccd", "pass")
    # Never in clear (issue 14): no sealing key yet, so the identity waits in memory.
    assert row["person_key"] is None and row["sealed"] is None
    assert row["identity"] == "waiting" and store.identities_waiting == 1
    assert row["reasons"] == '["cccd_ok"]'
    assert row["wall_time"] == "2021-09-20T03:00:00.000000Z"
    assert row["mono_ns"] == 5_000_000_000
    assert row["boot_id"] == "boot-x"
    assert row["clock_synced"] == 0
    assert row["app_version"] == __version__
    assert row["state"] == "pending"


def test_writer_connection_is_wal_and_full_sync(db_path):
    with open_store(db_path) as store:
        conn = store._db.conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrations_are_recorded_once(db_path):
    open_store(db_path).close()
    open_store(db_path).close()
    names = [r[0] for r in raw(db_path).execute("SELECT name FROM _sqlite_migrations")]
    assert names == ["m001_checkins", "m002_documents", "m003_sync_meta",
                     "m004_time_source_and_forbidden", "m005_boot_clock",
                     "m006_sealed_identity", "m007_officer"]


def test_uuid7_is_time_ordered_and_never_goes_back():
    now = [1_700_000_000_000_000_000]
    make = UUIDv7Factory(time_ns=lambda: now[0])
    ids = [make() for _ in range(1000)]
    now[0] -= 3_600 * 10**9  # the wall clock steps back an hour
    ids += [make() for _ in range(10)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    first = uuid.UUID(ids[0])
    assert first.version == 7 and first.variant == uuid.RFC_4122
    assert first.int >> 80 == 1_700_000_000_000  # unix ms in the top 48 bits


def test_in_flight_rows_go_back_to_pending_on_open(db_path):
    with open_store(db_path) as store:
        ids = [store.record(entry()) for _ in range(3)]
    with raw(db_path) as conn:
        conn.execute("UPDATE checkins SET state = 'in_flight' WHERE id != ?", [ids[0]])
    with open_store(db_path) as store:
        assert queue_stats(store)["pending"] == 3
        assert queue_stats(store)["in_flight"] == 0


def test_counts_today_uses_local_day_and_overrides_replace(db_path):
    # 23:30 in Hanoi on 20 Sep is 16:30 UTC; the day in Hanoi starts at 17:00 UTC.
    t = FakeTime(datetime(2021, 9, 20, 16, 30, tzinfo=UTC))
    with open_store(db_path, t.clock(), tz=VN) as store:
        store.record(entry(decision="pass"))  # 20 Sep local: not today
        t.advance(3600)  # 00:30 on 21 Sep local
        stopped = store.record(entry(decision="stop", direction="in"))
        store.record(entry(decision="check", direction="out"))
        store.record(
            entry(decision="pass", override_of=stopped, original_decision="stop",
                  override_reason="officer checked paper certificate", source="manual")
        )
        counts = store.counts_today()
        assert counts == {"in": 1, "out": 1, "pass": 1, "check": 1, "stop": 0, "total": 2}
        yesterday = store.counts_today(now=t.wall - timedelta(hours=2))
        assert yesterday == {"in": 1, "out": 0, "pass": 1, "check": 0, "stop": 0, "total": 1}


def test_override_of_an_unknown_id_is_refused(db_path):
    with open_store(db_path) as store, pytest.raises(StoreError, match="override_of"):
        store.record(entry(override_of=str(uuid.uuid4())))


def test_recent_is_newest_first_and_masked(db_path):
    t = FakeTime(datetime(2021, 9, 20, 3, 0, tzinfo=UTC))
    with open_store(db_path, t.clock()) as store:
        ids = []
        for i in range(12):
            ids.append(store.record(entry(display={"name": f"N{i}"})))
            t.advance(1)
        recent = store.recent(limit=10)
    assert [r["id"] for r in recent] == ids[::-1][:10]
    assert recent[0]["display"] == {"name": "N11"}
    assert set(recent[0]) == {
        "id", "time", "direction", "kind", "display", "decision", "reasons", "override_of"
    }
    assert all("001085012345" not in str(r) for r in recent)


def test_stats_counts_states_and_oldest_age(db_path):
    t = FakeTime(datetime(2021, 9, 20, 3, 0, tzinfo=UTC))
    with open_store(db_path, t.clock()) as store:
        assert queue_stats(store)["oldest_pending_age_s"] is None
        store.record(entry())
        t.advance(90)
        store.record(entry())
        stats = queue_stats(store)
    assert stats["pending"] == 2 and stats["sent"] == 0 and stats["total"] == 2
    assert stats["oldest_pending_age_s"] == 90.0
    assert stats["db_size_bytes"] > 0
    assert stats["disk_free_bytes"] > 0 and stats["disk_low"] is False


def test_disk_low_when_free_space_is_under_the_threshold(db_path):
    with open_store(db_path) as store:
        stats = read_stats(store.path, disk_low_below=1 << 62)
    assert stats["disk_low"] is True and stats["disk_free_bytes"] > 0


def test_retention_deletes_only_old_delivered_rows(db_path):
    t = FakeTime(datetime(2021, 9, 1, tzinfo=UTC))
    with open_store(db_path, t.clock()) as store:
        old_sent, old_pending, old_rejected = (store.record(entry()) for _ in range(3))
        t.advance(29 * 86400)
        young_sent = store.record(entry())
        with raw(db_path) as conn:
            conn.execute("UPDATE checkins SET state = 'sent' WHERE id IN (?, ?)",
                         [old_sent, young_sent])
            conn.execute("UPDATE checkins SET state = 'rejected' WHERE id = ?", [old_rejected])
        t.advance(2 * 86400)  # old rows are now 31 days old, the young one 2 days
        with Outbox(db_path) as outbox:  # what the sync worker runs
            assert outbox.purge(retention_days=30, clock=store.clock) == 1
        left = {r["id"] for r in store.recent(100)}
    assert left == {old_pending, old_rejected, young_sent}


def test_a_file_that_is_not_a_database_is_a_store_error(db_path):
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite" * 512)
    with pytest.raises(StoreError, match="kiosk.db"):
        open_store(db_path)


def test_damaged_pages_fail_quick_check(db_path):
    with open_store(db_path) as store:
        for i in range(2000):
            store.record(entry(display={"name": f"person {i}" * 5}))
    with raw(db_path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'checkins_wall_time'"
        ).fetchone()[0]
    data = bytearray(db_path.read_bytes())
    start = (root - 1) * page_size
    data[start + 8 : start + page_size] = b"\xa5" * (page_size - 8)  # keep the header type
    db_path.write_bytes(bytes(data))
    with pytest.raises(StoreIntegrityError, match="damaged|cannot be read"):
        open_store(db_path)


def test_document_is_none_before_any_sync(db_path):
    with open_store(db_path) as store:
        assert store.document("watchlist") is None
        with pytest.raises(ValueError, match="unknown document"):
            store.document("menu")


def test_close_is_idempotent_and_use_after_close_fails(db_path):
    store = open_store(db_path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.record(entry())


def test_bad_checkin_values_are_named():
    with pytest.raises(ValueError, match=r"direction is 'sideways'"):
        entry(direction="sideways")
    with pytest.raises(ValueError, match="decision"):
        entry(decision="maybe")
    with pytest.raises(ValueError, match="not a UUID"):
        entry(override_of="abc")


def test_concurrent_writers_from_threads_and_another_connection(db_path):
    with open_store(db_path) as store:
        other = open_store(db_path)  # a second writer, like the sync worker's connection
        errors: list[BaseException] = []

        def work(s: Store) -> None:
            try:
                for _ in range(50):
                    s.record(entry())
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(s,)) for s in (store, store, other)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        other.close()
        assert not errors
        assert queue_stats(store)["pending"] == 150
