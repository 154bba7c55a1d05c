"""Issue 14 #1 and "Bad input": a document changed in transit changes no decision.

A real central (its key in a file), a real kiosk queue database, the kiosk's own
validators and decision maker (``LiveChecker``), and a proxy between them that changes the
watchlist's bytes, cuts them, strips the signature, replays an older signed version or
signs other bytes with a key of its own.  Each time: the kiosk refuses it, the last good
watchlist stays in force (the person is still stopped), and the reason is in the sync
result, the worker's status (the status strip) and ``status``.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from kiosk import config as config_mod
from kiosk.domain.credentials import recognise
from kiosk.domain.documents import VALIDATORS
from kiosk.domain.watchlist import Watchlist
from kiosk.ops import status as status_mod
from kiosk.runtime.checker import LiveChecker
from kiosk.testing.samples import SAMPLES
from offline_queue.central import db as central_db
from offline_queue.central.keys import KeyFile
from offline_queue.central.server import CentralServer
from offline_queue.outbox import Outbox
from offline_queue.store import Store
from offline_queue.sync import SyncWorker, sync_once
from tests.central_helpers import enrol
from tests.faultproxy import TAMPER_FAULTS, FaultProxy
from tests.test_sync import FAST, wait_for

CCCD = next(s for s in SAMPLES if s.name == "cccd").payload
PERSON = recognise(CCCD).person_key


def listing(*numbers: str) -> bytes:
    return Watchlist.build([(n, date(2099, 1, 1)) for n in numbers],
                           valid_for=timedelta(days=30))


def empty_watchlist(name: str, body: bytes) -> bytes:
    """What an attacker puts in place of the watchlist: valid, and it stops no one."""
    return listing()


class Rig:
    """A central, the proxy in front of it and an enrolled kiosk's queue and checker."""

    def __init__(self, tmp_path, central: CentralServer, proxy: FaultProxy) -> None:
        self.tmp, self.central, self.proxy = tmp_path, central, proxy
        self.device = enrol(central, tmp_path / "central.db")
        self.pin = self.device["central_key"]["public_key"]
        self.db = tmp_path / "kiosk.db"
        Store(self.db, device_id=self.device["device_id"],
              checkpoint_id=self.device["checkpoint_id"]).close()
        cfg_path = tmp_path / "kiosk.toml"
        cfg_path.write_text(f'[store]\npath = "{self.db}"\n[policy]\nprofile = "hospital"\n'
                            f'[sync]\ncentral_key = "{self.pin}"\n', encoding="utf-8")
        self.cfg = config_mod.load(cfg_path, environ={})

    def publish(self, name: str, body: bytes) -> None:
        with central_db.connect(self.tmp / "central.db") as cdb:
            central_db.set_document(cdb, name, body, validators=VALIDATORS)

    def sync(self):
        return sync_once(db_path=self.db, server_url=self.proxy.url,
                         token=self.device["device_token"], validators=VALIDATORS,
                         central_key=self.pin)

    def decision(self):
        with Store(self.db, device_id="d", checkpoint_id="c") as store:
            live = LiveChecker(self.cfg, store, refresh_seconds=0)
            return live.decide(recognise(CCCD), at=datetime.now(UTC))

    def stored(self, name: str) -> bytes:
        with Outbox(self.db) as outbox:
            return outbox.document(name).body


@pytest.fixture
def rig(tmp_path):
    fault = {"now": "pass"}
    with CentralServer(tmp_path / "central.db", validators=VALIDATORS,
                       signing_key=KeyFile(tmp_path / "central.key")) as central, \
            FaultProxy((central.host, central.port), lambda: fault["now"],
                       rewrite=empty_watchlist) as proxy:
        r = Rig(tmp_path, central, proxy)
        r.fault = fault
        yield r


# What the kiosk says for each fault (the reason a person reads in `status`).
REASONS = {"tamper": "signature does not match", "cut_body": "signature does not match",
           "strip_signature": "unsigned", "replay": "older than version",
           "foreign_key": "no key rotation signed by the pinned key"}


