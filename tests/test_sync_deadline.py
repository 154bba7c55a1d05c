"""Issue 9 #5: a slow-drip answer never holds the sync thread past a total deadline."""

from __future__ import annotations

import time

import pytest

from offline_queue.store import Store
from offline_queue.sync import SyncClient, SyncWorker, TransientSyncError
from tests.synchelp import DripServer
from tests.test_sync import FAST, entry


@pytest.mark.parametrize("drip_head", [False, True], ids=["body", "head"])
def test_a_dripping_answer_ends_at_the_total_deadline(drip_head):
    # Each byte comes well within the 1 s read timeout, so only a total deadline ends it.
    with DripServer(interval=0.2, limit=12, drip_head=drip_head) as server:
        client = SyncClient(server.url, "t", connect_timeout=1, read_timeout=1)
        started = time.monotonic()
        with pytest.raises(TransientSyncError, match="deadline"):
            client.post_checkins([])
        took = time.monotonic() - started
        client.close()
    assert took < 3.5, f"the request took {took:.1f} s; its deadline is 2 s"


def test_a_big_answer_arriving_steadily_may_outlast_the_deadline():
    # 96 KiB at 24 KiB/s takes 4 s, twice the 2 s deadline: a slow link, not a drip.
    with DripServer(interval=0.25, chunk=6144, size=96 * 1024, limit=30) as server:
        client = SyncClient(server.url, "t", connect_timeout=1, read_timeout=1)
        beats = []
        client.before_request = lambda: beats.append(time.monotonic())
        started = time.monotonic()
        assert client.post_checkins([]) == []
        took = time.monotonic() - started
        client.close()
    assert took > 3.0
    assert len(beats) >= 5  # every piece of the body is a heartbeat


def test_worker_keeps_beating_and_closes_promptly_during_a_drip(tmp_path):
    with Store(tmp_path / "k.db", device_id="d", checkpoint_id="c") as store:
        store.record(entry(1))
    with DripServer(interval=0.2, limit=30) as server:
        worker = SyncWorker(db_path=tmp_path / "k.db", server_url=server.url, token="t",
                            **dict(FAST, connect_timeout=1, read_timeout=1))
        worker.start()
        ages = []
        ends = time.monotonic() + 6
        while time.monotonic() < ends:
            ages.append(time.monotonic() - worker.heartbeat)
            time.sleep(0.1)
        assert server.requests >= 2  # the first drip was cut off and the worker went on
        started = time.monotonic()
        worker.close()
        closing = time.monotonic() - started
    assert max(ages) < 3.0, max(ages)
    assert closing < 1.5, f"close() took {closing:.1f} s"
