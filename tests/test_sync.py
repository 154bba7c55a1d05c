"""Sync against the real reference server on 127.0.0.1, directly and through faults."""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer
from offline_queue.clock import Clock
from offline_queue.outbox import Outbox
from offline_queue.records import CheckIn
from offline_queue.store import Store
from offline_queue.sync import (
    SyncClient,
    Syncer,
    SyncStatus,
    SyncWorker,
    parse_retry_after,
    sync_once,
)
from tests.faultproxy import FAULTS, FaultProxy
from tests.synchelp import give_sealing_key, queue_stats

FAST = dict(backoff_base=0.02, backoff_cap=0.2, boot_jitter=0, link_jitter=0.01,
            idle_interval=0.2, connect_timeout=2, read_timeout=5)


@pytest.fixture
def central(tmp_path):
    with CentralServer(tmp_path / "central.db", admin_token="admin-secret") as server:
        yield server


@pytest.fixture
def enrolled(central, tmp_path):
    """A device enrolled through the real HTTP endpoint."""
    with central_db.connect(tmp_path / "central.db") as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id="LS-HUUNGHI",
                                                  name="Cửa khẩu Hữu Nghị")
    answer = requests.post(central.url + "/v1/devices/enrol",
                           json={"enrolment_token": token}, timeout=5)
    assert answer.status_code == 201
    return answer.json()


def entry(i: int = 0, **kw) -> CheckIn:
    base = dict(direction="in", kind="cccd", person_key=f"0010850{i:05d}",
                display={"name": f"N*** {i}"}, decision="pass", reasons=("ok",))
    base.update(kw)
    return CheckIn(**base)


def kiosk_store(tmp_path, enrolled, clock: Clock | None = None) -> Store:
    return Store(tmp_path / "kiosk.db", device_id=enrolled["device_id"],
                 checkpoint_id=enrolled["checkpoint_id"], clock=clock)


def server_ids(tmp_path) -> list[str]:
    conn = sqlite3.connect(tmp_path / "central.db")
    return [r[0] for r in conn.execute("SELECT id FROM checkins")]


def kiosk_ids(tmp_path) -> list[str]:
    conn = sqlite3.connect(tmp_path / "kiosk.db")
    return [r[0] for r in conn.execute("SELECT id FROM checkins")]


