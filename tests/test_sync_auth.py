"""Issue 9 #4 and #1: refusals by something on the path never stop delivery for good,
and only the server's per-row verdict sends a row to the dead letter."""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import requests

from offline_queue.central import db as central_db
from offline_queue.outbox import Outbox
from offline_queue.sync import SyncWorker, sync_once
from tests import test_sync as base
from tests.synchelp import ScriptedServer, StatusProxy, give_sealing_key, queue_stats
from tests.test_sync import (
    FAST,
    entry,
    kiosk_ids,
    kiosk_store,
    server_ids,
    wait_for,
)

central, enrolled = base.central, base.enrolled  # the same fixtures
SLOW_AUTH = dict(FAST, auth_retry_max=0.3)


def test_a_fixed_token_file_resumes_delivery_without_a_restart(central, enrolled, tmp_path):
    token_file = tmp_path / "device-token"
    token_file.write_text("not-the-token\n")
    with kiosk_store(tmp_path, enrolled) as store:
        ids = [store.record(entry(i)) for i in range(5)]
        with SyncWorker(db_path=store.path, server_url=central.url, token="not-the-token",
                        token_file=token_file, **SLOW_AUTH) as worker:
            assert wait_for(lambda: worker.status().reprovision_needed, timeout=10)
            token_file.write_text(enrolled["device_token"] + "\n")  # the technician's fix
            assert wait_for(lambda: (s := worker.status()).backlog == 0
                            and s.last_success is not None, timeout=15), worker.status()
            status = worker.status()
        assert not status.reprovision_needed and status.last_error is None
        assert queue_stats(store)["reprovision_needed"] is False
    assert sorted(server_ids(tmp_path)) == sorted(ids)


def test_a_401_from_a_proxy_that_recovers_does_not_stop_sync(central, enrolled, tmp_path):
    faults = itertools.chain(["401", "401", "403"], itertools.repeat("pass"))
    with StatusProxy((central.host, central.port), lambda: next(faults)) as proxy, \
            kiosk_store(tmp_path, enrolled) as store:
        ids = [store.record(entry(i)) for i in range(5)]
        with SyncWorker(db_path=store.path, server_url=proxy.url,
                        token=enrolled["device_token"], **SLOW_AUTH) as worker:
            assert wait_for(lambda: (s := worker.status()).backlog == 0
                            and s.last_success is not None, timeout=15), worker.status()
            assert not worker.status().reprovision_needed
    assert sorted(server_ids(tmp_path)) == sorted(ids)


def test_a_whole_request_4xx_never_dead_letters_rows(central, enrolled, tmp_path):
    faults = itertools.chain(["400", "413", "422", "400"], itertools.repeat("pass"))
    with StatusProxy((central.host, central.port), lambda: next(faults)) as proxy, \
            kiosk_store(tmp_path, enrolled) as store:
        ids = [store.record(entry(i)) for i in range(7)]
        first = sync_once(db_path=store.path, server_url=proxy.url,
                          token=enrolled["device_token"])
        assert not first.ok and first.dead_letter == 0 and first.remaining == 7, first
        with SyncWorker(db_path=store.path, server_url=proxy.url,
                        token=enrolled["device_token"], batch_size=4, **FAST) as worker:
            assert wait_for(lambda: worker.status().backlog == 0, timeout=15), worker.status()
            assert worker.status().dead_letter == 0
    assert sorted(server_ids(tmp_path)) == sorted(ids)


def _forbidding_server(allowed: set[str]):
    def answer(method, path, body):
        if path == "/v1/checkins":
            return 200, {"results": [
                {"id": c["id"], "status": "accepted"} if c["device_id"] in allowed else
                {"id": c["id"], "status": "forbidden",
                 "errors": [f"device {c['device_id']!r} is not linked to this token"]}
                for c in body["checkins"]]}, {}
        return 404, {"error": "no such document"}, {}
    return answer


