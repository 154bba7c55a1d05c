"""docs/api.yaml is a valid OpenAPI document and both sides keep to it.

Requests are the kiosk's own (rows from a real Store, in the wire format the sync worker
sends); responses come from the real reference server on 127.0.0.1.
"""

from pathlib import Path

import pytest
import requests
import yaml
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from kiosk.domain import model
from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer
from offline_queue.outbox import Outbox
from offline_queue.records import (
    DECISIONS,
    DIRECTIONS,
    KINDS,
    SOURCES,
    CheckIn,
    Direction,
    Kind,
    Outcome,
)
from offline_queue.store import Store
from tests.synchelp import give_sealing_key

REPO = Path(__file__).resolve().parents[1]
SPEC = yaml.safe_load((REPO / "docs" / "api.yaml").read_text(encoding="utf-8"))


def resolve(node):
    """Inline the document's local $refs (it has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = SPEC
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return resolve(target)
        return {k: resolve(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v) for v in node]
    return node


def check(instance, schema):
    OAS30Validator(resolve(schema)).validate(instance)


def response_schema(path, method, status):
    op = SPEC["paths"][path][method]
    return op["responses"][str(status)]["content"]["application/json"]["schema"]


def request_schema(path, method):
    return SPEC["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def test_the_document_is_valid_openapi():
    validate(SPEC)


def test_the_documented_vocabulary_is_the_code_s():
    """docs/api.yaml repeats the check-in vocabulary for other implementers; the code's
    single definition is offline_queue.records."""
    props = SPEC["components"]["schemas"]["CheckIn"]["properties"]
    assert tuple(props["direction"]["enum"]) == DIRECTIONS
    assert tuple(props["kind"]["enum"]) == KINDS
    assert tuple(props["decision"]["enum"]) == DECISIONS
    assert tuple(props["original_decision"]["enum"]) == (*DECISIONS, None)
    assert tuple(props["source"]["enum"]) == SOURCES
    # The kiosk's domain uses the same classes, not copies.
    assert (model.Direction, model.Kind, model.Outcome) == (Direction, Kind, Outcome)


def test_every_route_is_documented_and_every_documented_path_exists(tmp_path, db_target):
    with CentralServer(db_target) as server:
        rules = {(r.rule.replace("<", "{").replace(">", "}"), m.lower())
                 for r in server.app.url_map.iter_rules() if r.endpoint != "static"
                 for m in r.methods - {"HEAD", "OPTIONS"}}
    documented = {(p, m) for p, ops in SPEC["paths"].items() for m in ops}
    assert rules == documented


@pytest.fixture
def server(tmp_path, db_target):
    with CentralServer(db_target, admin_token="admin-secret") as s:
        yield s


def test_enrol_checkins_documents_and_report_keep_to_the_contract(server, tmp_path, db_target):
    db = central_db.connect(db_target)
    enrolment = central_db.create_enrolment_token(db, checkpoint_id="CP-1", name="Cổng 1")
    central_db.set_document(db, "policy", b'{"profile": "hospital"}')
    db.close()

    body = {"enrolment_token": enrolment}
    check(body, request_schema("/v1/devices/enrol", "post"))
    r = requests.post(f"{server.url}/v1/devices/enrol", json=body, timeout=10)
    assert r.status_code == 201
    check(r.json(), response_schema("/v1/devices/enrol", "post", 201))
    enrolled = r.json()
    again = requests.post(f"{server.url}/v1/devices/enrol", json=body, timeout=10)
    assert again.status_code == 403
    check(again.json(), response_schema("/v1/devices/enrol", "post", 403))

    kiosk_db = tmp_path / "kiosk.db"
    give_sealing_key(kiosk_db, server.url)  # what the kiosk's first sync keeps
    with Store(kiosk_db, device_id=enrolled["device_id"],
               checkpoint_id=enrolled["checkpoint_id"]) as store:
        first = store.record(CheckIn("in", "cccd", "001185012345",
                                     {"name": "Trần T*** B*** N*"}, "check", ("watchlist",)))
        store.record(CheckIn("in", "cccd", "001185012345", {}, "pass", ("officer_override",),
                             override_of=first, original_decision="check",
                             override_reason="seen ID"))
        store.record(CheckIn("out", "pc_covid", "162979388586171234", {}, "pass",
                             source="manual"))
    with Outbox(kiosk_db) as outbox:
        items = outbox.claim(10)
    assert all(i["person_key"] is None and i["sealed"].startswith("seal1.") for i in items)
    body = {"checkins": items}
    check(body, request_schema("/v1/checkins", "post"))
    headers = {"Authorization": f"Bearer {enrolled['device_token']}"}
    r = requests.post(f"{server.url}/v1/checkins", json=body, headers=headers, timeout=10)
    assert r.status_code == 200
    check(r.json(), response_schema("/v1/checkins", "post", 200))
    assert [x["status"] for x in r.json()["results"]] == ["accepted"] * 3

    r = requests.get(f"{server.url}/v1/documents/policy", headers=headers, timeout=10)
    assert r.status_code == 200 and r.headers["ETag"]
    r = requests.get(f"{server.url}/v1/documents/policy",
                     headers={**headers, "If-None-Match": r.headers["ETag"]}, timeout=10)
    assert r.status_code == 304

    r = requests.get(f"{server.url}/v1/report/scans", params={"days": 7},
                     headers={"Authorization": "Bearer admin-secret"}, timeout=10)
    assert r.status_code == 200
    check(r.json(), response_schema("/v1/report/scans", "get", 200))
    r = requests.get(f"{server.url}/v1/report/activity", params={"days": 7},
                     headers={"Authorization": "Bearer admin-secret"}, timeout=10)
    assert r.status_code == 200 and r.json()["checkpoints"][0]["scans"] >= 1
    check(r.json(), response_schema("/v1/report/activity", "get", 200))
    r = requests.get(f"{server.url}/v1/health", timeout=10)
    check(r.json(), response_schema("/v1/health", "get", 200))


def test_reenrol_publish_and_errors_keep_to_the_contract(tmp_path, db_target):
    from kiosk.domain.documents import VALIDATORS

    with CentralServer(db_target, admin_token="adm", validators=VALIDATORS) as server:
        db = central_db.connect(db_target)
        first = central_db.create_enrolment_token(db, checkpoint_id="CP-1", name="x")
        second = central_db.create_enrolment_token(db, checkpoint_id="CP-1", name="x")
        db.close()
        old = requests.post(f"{server.url}/v1/devices/enrol",
                            json={"enrolment_token": first}, timeout=10).json()
        body = {"enrolment_token": second, "previous_device_ids": [old["device_id"]]}
        check(body, request_schema("/v1/devices/enrol", "post"))
        r = requests.post(f"{server.url}/v1/devices/enrol", json=body, timeout=10)
        assert r.status_code == 201
        check(r.json(), response_schema("/v1/devices/enrol", "post", 201))
        bad = requests.post(f"{server.url}/v1/devices/enrol", data="[" * 100, timeout=10)
        assert bad.status_code == 400
        check(bad.json(), response_schema("/v1/devices/enrol", "post", 400))

        admin = {"Authorization": "Bearer adm"}
        r = requests.put(f"{server.url}/v1/documents/policy", data=b'{"profile": "office"}',
                         headers=admin, timeout=10)
        assert r.status_code == 200
        check(r.json(), response_schema("/v1/documents/{name}", "put", 200))
        r = requests.put(f"{server.url}/v1/documents/policy", data=b'{"profile": "x"}',
                         headers=admin, timeout=10)
        assert r.status_code == 400
        check(r.json(), response_schema("/v1/documents/{name}", "put", 400))
        r = requests.get(f"{server.url}/v1/report/scans", params={"days": "0"}, headers=admin,
                         timeout=10)
        assert r.status_code == 400
        check(r.json(), response_schema("/v1/report/scans", "get", 400))


def test_a_busy_central_answers_503_with_retry_after_by_the_contract(db_target):
    """Issue 12: past the queue limit a post is refused before any work, as documented."""
    with CentralServer(db_target, queue_limit=0) as server:
        server.admission.backlog = lambda: 1  # one request waiting: over a limit of 0
        r = requests.post(f"{server.url}/v1/checkins", json={"checkins": []}, timeout=10)
    assert r.status_code == 503
    assert 1 <= int(r.headers["Retry-After"]) <= 121
    check(r.json(), response_schema("/v1/checkins", "post", 503))


def test_dashboard_pages_answer_what_the_contract_documents(db_target):
    """Issue 12: each documented dashboard GET page answers a documented status and
    content type, without a session (the login redirect) and with an administrator's."""
    from offline_queue.central.dashboard.users import add_user

    with central_db.connect(db_target) as conn:
        add_user(conn, "ada", "administrator", "a long password")
    pages = [p for p, ops in SPEC["paths"].items() if p.startswith("/dashboard/")
             and "get" in ops]
    with CentralServer(db_target) as server:
        anonymous = requests.Session()
        for page in pages:
            r = anonymous.get(server.url + page, allow_redirects=False, timeout=10)
            assert str(r.status_code) in SPEC["paths"][page]["get"]["responses"], page
        session = requests.Session()
        form = session.get(f"{server.url}/dashboard/login", timeout=10).text
        token = form.split('name="csrf_token" value="')[1].split('"')[0]
        r = session.post(f"{server.url}/dashboard/login", timeout=10, data={
            "username": "ada", "password": "a long password", "csrf_token": token})
        assert r.url.endswith("/dashboard/activity")
        for page in pages:
            r = session.get(server.url + page, allow_redirects=False, timeout=10)
            answers = resolve(SPEC["paths"][page]["get"]["responses"])
            assert str(r.status_code) in answers, page
            content = answers[str(r.status_code)].get("content")
            if content:
                assert r.headers["Content-Type"].split(";")[0] in content, page