def wait_for(predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_sync_once_delivers_in_batches_and_pulls_documents(central, enrolled, tmp_path):
    with central_db.connect(tmp_path / "central.db") as cdb:
        central_db.set_document(cdb, "policy", b'{"profile": "border"}',
                                expires_at=datetime(2030, 1, 1, tzinfo=UTC))
        central_db.set_document(cdb, "watchlist", b'{"version": 1, "entries": []}')
    with kiosk_store(tmp_path, enrolled) as store:
        ids = [store.record(entry(i)) for i in range(1203)]
        result = sync_once(db_path=store.path, server_url=central.url,
                           token=enrolled["device_token"], batch_size=250)
        assert result.ok, result
        assert (result.delivered, result.remaining) == (1203, 0)
        assert sorted(result.documents_changed) == ["policy", "watchlist"]
        assert queue_stats(store)["sent"] == 1203
        policy = store.document("policy")
        assert policy.body == b'{"profile": "border"}'
        assert policy.expires_at == datetime(2030, 1, 1, tzinfo=UTC)
        assert policy.etag and store.document("trust_list") is None
        first_fetch = policy.fetched_at
        again = sync_once(db_path=store.path, server_url=central.url,
                          token=enrolled["device_token"])
        assert again.ok and again.delivered == 0 and again.documents_changed == []  # 304s
        assert store.document("policy").fetched_at >= first_fetch
    assert sorted(server_ids(tmp_path)) == sorted(ids)


def test_worker_survives_every_fault_without_loss_or_double(central, enrolled, tmp_path):
    # Every fault twice in a row, then a seeded random mix with mostly clean passes.
    rng = random.Random(4)
    script = itertools.chain(
        [f for f in FAULTS if f != "pass" for _ in range(2)],
        (rng.choice(["pass"] * 6 + list(FAULTS)) for _ in itertools.count()),
    )
    lock = threading.Lock()

    def choose() -> str:
        with lock:
            return next(script)

    host, port = central.host, central.port
    statuses: list[SyncStatus] = []
    with FaultProxy((host, port), choose, slow_s=0.3, retry_after=1) as proxy, \
            kiosk_store(tmp_path, enrolled) as store:
        with SyncWorker(db_path=store.path, server_url=proxy.url, token=enrolled["device_token"],
                        batch_size=15, on_status=statuses.append, **FAST) as worker:
            for i in range(300):
                store.record(entry(i))
                worker.poke()
            assert wait_for(lambda: (s := worker.status()).backlog == 0 and s.online,
                            timeout=40), worker.status()
            status = worker.status()
        seen = {fault for _, fault in proxy.log}
    assert seen >= set(FAULTS) - {"pass"}, seen
    assert status.dead_letter == 0 and status.online
    assert any(not s.online for s in statuses)  # the faults were visible as offline
    ids = server_ids(tmp_path)
    assert len(ids) == len(set(ids)) == 300
    assert set(ids) == set(kiosk_ids(tmp_path))


def test_retry_after_is_honoured(central, enrolled, tmp_path):
    faults = iter(["429"])
    with FaultProxy((central.host, central.port), lambda: next(faults, "pass"),
                    retry_after=1) as proxy, kiosk_store(tmp_path, enrolled) as store:
        store.record(entry())
        with SyncWorker(db_path=store.path, server_url=proxy.url,
                        token=enrolled["device_token"], **FAST) as worker:
            assert wait_for(lambda: worker.status().backlog == 0)
        (t429, first), (t_next, _) = proxy.log[0], proxy.log[1]
    assert first == "429"
    assert t_next - t429 >= 0.95  # backoff alone would have retried within 0.2 s


def test_answer_lost_after_server_acted_is_a_duplicate_not_a_double(central, enrolled, tmp_path):
    faults = iter(["reset_after", "truncate"])
    give_sealing_key(tmp_path / "kiosk.db", central.url)  # the faults hit the posts
    with FaultProxy((central.host, central.port), lambda: next(faults, "pass")) as proxy, \
            kiosk_store(tmp_path, enrolled) as store:
        ids = [store.record(entry(i)) for i in range(10)]
        # NTP synced: no request for the central's time first, the faults hit the posts.
        ntp = Clock(synced=lambda: True)
        first = sync_once(db_path=store.path, server_url=proxy.url,
                          token=enrolled["device_token"], clock=ntp)
        assert not first.ok and first.remaining == 10  # the answer was lost
        assert sorted(server_ids(tmp_path)) == sorted(ids)  # but the server has them
        second = sync_once(db_path=store.path, server_url=proxy.url,
                           token=enrolled["device_token"], clock=ntp)
        assert not second.ok  # truncated answer
        third = sync_once(db_path=store.path, server_url=proxy.url,
                          token=enrolled["device_token"], clock=ntp)
        assert third.ok and third.remaining == 0
    assert sorted(server_ids(tmp_path)) == sorted(ids)


def test_same_id_with_other_content_is_a_conflict_kept_for_a_technician(
    central, enrolled, tmp_path
):
    with kiosk_store(tmp_path, enrolled) as store:
        checkin_id = store.record(entry(1))
        assert sync_once(db_path=store.path, server_url=central.url,
                         token=enrolled["device_token"]).ok
        # Simulate a second kiosk database that reused the id (restored backup).
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE checkins SET state = 'pending', decision = 'stop' WHERE id = ?",
                         [checkin_id])
        result = sync_once(db_path=store.path, server_url=central.url,
                           token=enrolled["device_token"])
        assert not result.ok and result.dead_letter == 1
        assert queue_stats(store)["conflict"] == 1
    conn = sqlite3.connect(tmp_path / "central.db")
    assert conn.execute("SELECT count(*) FROM conflicts WHERE id = ?", [checkin_id]).fetchone() \
        == (1,)
    assert conn.execute("SELECT body FROM checkins").fetchone()[0].count('"pass"') == 1


def test_validation_error_goes_to_dead_letter_and_the_rest_is_delivered(
    central, enrolled, tmp_path
):
    with kiosk_store(tmp_path, enrolled) as store:
        good = [store.record(entry(i)) for i in range(5)]
        bad = store.record(entry(99))
        with sqlite3.connect(store.path) as conn:  # a row an older release wrote wrongly
            conn.execute("UPDATE checkins SET kind = 'martian' WHERE id = ?", [bad])
        result = sync_once(db_path=store.path, server_url=central.url,
                           token=enrolled["device_token"])
        assert not result.ok and "dead letter" in result.error
        assert result.remaining == 0 and result.dead_letter == 1
        row = sqlite3.connect(store.path).execute(
            "SELECT state, last_error FROM checkins WHERE id = ?", [bad]).fetchone()
    assert row[0] == "rejected" and "martian" in row[1]
    assert sorted(server_ids(tmp_path)) == sorted(good)


def test_401_stops_sync_but_recording_continues(central, enrolled, tmp_path):
    with central_db.connect(tmp_path / "central.db") as cdb:
        central_db.revoke_device(cdb, enrolled["device_id"])
    with kiosk_store(tmp_path, enrolled) as store:
        store.record(entry(1))
        with SyncWorker(db_path=store.path, server_url=central.url,
                        token=enrolled["device_token"], **FAST) as worker:
            assert wait_for(lambda: worker.status().reprovision_needed, timeout=10)
            store.record(entry(2))  # the kiosk keeps working
            status = worker.status()
        assert status.backlog == 2 and "re-provision" in status.last_error
        assert queue_stats(store)["reprovision_needed"] is True


