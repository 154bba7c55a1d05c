"""The reference central server and its CLI, on real SQLite and a real HTTP server."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.domain.watchlist import Watchlist
from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer
from offline_queue.errors import StoreError

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(tmp_path, db_target):
    with CentralServer(db_target, admin_token="adm") as s:
        yield s


def enrol(server, checkpoint="CP-1") -> dict:
    with central_db.connect(server.target) as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id=checkpoint, name=checkpoint)
    return requests.post(server.url + "/v1/devices/enrol", json={"enrolment_token": token},
                         timeout=5).json()


def item(device: dict, **kw) -> dict:
    base = {
        "id": str(uuid.uuid4()), "device_id": device["device_id"],
        "checkpoint_id": device["checkpoint_id"], "direction": "in", "kind": "cccd",
        "person_key": "001085012345", "display": {"name": "N***"}, "decision": "pass",
        "reasons": [], "source": "scan", "override_of": None, "original_decision": None,
        "override_reason": None, "recorded_at": datetime.now(UTC).isoformat(),
        "monotonic_ns": 1, "boot_id": "b", "clock_synced": True, "corrected_at": None,
        "app_version": "0.1.0",
    }
    base.update(kw)
    return base


def post(server, device, items):
    return requests.post(server.url + "/v1/checkins", json={"checkins": items}, timeout=5,
                         headers={"Authorization": f"Bearer {device['device_token']}"})


def test_enrolment_token_is_single_use(server, tmp_path, db_target):
    with central_db.connect(db_target) as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id="CP-1", name="x")
    first = requests.post(server.url + "/v1/devices/enrol", json={"enrolment_token": token},
                          timeout=5)
    second = requests.post(server.url + "/v1/devices/enrol", json={"enrolment_token": token},
                           timeout=5)
    assert first.status_code == 201 and first.json()["checkpoint_id"] == "CP-1"
    assert second.status_code == 403
    assert requests.post(server.url + "/v1/devices/enrol", json={}, timeout=5).status_code == 400


def test_ingest_statuses(server, tmp_path):
    device = enrol(server)
    a = item(device)
    answer = post(server, device, [a, a, dict(a, decision="stop"), item(device, kind="x"),
                                   item(device, device_id="someone-else")])
    statuses = [r["status"] for r in answer.json()["results"]]
    # Another device's row is "forbidden" (kept by the kiosk), not "rejected" (issue 9 #1).
    assert statuses == ["accepted", "duplicate", "conflict", "rejected", "forbidden"]
    assert post(server, device, [a]).json()["results"][0]["status"] == "duplicate"
    assert post(server, {"device_token": "nope"}, [a]).status_code == 401
    assert post(server, device, [a] * 1001).status_code == 413
    bad = requests.post(server.url + "/v1/checkins", data="[", timeout=5,
                        headers={"Authorization": f"Bearer {device['device_token']}"})
    assert bad.status_code == 400


def test_documents_have_etags_and_answer_304(server, tmp_path, db_target):
    device = enrol(server)
    auth = {"Authorization": f"Bearer {device['device_token']}"}
    assert requests.get(server.url + "/v1/documents/policy", headers=auth,
                        timeout=5).status_code == 404
    with central_db.connect(db_target) as cdb:
        etag = central_db.set_document(cdb, "policy", b'{"profile": "hospital"}')
        with pytest.raises(ValueError, match="JSON object"):
            central_db.set_document(cdb, "policy", b"[]")
    got = requests.get(server.url + "/v1/documents/policy", headers=auth, timeout=5)
    assert got.status_code == 200 and got.content == b'{"profile": "hospital"}'
    assert got.headers["ETag"] == f'"{etag}"'
    again = requests.get(server.url + "/v1/documents/policy", timeout=5,
                         headers={**auth, "If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304


def test_report_lists_scans_per_checkpoint_and_those_without(server, tmp_path):
    busy = enrol(server, "CP-BUSY")
    enrol(server, "CP-QUIET")
    old = (datetime.now(UTC) - timedelta(days=9)).isoformat()
    post(server, busy, [item(busy), item(busy), item(busy, recorded_at=old)])
    assert requests.get(server.url + "/v1/report/scans", timeout=5).status_code == 401
    report = requests.get(server.url + "/v1/report/scans", timeout=5,
                          headers={"Authorization": "Bearer adm"}).json()
    assert {c["id"]: c["scans"] for c in report["checkpoints"]} == {"CP-BUSY": 2, "CP-QUIET": 0}
    assert report["without_scans"] == ["CP-QUIET"]


def test_cli_enrol_set_document_report_and_export(server, tmp_path, db_target):
    db = str(db_target)
    runner = CliRunner()
    token = runner.invoke(cli, ["central", "enrol-token", "--db", db, "--checkpoint", "CP-9",
                                "--name", "Bệnh viện"]).output.strip()
    device = requests.post(server.url + "/v1/devices/enrol", json={"enrolment_token": token},
                           timeout=5).json()
    post(server, device, [item(device)])
    doc = tmp_path / "w.json"
    # Published documents must be ones a kiosk can apply (issue 9 #10).
    doc.write_bytes(Watchlist.build([], issued_at=datetime(2022, 6, 1, tzinfo=UTC)))
    result = runner.invoke(cli, ["central", "set-document", "--db", db, "watchlist", str(doc)])
    assert result.exit_code == 0 and len(result.output.strip()) == 32
    bad = runner.invoke(cli, ["central", "set-document", "--db", db, "menu", str(doc)])
    assert bad.exit_code != 0 and "unknown document 'menu'" in bad.output
    report = json.loads(runner.invoke(cli, ["central", "report", "--db", db]).output)
    assert report["checkpoints"][0]["scans"] == 1
    lines = runner.invoke(cli, ["central", "export", "--db", db]).output.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["checkpoint_id"] == "CP-9"


def test_central_command_serves_until_terminated(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "central", "--db", str(tmp_path / "s.db"), "--port",
         "0"], cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    try:
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        assert requests.get(url + "/v1/health", timeout=5).json()["status"] == "ok"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_every_spelling_of_an_id_is_checked_and_stored_in_one_spelling():
    """Ingest's fast path for ids as kiosks write them (lower-case, hyphens) gives the same
    spelling and the same verdicts as a UUID object does for every other spelling."""
    from offline_queue import wire

    value = uuid.uuid4()
    for text in (str(value), str(value).upper(), value.hex, f"{{{value}}}",
                 f"urn:uuid:{value}"):
        assert wire.canonical_uuid(text) == str(value)
        assert not [e for e in wire.validation_errors({"id": text}) if "UUID" in e]
    for bad in (str(value)[:-1] + "g", str(value)[:-1], str(value) + "0", " " + str(value),
                str(value).replace("-", "_")):
        assert [e for e in wire.validation_errors({"id": bad, "override_of": bad})
                if "not a UUID" in e] == [f"id is {bad!r}, not a UUID",
                                          f"override_of is {bad!r}, not a UUID"]


# --- opening a PostgreSQL central: what the technician reads (bench/central_setup.py found
# these running docs/central.md's setup as written) -----------------------------------------

def test_a_postgresql_connection_failure_is_said_once_without_the_sqlite_file_hint(tmp_path):
    url = f"postgresql://checkpoint-central@/central?host={tmp_path}/no-such-socket-dir"
    with pytest.raises(StoreError) as caught:
        central_db.connect(url)
    message = str(caught.value)
    # The URL once, the PostgreSQL hints, and no advice about a SQLite file.
    assert message.count(url) == 1, message
    assert "that PostgreSQL runs" in message
    assert "the file is a checkpoint-kiosk central database" not in message
    assert "check the path" not in message


def test_a_peer_authentication_failure_says_which_system_user_to_run_as(monkeypatch):
    import psycopg

    def refuse(*args, **kwargs):
        raise psycopg.OperationalError(
            'connection failed: connection to server on socket "/run/postgresql/.s.PGSQL.5432" '
            'failed: FATAL:  Peer authentication failed for user "checkpoint-central"')

    monkeypatch.setattr(psycopg, "connect", refuse)
    with pytest.raises(StoreError) as caught:
        central_db.connect("postgresql://checkpoint-central@/central?host=/run/postgresql")
    message = str(caught.value)
    assert "Peer authentication failed" in message
    # Root (or any other login) is refused: the hint names the user to run as.
    assert "runuser -u checkpoint-central --" in message, message


def test_a_sqlite_file_that_cannot_be_opened_keeps_the_file_hint(tmp_path):
    with pytest.raises(StoreError) as caught:
        central_db.connect(tmp_path)  # a directory, not a database file
    assert "check the path and that the file is a checkpoint-kiosk central database" \
        in str(caught.value)