@pytest.mark.parametrize("fault", TAMPER_FAULTS)
def test_a_document_changed_in_transit_changes_no_decision(rig, fault):
    assert set(REASONS) == set(TAMPER_FAULTS)
    # An empty list first (the one a replay brings back), then the list that stops him.
    rig.publish("watchlist", listing())
    assert rig.sync().ok
    assert rig.decision().outcome.value == "pass"
    rig.publish("watchlist", listing(PERSON))
    assert rig.sync().ok
    before = rig.decision()
    assert before.reasons == ("watchlist",)
    in_force = rig.stored("watchlist")

    rig.publish("watchlist", listing(PERSON, "079190000001"))  # the next version...
    rig.fault["now"] = fault  # ...changed on the way
    result = rig.sync()
    assert rig.proxy.tampered[fault] == 1
    assert not result.ok and result.documents_changed == []
    assert len(result.document_errors) == 1
    assert result.document_errors[0].startswith("watchlist: ")
    assert REASONS[fault] in result.error
    # The previous one stays; the decision is the same.
    assert rig.stored("watchlist") == in_force
    after = rig.decision()
    assert (after.outcome, after.reasons) == (before.outcome, before.reasons)
    # `status` shows why (what the technician reads), escaped, one line.
    report = status_mod.queue(rig.db, 0)
    assert report["document_errors"][0][0] == "watchlist"
    assert REASONS[fault] in report["document_errors"][0][1]
    lines = status_mod.warnings({**_quiet_report(), "queue": report})
    assert any(line.startswith("document watchlist refused, the previous one stays")
               and REASONS[fault] in line for line in lines)

    # The status strip: the worker reports the same refusal.
    with SyncWorker(db_path=rig.db, server_url=rig.proxy.url,
                    token=rig.device["device_token"], validators=VALIDATORS,
                    central_key=rig.pin, **FAST) as worker:
        assert wait_for(lambda: worker.status().document_errors, timeout=10)
        name, why = worker.status().document_errors[0]
    assert name == "watchlist" and REASONS[fault] in why and "\n" not in why

    # The path heals: the genuine next version is applied and the refusal forgotten.
    rig.fault["now"] = "pass"
    healed = rig.sync()
    assert healed.ok and healed.documents_changed == ["watchlist"]
    assert rig.decision().reasons == ("watchlist",)
    assert status_mod.queue(rig.db, 0)["document_errors"] == []


def _quiet_report() -> dict:
    return {"clock": {"synced": True}, "under_voltage": {"now": False, "since_boot": False}}


def test_an_unsigned_central_is_refused_and_the_kiosk_keeps_deciding(tmp_path):
    """A kiosk pinned to a key meets a central that signs nothing (a downgrade, or an old
    central): every document refused, the config's policy decides, nothing stops."""
    rig_dir = tmp_path
    with CentralServer(rig_dir / "central.db", validators=VALIDATORS) as central, \
            FaultProxy((central.host, central.port), lambda: "strip_signature") as proxy:
        r = Rig(rig_dir, central, proxy)
        r.publish("policy", b'{"profile": "hospital", "watchlist": false}')
        r.publish("watchlist", listing())
        result = r.sync()
        assert not result.ok and sorted(e.split(":")[0] for e in result.document_errors) == \
            ["policy", "watchlist"]
        assert "unsigned" in result.error
        with Outbox(r.db) as outbox:
            assert outbox.document("policy") is None
        # No watchlist in force: the hospital policy sends him to an officer, as before.
        assert r.decision().reasons == ("watchlist_missing",)


def test_a_version_equal_to_the_one_in_force_with_other_bytes_is_refused(rig):
    """The central's own key over other bytes at the version in force (a forked or restored
    central): no update; a higher version from the central is."""
    rig.publish("watchlist", listing(PERSON))
    assert rig.sync().ok
    with Outbox(rig.db) as outbox:
        versions = json.loads(outbox.meta()["document_versions"])
    assert versions["watchlist"] > 1_600_000_000_000  # at least the time in ms
    in_force = rig.stored("watchlist")
    rig.proxy.attacker_key = load_pem_private_key(
        (rig.tmp / "central.key").read_bytes(), password=None)
    rig.proxy.foreign_version_offset = -1  # the next publication's version minus one
    rig.publish("watchlist", listing(PERSON, "079190000002"))
    with central_db.connect(rig.tmp / "central.db") as cdb:
        published = central_db.get_document_record(cdb, "watchlist").version
    rig.proxy.foreign_version_offset = versions["watchlist"] - published
    rig.fault["now"] = "foreign_key"
    result = rig.sync()
    assert "is the version in force but with other bytes" in result.error
    assert rig.stored("watchlist") == in_force
    assert rig.decision().reasons == ("watchlist",)
    with Outbox(rig.db) as outbox:
        assert json.loads(outbox.meta()["document_versions"]) == versions