def _reenrol(central, tmp_path) -> str:
    with central_db.connect(tmp_path / "central.db") as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id="LS-HUUNGHI", name="HN")
    answer = requests.post(central.url + "/v1/devices/enrol",
                           json={"enrolment_token": token}, timeout=5)
    return answer.json()["device_token"]


def test_sync_once_keeps_the_status_that_status_and_queue_stats_show(central, enrolled,
                                                                      tmp_path):
    """Revoked, then re-provisioned: the technician's `sync --once` clears the 401 flag."""
    with central_db.connect(tmp_path / "central.db") as cdb:
        central_db.revoke_device(cdb, enrolled["device_id"])
    with kiosk_store(tmp_path, enrolled) as store:
        refused = sync_once(db_path=store.path, server_url=central.url,
                            token=enrolled["device_token"])
        assert not refused.ok
        stats = queue_stats(store)
        assert stats["reprovision_needed"] is True and stats["last_error"] == refused.error
        assert sync_once(db_path=store.path, server_url=central.url,
                         token=_reenrol(central, tmp_path)).ok
        stats = queue_stats(store)
        assert (stats["reprovision_needed"], stats["last_error"]) == (False, None)
        assert stats["last_success"] is not None


def test_a_restarted_worker_clears_an_old_error_with_nothing_to_deliver(central, enrolled,
                                                                         tmp_path):
    with kiosk_store(tmp_path, enrolled) as store:
        with Outbox(store.path) as outbox:   # what the previous run left: refused, then restart
            outbox.set_meta(last_error="401 device token refused", reprovision_needed="1")
        with SyncWorker(db_path=store.path, server_url=central.url,
                        token=enrolled["device_token"], **FAST) as worker:
            assert wait_for(lambda: worker.status().last_success is not None, timeout=10)
        stats = queue_stats(store)
        assert (stats["reprovision_needed"], stats["last_error"]) == (False, None)
        assert stats["last_success"] is not None


def test_unsynced_times_are_corrected_in_the_same_boot_only(central, enrolled, tmp_path):
    wall = [datetime(2021, 1, 1, tzinfo=UTC)]  # stale clock after a power cut
    mono = [10**12]
    synced = [False]
    clock = Clock(wall=lambda: wall[0], monotonic_ns=lambda: mono[0],
                  synced=lambda: synced[0], boot_id="boot-now")
    with kiosk_store(tmp_path, enrolled, clock) as store:
        this_boot = store.record(entry(1))
        earlier_boot = store.record(entry(2))
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE checkins SET boot_id = 'boot-before' WHERE id = ?",
                         [earlier_boot])
        # NTP answers 90 s (monotonic) later: the true time is 2021-09-20 03:00.
        mono[0] += 90 * 10**9
        wall[0], synced[0] = datetime(2021, 9, 20, 3, 0, tzinfo=UTC), True
        assert sync_once(db_path=store.path, server_url=central.url,
                         token=enrolled["device_token"], clock=clock).ok
    conn = sqlite3.connect(tmp_path / "central.db")
    rows = dict(conn.execute("SELECT id, corrected_at FROM checkins"))
    assert rows[this_boot] == "2021-09-20T02:58:30.000000Z"
    assert rows[earlier_boot] is None


