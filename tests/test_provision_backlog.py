"""Issue 9 #1, the kiosk's side: after re-provisioning, the backlog still reaches the server.

The enrolment tells the central which device ids the undelivered rows carry
(``previous_device_ids``), and rows an earlier round dead-lettered go back to pending.
Real central server on 127.0.0.1, real queue database in tmp_path.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest
import requests
from conftest import new_token

from kiosk.ops import provision as prov
from offline_queue.central import db as central_db
from offline_queue.records import CheckIn
from offline_queue.store import Store
from offline_queue.sync import sync_once


def entry(i: int) -> CheckIn:
    return CheckIn(direction="in", kind="cccd", person_key=f"0010850{i:05d}",
                   display={"name": f"N*** {i}"}, decision="pass", reasons=("ok",))


def record(db, device_id: str, checkpoint_id: str, n: int, start: int = 0) -> list[str]:
    with Store(db, device_id=device_id, checkpoint_id=checkpoint_id) as store:
        return [store.record(entry(start + i)) for i in range(n)]


def states(db) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM checkins GROUP BY state"))


@pytest.fixture
def kiosk(central, etc, tmp_path):
    """An enrolled kiosk whose config names its queue database."""
    db = tmp_path / "checkins.db"
    with (etc / "kiosk.toml").open("a", encoding="utf-8") as f:
        f.write(f'[store]\npath = "{db}"\n')
    first = prov.provision(prov.Request(central.url, new_token(central, "LS-A", "A")),
                           config_path=etc / "kiosk.toml")
    return first, db


def capturing_session() -> tuple[requests.Session, list[dict]]:
    """A real session that keeps the JSON bodies it sent (the enrol request)."""
    sent: list[dict] = []
    session = requests.Session()
    session.hooks["response"].append(
        lambda r, *_a, **_k: sent.append(json.loads(r.request.body)))
    return session, sent


def test_reenrolment_names_the_backlogs_device_ids_and_requeues_dead_letter(central, etc,
                                                                            kiosk):
    first, db = kiosk
    record(db, first.device_id, "LS-A", 3)
    record(db, "kiosk-olderone", "LS-A", 2, start=10)  # from an enrolment before that
    delivered = record(db, "kiosk-delivered", "LS-A", 1, start=20)
    with sqlite3.connect(db) as conn:  # as the trial left it: an earlier round dead-lettered
        conn.execute("UPDATE checkins SET state = 'rejected', last_error = 'device mismatch' "
                     "WHERE device_id = 'kiosk-olderone'")
        conn.execute("UPDATE checkins SET state = 'sent' WHERE id = ?", delivered)
    session, sent = capturing_session()
    result = prov.provision(prov.Request(central.url, new_token(central, "LS-A", "A")),
                            config_path=etc / "kiosk.toml", replace_token=True,
                            session=session)
    (body,) = sent
    assert body["previous_device_ids"][0] == first.device_id  # the config's own id first
    assert sorted(body["previous_device_ids"]) == sorted([first.device_id, "kiosk-olderone"])
    assert result.requeued == 2
    assert states(db) == {"pending": 5, "sent": 1}


def test_a_fresh_kiosk_sends_no_previous_ids(central, etc, tmp_path):
    """No queue yet: no previous ids.  The queue made afterwards holds only the central's
    sealing key (the first check-in is sealed), no check-in."""
    session, sent = capturing_session()
    db = tmp_path / "nothing-here.db"
    prov.provision(prov.Request(central.url, new_token(central)), config_path=etc / "kiosk.toml",
                   store_path=db, session=session)
    assert sent == [{"enrolment_token": sent[0]["enrolment_token"]}]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM checkins").fetchone() == (0,)
        assert [k for (k,) in conn.execute("SELECT key FROM sync_meta")] == ["sealing_key"]


def test_revoked_then_reprovisioned_every_row_reaches_the_central(central, etc, kiosk):
    """The trial: token refused, rows keep coming, re-provisioning, then one sync round."""
    first, db = kiosk
    token = (etc / "device-token").read_text().strip()
    ids = record(db, first.device_id, "LS-A", 4)
    conn = central_db.connect(central.db_path)
    central_db.revoke_device(conn, first.device_id)
    conn.close()
    refused = sync_once(db_path=db, server_url=central.url, token=token)
    assert refused.error and refused.delivered == 0
    ids += record(db, first.device_id, "LS-A", 3, start=4)  # the kiosk keeps recording
    second = prov.provision(prov.Request(central.url, new_token(central, "LS-A", "A")),
                            config_path=etc / "kiosk.toml", replace_token=True)
    assert second.device_id != first.device_id
    new_token_value = (etc / "device-token").read_text().strip()
    done = sync_once(db_path=db, server_url=central.url, token=new_token_value)
    assert (done.delivered, done.remaining, done.dead_letter, done.error) == (7, 0, 0, None)
    assert states(db) == {"sent": 7}
    conn = central_db.connect(central.db_path)
    at_central = {r[0] for r in conn.execute("SELECT id FROM checkins").fetchall()}
    conn.close()
    assert set(ids) <= at_central


def test_ids_the_central_does_not_link_are_reported(central, etc, kiosk, caplog):
    """Rows of a device at another checkpoint cannot be delivered by this enrolment: say so."""
    first, db = kiosk
    elsewhere = prov.enrol(prov.Request(central.url, new_token(central, "HN-ELSEWHERE", "E")))
    record(db, elsewhere.device_id, "HN-ELSEWHERE", 1)
    record(db, first.device_id, "LS-A", 1)
    result = prov.provision(prov.Request(central.url, new_token(central, "LS-A", "A")),
                            config_path=etc / "kiosk.toml", replace_token=True)
    assert set(result.previous_device_ids) == {first.device_id, elsewhere.device_id}
    assert result.unlinked_device_ids == (elsewhere.device_id,)
    assert f"did not link previous device id(s) {elsewhere.device_id}" in caplog.text
