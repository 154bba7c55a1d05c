"""Issue 13, item 2: the status and risk-level documents, from the builder's import to a
kiosk decision, and end to end through a kiosk syncing with the real central server."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from central_helpers import enrol
from policy_people import AT, CCCD, ISSUED, QID, cccd

from kiosk import config as config_mod
from kiosk.domain.credentials import recognise
from kiosk.domain.documents import VALIDATORS, DocumentError, load
from kiosk.domain.model import Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.status import (
    HealthStatus,
    RiskLevels,
    StatusList,
    person_digest,
    read_import,
    read_levels,
)
from kiosk.domain.watchlist import Watchlist
from kiosk.domain.watchlist import derive as watchlist_derive
from kiosk.runtime.build import build
from kiosk.runtime.capture import Decoded
from kiosk.runtime.checker import LiveChecker
from kiosk.runtime.events import ScanResult
from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer
from offline_queue.documents import Document
from offline_queue.outbox import Outbox
from offline_queue.store import Store

GOOD = StatusList.build([((CCCD, QID), HealthStatus(declared_at=AT - timedelta(days=1),
                                                    origin="00004", doses=2,
                                                    last_dose=date(2022, 3, 1)))],
                        issued_at=ISSUED)


def doc(**changes) -> bytes:
    """The good document with top-level members or its first record's fields changed."""
    body = json.loads(GOOD)
    record = changes.pop("record", {})
    body["records"][0].update(record)
    body.update(changes)
    return json.dumps(body).encode()


def test_the_status_hash_is_the_watchlists():
    salt = b"0123456789abcdef"
    assert person_digest(salt, "0011 8501 2345") == watchlist_derive(CCCD, salt)
    wl = Watchlist(salt=salt, entries={}, issued_at=AT, expires_at=AT)
    assert person_digest(salt, CCCD) == wl.digest(CCCD)


def test_the_document_holds_hashes_never_numbers():
    assert CCCD.encode() not in GOOD and QID.encode() not in GOOD
    status = load("status", GOOD)
    assert status.lookup([QID]) == status.lookup([CCCD]) is not None
    assert status.lookup(["079185001234"]) is None


@pytest.mark.parametrize(("body", "needle"), [
    (doc(record={"birth_year": 2031}),
     "status.records[0].birth_year is 2031; expected a whole number 1900..2022"),
    (doc(record={"doses": 14}), "status.records[0].doses is 14; expected a whole number 0..9"),
    (doc(record={"doses": "two"}), "status.records[0].doses is 'two'"),
    (doc(record={"last_dose": "2019-05-01"}),
     "status.records[0].last_dose is '2019-05-01'; expected a date from 2020-12-01"),
    (doc(record={"last_dose": "2022-09-01"}), "status.records[0].last_dose is '2022-09-01'"),
    (doc(record={"from": "Hà Nội"}), "status.records[0].from is 'Hà Nội'; expected a commune"),
    (doc(record={"test": {"type": "antibody", "at": "2022-05-31T08:00:00+07:00"}}),
     "status.records[0].test.type is 'antibody'; choose one of pcr, rapid_antigen"),
    (doc(record={"declared_at": "yesterday"}), "status.records[0].declared_at is 'yesterday'"),
    (doc(record={"vaccinated": True}),
     "status.records[0].vaccinated is not a status field; valid fields: declared_at"),
    (doc(record={"h": ["abc"]}), "status.records[0].h is ['abc']; expected a list of 64-hex"),
    (doc(salt="zz"), "status.salt is 'zz'"),
    (doc(version=2), "status.version is 2; this kiosk reads version 1"),
    (doc(expires_at="2022-05-01T00:00:00+07:00"), "status.expires_at '2022-05-01T00:00:00+07:00'"
                                                  " is before issued_at"),
    (doc(people=[]), "status.people is not a member of a status document"),
])
def test_a_status_record_with_nonsense_is_refused_naming_the_field(body, needle):
    with pytest.raises(DocumentError) as e:
        VALIDATORS["status"](body)
    assert needle in str(e.value) and "document 'status' cannot be applied" in str(e.value)