def test_close_is_prompt_even_while_waiting(central, enrolled, tmp_path):
    with kiosk_store(tmp_path, enrolled):
        worker = SyncWorker(db_path=tmp_path / "kiosk.db", server_url=central.url,
                            token=enrolled["device_token"], boot_jitter=600)
        worker.start()
        beat = worker.heartbeat
        started = time.monotonic()
        worker.close()
        worker.close()
    assert time.monotonic() - started < 1.0
    assert worker.heartbeat >= beat


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7.0
    now = datetime(2021, 9, 20, 3, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 20 Sep 2021 03:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(str(10**9)) == 3600.0


def test_tls_verification_cannot_be_turned_off(tmp_path):
    client = SyncClient("https://central.example", "t")
    assert client.session.verify is True
    with pytest.raises(ValueError, match="not a file"):
        SyncClient("https://central.example", "t", ca_bundle=str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match="server_url"):
        SyncClient("central.example", "t")


def test_outbox_claims_in_creation_order_even_when_the_clock_steps_back(tmp_path):
    wall = [datetime(2021, 9, 20, 3, 0, tzinfo=UTC)]
    clock = Clock(wall=lambda: wall[0], synced=lambda: True, boot_id="b")
    give_sealing_key(tmp_path / "k.db")
    with Store(tmp_path / "k.db", device_id="d", checkpoint_id="c", clock=clock) as store:
        first = store.record(entry(1))
        wall[0] -= timedelta(days=1)
        second = store.record(entry(2))
    with Outbox(tmp_path / "k.db") as outbox:
        assert [i["id"] for i in outbox.claim(10)] == [first, second]
        assert outbox.counts()["in_flight"] == 2
    assert uuid.UUID(second).version == 7


def test_heartbeat_keeps_turning_while_a_long_backlog_drains_slowly(tmp_path, central,
                                                                    enrolled):
    """Each batch beats: a slow drain is busy, not hung, for the watchdog."""
    with kiosk_store(tmp_path, enrolled) as store:
        for i in range(12):
            store.record(entry(i))
    host, port = central.url.removeprefix("http://").split(":")
    with FaultProxy((host, int(port)), lambda: "slow", slow_s=0.25) as proxy:
        worker = SyncWorker(db_path=tmp_path / "kiosk.db", server_url=proxy.url,
                            token=enrolled["device_token"], batch_size=1, **FAST)
        with worker:
            worker.start()
            ages = []
            while len(server_ids(tmp_path)) < 12:
                ages.append(time.monotonic() - worker.heartbeat)
                time.sleep(0.05)
                assert len(ages) < 400, "the backlog did not drain"
    assert len(ages) > 20  # the drain took seconds...
    assert max(ages) < 1.5  # ...yet the heartbeat was never older than a couple of batches


def test_sync_once_command_uses_the_kiosk_config_and_token_file(tmp_path, central, enrolled):
    import json
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    give_sealing_key(tmp_path / "kiosk.db", central.url)  # sync --once runs in another process
    with kiosk_store(tmp_path, enrolled) as store:
        for i in range(3):
            store.record(entry(i))
    token_file = tmp_path / "device-token"
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "kiosk.db"}"\n'
                      f'[sync]\nserver_url = "{central.url}"\ntoken_file = "{token_file}"\n',
                      encoding="utf-8")

    def kiosk(*args):
        return subprocess.run([sys.executable, "-m", "kiosk", *args, "--config", str(config)],
                              cwd=repo, capture_output=True, text=True, timeout=60)

    missing = kiosk("sync", "--once")
    assert missing.returncode == 2 and "provision the kiosk first" in missing.stderr
    token_file.write_text(enrolled["device_token"] + "\n")
    token_file.chmod(0o600)
    done = kiosk("sync", "--once")
    assert done.returncode == 0, done.stderr
    assert enrolled["device_token"] not in done.stdout + done.stderr
    assert sorted(server_ids(tmp_path)) == sorted(kiosk_ids(tmp_path))
    stats = json.loads(kiosk("queue", "stats").stdout)
    assert stats["pending"] == 0 and stats["sent"] == 3


def test_continuous_sync_command_prints_readable_status_and_stops_on_sigterm(tmp_path, central,
                                                                             enrolled):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    give_sealing_key(tmp_path / "kiosk.db", central.url)  # the command runs in another process
    with kiosk_store(tmp_path, enrolled) as store:
        store.record(entry(1))
    token_file = tmp_path / "device-token"
    token_file.write_text(enrolled["device_token"] + "\n")
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "kiosk.db"}"\n'
                      f'[sync]\nserver_url = "{central.url}"\ntoken_file = "{token_file}"\n',
                      encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "kiosk", "sync", "--config", str(config)],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # The first status line; a library's warning may come before it (Debian's requests
        # beside a newer urllib3 printed one first, and the test signalled too early).
        for line in iter(proc.stderr.readline, ""):
            if line.startswith("sync: "):
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert line.startswith("sync: online; backlog 0; dead letter 0; last sync 20"), line
    assert "SyncStatus(" not in line + err and enrolled["device_token"] not in line + err


def test_each_batch_tells_the_central_what_the_kiosk_still_holds(central, enrolled, tmp_path):
    """The X-Kiosk-Backlog header: the fleet page shows who is behind."""
    with kiosk_store(tmp_path, enrolled) as store:
        for i in range(7):
            store.record(entry(i))
    stop = threading.Event()  # set before the first batch: the loop ends after it
    client = SyncClient(central.url, enrolled["device_token"])
    with Outbox(tmp_path / "kiosk.db") as outbox, client:
        assert Syncer(outbox, client, clock=Clock(), batch_size=3).push(stop, stop.set) == 3

    def backlog() -> int | None:
        with central_db.connect(tmp_path / "central.db") as cdb:
            return cdb.execute("SELECT backlog FROM devices WHERE id = ?",
                               [enrolled["device_id"]]).fetchone()[0]

    assert backlog() == 4  # 7 held, 3 in the batch
    result = sync_once(db_path=tmp_path / "kiosk.db", server_url=central.url,
                       token=enrolled["device_token"], batch_size=3)
    assert result.ok and result.delivered == 4
    assert backlog() == 0
