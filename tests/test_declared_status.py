"""Issue 13: a person declared at one kiosk is known at the next after sync.

The central folds the declared check-ins it stores into the status document it publishes
(``offline_queue.central.people`` with ``kiosk.domain.declared_status.DeclarationFolder``),
merged with the province's import, hashed as kiosks match, expired and retained as the
province set.  End to end: kiosk A declares, syncs; kiosk B syncs and scans the person's
CCCD; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from central_helpers import enrol, item, post, statuses

from kiosk import config as config_mod
from kiosk.domain.declaration import check
from kiosk.domain.declared_status import DEFAULT_VALID_DAYS, DeclarationFolder, valid_days_of
from kiosk.domain.documents import VALIDATORS
from kiosk.domain.status import HealthStatus, StatusList
from kiosk.domain.watchlist import VIETNAM, local_date
from kiosk.runtime.build import Supplied, build
from kiosk.runtime.events import Declared, ScanResult
from kiosk.testing.samples import SAMPLES
from offline_queue.central import db as central_db
from offline_queue.central import people, queries
from offline_queue.central.server import CentralServer

NOW = datetime(2022, 6, 1, 8, 0, tzinfo=VIETNAM)
DECLARED_CCCD = "001185012345"  # the person of the "cccd" sample
OTHER_CCCD = "079090001234"  # the person of the "watchlisted" sample (no watchlist here)
PAYLOADS = {s.name: s.payload for s in SAMPLES}
BORDER_OUT = json.dumps({"profile": "border", "watchlist": False}).encode()


def fold(declarations, *, imported=None, policy=None, now=NOW, folder=None):
    folder = folder or DeclarationFolder()
    return folder(imported=imported, policy=policy, declarations=declarations, now=now)


def test_a_declaration_is_hashed_as_the_kiosk_matches_and_lasts_the_policys_days():
    done = fold([(DECLARED_CCCD, NOW - timedelta(hours=2), 1985)],
                policy=json.dumps({"profile": "border", "rules": {
                    "declaration": {"use": "required", "valid_days": 5}}}).encode())
    status = StatusList.from_json(done.body)
    facts = status.lookup([DECLARED_CCCD])
    assert facts is not None and facts.declared
    assert facts.declared_at == NOW - timedelta(hours=2)
    assert facts.declared_until == local_date(NOW - timedelta(hours=2)) + timedelta(days=5)
    assert facts.birth_year == 1985
    assert status.lookup([OTHER_CCCD]) is None
    assert (done.records, done.declarations, done.skipped, done.valid_days) == (1, 1, 0, 5)
    assert DECLARED_CCCD.encode() not in done.body


def test_without_a_policy_a_declaration_lasts_the_platforms_three_days():
    assert valid_days_of(None) == DEFAULT_VALID_DAYS == 3
    assert valid_days_of(b"{not json") == 3


def test_expired_and_impossible_declarations_are_left_out():
    done = fold([(DECLARED_CCCD, NOW - timedelta(days=4), None),  # past 3 days
                 (OTHER_CCCD, NOW + timedelta(days=3), None),  # a clock far ahead
                 ("", NOW, None)])
    assert (done.records, done.declarations, done.skipped) == (0, 0, 3)
    StatusList.from_json(done.body)  # still a document kiosks apply


def test_the_longer_valid_declaration_of_a_person_wins_and_the_import_is_kept():
    imported = StatusList.build([
        ([DECLARED_CCCD, "GD4790123456789"], HealthStatus(
            declared_until=local_date(NOW) + timedelta(days=10), doses=2,
            last_dose=date(2022, 3, 1))),
        ([OTHER_CCCD], HealthStatus(declared_at=NOW - timedelta(days=2), origin="00004")),
    ], issued_at=NOW - timedelta(hours=1), expires_at=NOW + timedelta(hours=20))
    done = fold([(DECLARED_CCCD, NOW - timedelta(hours=1), None),
                 (OTHER_CCCD, NOW - timedelta(hours=5), None),
                 (OTHER_CCCD, NOW - timedelta(hours=3), None)], imported=imported)
    status = StatusList.from_json(done.body)
    first = status.lookup(["GD4790123456789"])  # by the import's other number
    assert first is not None and first.doses == 2
    # Imported until day +10 outlasts a kiosk's 3 days: the import's stays.
    assert first.declared_until == local_date(NOW) + timedelta(days=10)
    second = status.lookup([OTHER_CCCD])
    assert second is not None and second.declared_at == NOW - timedelta(hours=3)
    assert second.origin == "00004"  # the import's other facts stay
    assert done.records == 2
    assert status.expires_at == NOW + timedelta(hours=20)  # the import's freshness
    assert json.loads(done.body)["salt"] == json.loads(imported)["salt"]


def test_a_declaration_is_hashed_once_while_the_salt_stays():
    folder = DeclarationFolder()
    rows = [(DECLARED_CCCD, NOW - timedelta(hours=1), None)]
    fold(rows, folder=folder)
    fold(rows + [(OTHER_CCCD, NOW, None)], folder=folder)
    assert folder.hashed == 2


# --- the central: what it stores after ingest, retention, republishing -------------------


def declared_row(device, key, at, **kw):
    return item(device, source="declared", person_key=key, recorded_at=at.isoformat(),
                display={"name": "N***", "birth_year": "1985"}, **kw)


def published_status(target) -> StatusList | None:
    with central_db.connect(target) as cdb:
        found = central_db.get_document_record(cdb, "status")
    return None if found is None else StatusList.from_json(found.body)


def test_the_central_folds_stored_declarations_not_overrides_and_honours_retention(
        db_target):
    now = datetime.now(UTC)
    with CentralServer(db_target, validators=VALIDATORS) as server:
        device = enrol(server, db_target, "CP-A")
        original = declared_row(device, DECLARED_CCCD, now - timedelta(hours=30))
        override = declared_row(device, OTHER_CCCD, now - timedelta(hours=1),
                                override_of=original["id"], original_decision="check",
                                override_reason="officer confirmed")
        old = declared_row(device, "031095004321", now - timedelta(hours=60))
        assert statuses(post(server, device, [original, override, old])) == ["accepted"] * 3
    folder = DeclarationFolder()
    with central_db.connect(db_target) as cdb:
        assert people.republish(cdb, folder, validators=VALIDATORS, now=now) is not None
        # Nothing changed since: not published again.
        assert people.republish(cdb, folder, validators=VALIDATORS, now=now) is None
    status = published_status(db_target)
    assert status is not None
    assert status.lookup([DECLARED_CCCD]) is not None
    assert status.lookup(["031095004321"]) is not None  # 60 h: within 3 days
    assert status.lookup([OTHER_CCCD]) is None  # an override is not a declaration
    with central_db.connect(db_target) as cdb:
        # The province keeps check-ins two days (the last retention run's setting): a
        # declaration older than that is not published, even before the rows are deleted.
        cdb.execute("INSERT INTO retention_runs (ran_at, cutoff, days, deleted, "
                    "conflicts_deleted) VALUES (?, 0, 2, 0, 0)",
                    [(now - timedelta(days=10)).isoformat()])
        assert people.retention_days(cdb) == 2
        assert people.republish(cdb, folder, validators=VALIDATORS, now=now) is not None
    status = published_status(db_target)
    assert status is not None and status.lookup([DECLARED_CCCD]) is not None
    assert status.lookup(["031095004321"]) is None
    with central_db.connect(db_target) as cdb:
        queries.apply_retention(cdb, days=1, now=now)
        people.republish(cdb, folder, validators=VALIDATORS, now=now)
    status = published_status(db_target)
    assert status is not None and status.lookup([DECLARED_CCCD]) is None


def test_a_status_import_is_kept_and_published_with_the_declarations(tmp_path):
    target = tmp_path / "c.db"
    now = datetime.now(UTC)
    imported = StatusList.build([([OTHER_CCCD], HealthStatus(doses=2,
                                                            last_dose=date(2022, 3, 1)))],
                                issued_at=now, valid_for=timedelta(hours=24))
    folder = DeclarationFolder()
    with CentralServer(target, validators=VALIDATORS) as server:
        device = enrol(server, target, "CP-A")
        assert statuses(post(server, device, [declared_row(device, DECLARED_CCCD, now)])) \
            == ["accepted"]
    with central_db.connect(target) as cdb:
        people.set_import(cdb, imported, fold=folder, validators=VALIDATORS)
        assert people.get_import(cdb).body == imported
        with pytest.raises(ValueError, match="status"):
            people.set_import(cdb, b'{"version": 1}', fold=folder, validators=VALIDATORS)
        assert people.get_import(cdb).body == imported  # a bad import changes nothing
    status = published_status(target)
    assert status is not None
    assert status.lookup([OTHER_CCCD]).doses == 2
    assert status.lookup([DECLARED_CCCD]).declared


def test_a_status_put_through_the_api_is_the_import(tmp_path):
    import requests

    target = tmp_path / "c.db"
    imported = StatusList.build([([OTHER_CCCD], HealthStatus(doses=1,
                                                            last_dose=date(2022, 3, 1)))])
    with CentralServer(target, validators=VALIDATORS, admin_token="admin",
                       fold=DeclarationFolder()) as server:
        answer = requests.put(server.url + "/v1/documents/status", data=imported, timeout=10,
                              headers={"Authorization": "Bearer admin"})
        assert answer.status_code == 200, answer.text
    with central_db.connect(target) as cdb:
        assert people.get_import(cdb).body == imported


# --- end to end: kiosk A declares, kiosk B knows ------------------------------------------


def wait_for(condition, seconds=30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


SYNC = {"boot_jitter": 0.0, "link_jitter": 0.0, "idle_interval": 0.2,
        "documents_interval": 0.2}


def kiosk_config(tmp_path, server, device, name, direction):
    token = tmp_path / f"{name}.token"
    token.write_text(device["device_token"], encoding="utf-8")
    return config_mod.Config().replace(
        device={"id": device["device_id"], "checkpoint_id": device["checkpoint_id"],
                "direction": direction},
        store={"path": str(tmp_path / f"{name}.db")},
        sync={"server_url": server.url, "token_file": str(token)},
        signals={"enabled": False}, policy={"profile": "hospital"})


def test_declared_at_kiosk_a_passes_the_declaration_rule_at_kiosk_b(db_target, tmp_path):
    with CentralServer(db_target, validators=VALIDATORS, fold=DeclarationFolder()) as server:
        a, b = enrol(server, db_target, "CP-A"), enrol(server, db_target, "CP-B")
        with central_db.connect(db_target) as cdb:
            central_db.set_document(cdb, "policy", BORDER_OUT, validators=VALIDATORS)
        with contextlib.ExitStack() as stack:
            kiosk_a = build(kiosk_config(tmp_path, server, a, "a", "out"), stack,
                            with_camera=False, parts=Supplied(sync_options=SYNC))
            kiosk_b = build(kiosk_config(tmp_path, server, b, "b", "out"), stack,
                            with_camera=False, parts=Supplied(sync_options=SYNC))
            seen_a: list[ScanResult] = []
            kiosk_a.loop.watch(seen_a.append)

            def border(parts) -> bool:
                parts.checker.refresh(force=True)
                return parts.checker.policy.profile == "border"

            assert wait_for(lambda: border(kiosk_a) and border(kiosk_b))
            person = check({"name": "Trần Thị Bích Ngọc", "birth_year": "1985",
                            "sex": "female", "document": DECLARED_CCCD, "origin": "Lạng Sơn",
                            "destination": "Hà Nội"}, today=datetime.now(VIETNAM).date(),
                           officer="hn-017")
            kiosk_a.loop.events.put(Declared(person))
            assert wait_for(lambda: bool(kiosk_a.loop.step(0.05)) and seen_a or bool(seen_a))
            assert seen_a[0].source == "declared" and seen_a[0].recorded

            def b_knows() -> bool:
                kiosk_b.checker.refresh(force=True)
                status = kiosk_b.checker.checker.status
                return status is not None and status.lookup([DECLARED_CCCD]) is not None

            # A syncs (poked by the record), the central folds, B's next document sync.
            assert wait_for(b_knows), "kiosk B never received the declaration"
            declared = kiosk_b.loop.process(PAYLOADS["cccd"])
            assert declared.credential.person_key == DECLARED_CCCD
            assert "declaration_missing" not in declared.decision.reasons
            assert declared.decision.outcome.value == "pass", declared.decision
            other = kiosk_b.loop.process(PAYLOADS["watchlisted"])
            assert other.decision.outcome.value in ("check", "stop")
            assert "declaration_missing" in other.decision.reasons


def test_the_republisher_runs_on_its_own_and_on_a_poke(tmp_path):
    target = tmp_path / "c.db"
    with CentralServer(target, validators=VALIDATORS) as server:
        device = enrol(server, target, "CP-A")
        post(server, device, [declared_row(device, DECLARED_CCCD, datetime.now(UTC))])
    with people.Republisher(target, DeclarationFolder(), validators=VALIDATORS,
                            every=60.0, min_gap=0.0) as republisher:
        assert wait_for(lambda: republisher.published == 1)
        with CentralServer(target, validators=VALIDATORS) as server:
            post(server, device, [declared_row(device, OTHER_CCCD, datetime.now(UTC),
                                               id=str(uuid.uuid4()))])
        republisher.poke()
        assert wait_for(lambda: republisher.published == 2, seconds=10)
    status = published_status(target)
    assert status is not None and status.lookup([OTHER_CCCD]) is not None