def test_a_record_with_no_facts_is_refused():
    body = json.loads(GOOD)
    body["records"][0] = {"h": body["records"][0]["h"], "birth_year": 1985}
    with pytest.raises(DocumentError, match=r"status\.records\[0\] has no facts"):
        VALIDATORS["status"](json.dumps(body).encode())


@pytest.mark.parametrize(("levels", "needle"), [
    ({"4": 3}, "risk_levels.levels has the key '4'; a commune code is 5 digits"),
    ({"00004": 5}, "risk_levels.levels['00004'] is 5; expected a level 1..4"),
    ({"00004": True}, "risk_levels.levels['00004'] is True"),
])
def test_a_bad_risk_level_is_refused_naming_the_commune(levels, needle):
    body = json.dumps({"version": 1, "issued_at": ISSUED.isoformat(),
                       "expires_at": AT.isoformat(), "levels": levels}).encode()
    with pytest.raises(DocumentError) as e:
        VALIDATORS["risk_levels"](body)
    assert needle in str(e.value)


def test_risk_levels_rows_for_the_builder():
    levels, bad = read_levels("commune,level\n00004,3\n# a comment\n\n00007,9\n123,1\n")
    assert levels == {"00004": 3}
    assert [b.row for b in bad] == [5, 6]


def test_builder_import_to_validator_to_a_kiosk_decision():
    """The round trip: a province's CSV, the builder, the kiosk's loader, the decision."""
    text = ("ids,declared_at,from,doses,last_dose,test_type,tested_at,birth_year\n"
            f"{CCCD} {QID},2022-05-31 09:00,00004,2,2022-03-01,,,\n"
            "001310012345,2022-05-31 10:00,00004,,,,,2010\n"
            "079185001234,2022-05-31 10:00,00004,,,pcr,2022-05-31T20:00,\n")
    people, bad = read_import(text, fmt="csv", now=ISSUED)
    assert bad == []
    assert people[0][1].declared_at == datetime(2022, 5, 31, 2, 0, tzinfo=UTC)  # Vietnam time
    body = StatusList.build(people, issued_at=ISSUED)
    VALIDATORS["status"](body)
    checker = Checker(policy=Policy.load("border", {"watchlist": False, "rules": {
        "origin": False}}), status=load("status", body))
    for code in (cccd(), f"******012345|TRAN THI BICH NGOC|1985-**-**|0|{QID}|",
                 cccd("001310012345", "02022010"), cccd("079185001234")):
        assert checker.decide(recognise(code), at=AT) .outcome is Outcome.PASS, code
    assert checker.decide(recognise(cccd("001185099999")), at=AT).reasons == (
        "declaration_missing", "health_proof_missing")


def test_the_json_import_takes_the_same_fields():
    rows = [{"ids": [CCCD], "declared_at": "2022-05-31T09:00:00+07:00", "doses": 2,
             "last_dose": "2022-03-01"}, {"ids": [CCCD], "doses": 2}, ["x"]]
    people, bad = read_import(json.dumps(rows), fmt="json", now=ISSUED)
    assert len(people) == 1
    assert [str(b) for b in bad] == [
        "row 2: last_dose is missing; a record with doses = 2 needs the date of the last dose",
        "row 3: is ['x'], expected an object"]


# -- applied on the kiosk: a bad version is not applied, the previous one stays ---------------


def store_document(db, name: str, body: bytes, at: datetime) -> None:
    with Outbox(db) as outbox:
        outbox.apply_documents([Document(name, body, f"{name}-{at:%H%M%S}", at, None)], [], at)