def test_forbidden_rows_stay_pending_and_sync_once_says_so(enrolled, tmp_path):
    give_sealing_key(tmp_path / "kiosk.db")
    with kiosk_store(tmp_path, enrolled) as store:
        ids = [store.record(entry(i)) for i in range(3)]
    with sqlite3.connect(tmp_path / "kiosk.db") as conn:  # recorded before re-provisioning
        conn.execute("UPDATE checkins SET device_id = 'old-device' WHERE id = ?", [ids[0]])
    with ScriptedServer(_forbidding_server({enrolled["device_id"]})) as server:
        result = sync_once(db_path=tmp_path / "kiosk.db", server_url=server.url, token="t")
        assert not result.ok and result.forbidden == 1 and result.dead_letter == 0, result
        assert "forbidden" in result.error and json.loads(result.as_json())["ok"] is False
        with Outbox(tmp_path / "kiosk.db") as outbox:
            assert outbox.counts()["pending"] == 1 and outbox.counts()["rejected"] == 0
            assert outbox.undelivered_device_ids() == ["old-device"]
            assert outbox.meta()["reprovision_needed"] == "1"
        with SyncWorker(db_path=tmp_path / "kiosk.db", server_url=server.url, token="t",
                        **FAST) as worker:
            assert wait_for(lambda: worker.status().forbidden == 1, timeout=10)
            status = worker.status()
        assert status.reprovision_needed and status.backlog == 1 and status.dead_letter == 0
        # Re-enrolment linked the old id: the held row goes out.
        server.answer = _forbidding_server({enrolled["device_id"], "old-device"})
        assert sync_once(db_path=tmp_path / "kiosk.db", server_url=server.url, token="t").ok


def test_requeue_puts_dead_letter_back_and_keeps_conflicts(tmp_path, enrolled):
    with kiosk_store(tmp_path, enrolled) as store:
        ids = [store.record(entry(i)) for i in range(4)]
    with sqlite3.connect(tmp_path / "kiosk.db") as conn:
        conn.execute("UPDATE checkins SET state = 'rejected', attempts = 3, "
                     "last_error = 'device mismatch' WHERE id IN (?, ?)", ids[:2])
        conn.execute("UPDATE checkins SET state = 'conflict' WHERE id = ?", [ids[2]])
        conn.execute("UPDATE checkins SET state = 'sent' WHERE id = ?", [ids[3]])
    with Outbox(tmp_path / "kiosk.db") as outbox:
        assert outbox.undelivered_device_ids() == [enrolled["device_id"]]
        assert outbox.requeue_dead_letter() == 2
        assert outbox.requeue_dead_letter() == 0
        counts = outbox.counts()
    assert (counts["pending"], counts["conflict"], counts["rejected"]) == (2, 1, 0)
    row = sqlite3.connect(tmp_path / "kiosk.db").execute(
        "SELECT attempts, last_error FROM checkins WHERE id = ?", [ids[0]]).fetchone()
    assert row == (3, "device mismatch")
    repo = Path(__file__).resolve().parents[1]
    with sqlite3.connect(tmp_path / "kiosk.db") as conn:
        conn.execute("UPDATE checkins SET state = 'rejected' WHERE id = ?", [ids[0]])
    done = subprocess.run([sys.executable, "-m", "kiosk", "queue", "requeue", "--db",
                           str(tmp_path / "kiosk.db")], cwd=repo, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 " in done.stdout and "pending" in done.stdout


def test_sync_once_command_exits_non_zero_when_rows_stay_in_dead_letter(tmp_path, central,
                                                                        enrolled):
    give_sealing_key(tmp_path / "kiosk.db", central.url)
    with kiosk_store(tmp_path, enrolled) as store:
        store.record(entry(1))
        bad = store.record(entry(2))
    with sqlite3.connect(tmp_path / "kiosk.db") as conn:
        conn.execute("UPDATE checkins SET kind = 'martian' WHERE id = ?", [bad])
    token_file = tmp_path / "device-token"
    token_file.write_text(enrolled["device_token"] + "\n")
    (tmp_path / "kiosk.toml").write_text("", encoding="utf-8")
    args = [sys.executable, "-m", "kiosk", "sync", "--once", "--db", str(tmp_path / "kiosk.db"),
            "--server", central.url, "--token-file", str(token_file),
            "--config", str(tmp_path / "kiosk.toml")]
    repo = Path(__file__).resolve().parents[1]
    first = subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=60)
    assert first.returncode != 0
    # Nothing new happens on the second run, but the row is still undeliverable.
    second = subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=60)
    assert second.returncode != 0, second.stdout
    answer = json.loads(second.stdout)
    assert answer["ok"] is False and answer["dead_letter"] == 1
    assert "dead letter" in second.stderr + answer["error"]
    assert sorted(server_ids(tmp_path)) != sorted(kiosk_ids(tmp_path))