def test_a_status_document_that_fails_is_not_applied_and_the_last_stays(tmp_path):
    db = tmp_path / "k.db"
    cfg = config_mod.Config().replace(store={"path": str(db)},
                                      policy={"profile": "border", "watchlist": False,
                                              "rules": {"origin": False}})
    with Store(db, device_id="d", checkpoint_id="c") as store:
        live = LiveChecker(cfg, store, refresh_seconds=0)
        assert live.decide(recognise(cccd()), at=AT).reasons == ("status_missing",)
        store_document(db, "status", GOOD, ISSUED)
        assert live.decide(recognise(cccd()), at=AT).outcome is Outcome.PASS
        store_document(db, "status", doc(record={"birth_year": 2031}), AT)
        assert live.decide(recognise(cccd()), at=AT).outcome is Outcome.PASS  # the last good
        assert "birth_year is 2031" in live.document_errors()["status"]
        assert live.document_times()["status"] == ISSUED  # how old the one in force is
    # Once its expiry passes, someone not in it may have declared since: check.
    stale = Checker(policy=live.policy, status=load("status", GOOD))
    later = AT + timedelta(days=2)
    assert stale.decide(recognise(cccd("079185001234")), at=later).reasons == ("status_stale",)


# -- end to end: publish a status document at the central, one sync, the decision changes -----


def wait_for(condition, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_publishing_a_status_document_turns_check_into_pass_after_one_sync(tmp_path):
    now = datetime.now(UTC)
    with CentralServer(tmp_path / "central.db", validators=VALIDATORS) as server:
        device = enrol(server, tmp_path / "central.db", "CP-STATUS")
        token = tmp_path / "token"
        token.write_text(device["device_token"], encoding="utf-8")
        with central_db.connect(tmp_path / "central.db") as cdb:
            central_db.set_document(cdb, "policy", json.dumps(
                {"profile": "border", "watchlist": False}).encode(), validators=VALIDATORS)
            central_db.set_document(cdb, "risk_levels", RiskLevels.build(
                {"00004": 1}, issued_at=now), validators=VALIDATORS)
        cfg = config_mod.Config().replace(
            device={"id": device["device_id"], "checkpoint_id": device["checkpoint_id"]},
            store={"path": str(tmp_path / "kiosk.db")},
            sync={"server_url": server.url, "token_file": str(token)},
            signals={"enabled": False},
            policy={"profile": "hospital"})
        results: list[ScanResult] = []
        with contextlib.ExitStack() as stack:
            parts = build(cfg, stack, with_camera=False, parts=_fast_sync())
            parts.loop.watch(results.append)
            checker = parts.checker
            assert isinstance(checker, LiveChecker)

            def in_force(name: str) -> bool:
                checker.refresh()  # as each decision does (at most every 2 s)
                return checker.document_times()[name] is not None

            assert wait_for(lambda: in_force("risk_levels") and in_force("policy"))
            assert checker.policy.profile == "border"

            def scan(code: str) -> ScanResult:
                n = len(results)
                parts.loop.events.put(Decoded(code.encode(), code, (), time.monotonic_ns(),
                                              time.monotonic_ns()))
                assert wait_for(lambda: bool(parts.loop.step(0.05)) and len(results) > n
                                or len(results) > n)
                return results[-1]

            first = scan(cccd())
            assert first.decision.outcome is Outcome.CHECK
            assert first.decision.reasons == ("status_missing",)

            facts = HealthStatus(declared_at=now - timedelta(hours=3), origin="00004",
                                 test_type="pcr", tested_at=now - timedelta(hours=10))
            with central_db.connect(tmp_path / "central.db") as cdb:
                central_db.set_document(cdb, "status", StatusList.build(
                    [((CCCD,), facts)], issued_at=now), validators=VALIDATORS)
            assert wait_for(lambda: in_force("status"))
            time.sleep(3.1)  # past the dedupe window: the same card shown again is a new scan
            second = scan(cccd())
            assert (second.decision.outcome, second.decision.reasons) == (Outcome.PASS, ())
            assert second.decision.found["negative_test"].startswith("pcr ")
    assert first.checkin_id and second.checkin_id  # both recorded


def _fast_sync():
    from kiosk.runtime.build import Supplied

    return Supplied(sync_options={"boot_jitter": 0.0, "link_jitter": 0.0, "idle_interval": 0.2,
                                  "documents_interval": 0.2})