def test_reprovisioning_delivers_the_whole_backlog_end_to_end(central, enrolled, tmp_path):
    """The trial of issue 9 #1 against the real central: token revoked, rows keep being
    recorded, re-enrolment links the old id, the token file is replaced: all delivered."""
    token_file = tmp_path / "device-token"
    token_file.write_text(enrolled["device_token"] + "\n")
    with central_db.connect(tmp_path / "central.db") as cdb:
        central_db.revoke_device(cdb, enrolled["device_id"])
    with kiosk_store(tmp_path, enrolled) as store:
        ids = [store.record(entry(i)) for i in range(81)]
        with SyncWorker(db_path=store.path, server_url=central.url,
                        token=enrolled["device_token"], token_file=token_file,
                        batch_size=20, **SLOW_AUTH) as worker:
            assert wait_for(lambda: worker.status().token_refused, timeout=10)
            with Outbox(store.path) as outbox:  # what provisioning does after re-enrolment
                previous = outbox.undelivered_device_ids()
            assert previous == [enrolled["device_id"]]
            with central_db.connect(tmp_path / "central.db") as cdb:
                token = central_db.create_enrolment_token(cdb, checkpoint_id="LS-HUUNGHI",
                                                          name="HN")
            answer = requests.post(central.url + "/v1/devices/enrol", timeout=5, json={
                "enrolment_token": token, "previous_device_ids": previous})
            assert answer.status_code == 201, answer.text
            token_file.write_text(answer.json()["device_token"] + "\n")
            assert wait_for(lambda: (s := worker.status()).backlog == 0
                            and s.last_success is not None, timeout=20), worker.status()
            status = worker.status()
    assert (status.dead_letter, status.forbidden, status.reprovision_needed) == (0, 0, False)
    assert sorted(server_ids(tmp_path)) == sorted(ids)


def _odd_status_server(odd: object):
    """A central whose verdict for the first row has ``status`` ``odd``; the rest accepted."""
    def answer(method, path, body):
        if path == "/v1/checkins":
            rows = body["checkins"]
            return 200, {"results": [{"id": rows[0]["id"], "status": odd}]
                         + [{"id": c["id"], "status": "accepted"} for c in rows[1:]]}, {}
        return 404, {"error": "no such document"}, {}
    return answer


def test_a_verdict_with_a_non_text_status_keeps_that_row_and_delivers_the_rest(enrolled,
                                                                              tmp_path):
    """A status that is a list or an object (a broken central) is no verdict: like an unknown
    word, the row stays to be sent again, and the other rows of the batch are still marked."""
    for odd in ("pondering", ["accepted"], {"state": "sent"}):
        give_sealing_key(tmp_path / "kiosk.db")
        with kiosk_store(tmp_path, enrolled) as store:
            for i in range(3):
                store.record(entry(i))
        with ScriptedServer(_odd_status_server(odd)) as server:
            result = sync_once(db_path=tmp_path / "kiosk.db", server_url=server.url, token="t")
        assert not result.ok, (odd, result)
        with Outbox(tmp_path / "kiosk.db") as outbox:
            counts = outbox.counts()
        assert (counts["pending"], counts["sent"]) == (1, 2), (odd, counts)
        (tmp_path / "kiosk.db").unlink()
