"""Issue 9 #10 (central side) and the `central` CLI: documents are validated on publish with
the kiosk's own validators; the group's --db reaches the sub-commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests
from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.domain.documents import VALIDATORS
from kiosk.domain.watchlist import Watchlist
from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer

AT = datetime(2022, 6, 1, tzinfo=UTC)


def refuse_menus(body: bytes) -> None:
    """A test validator standing in for the kiosk's: refuses any 'menu' key."""
    if b"menu" in body:
        raise ValueError("document 'policy' has a 'menu'; remove it")


@pytest.mark.parametrize(
    ("name", "body"),
    [("policy", b'{"profile": "airport"}'), ("watchlist", b'{"entries": []}'),
     ("trust_list", b"[]")],
)
def test_cli_refuses_a_document_no_kiosk_could_apply(tmp_path, name, body, db_target):
    db = db_target
    doc = tmp_path / "doc.json"
    doc.write_bytes(body)
    result = CliRunner().invoke(cli, ["central", "set-document", "--db", str(db), name,
                                      str(doc)])
    assert result.exit_code == 1, result.output
    assert f"document {name!r}" in result.output and "Traceback" not in result.output
    with central_db.connect(db) as conn:
        assert central_db.get_document(conn, name) is None


def test_cli_publishes_a_valid_document(tmp_path, db_target):
    db = db_target
    doc = tmp_path / "w.json"
    doc.write_bytes(Watchlist.build([], issued_at=AT))
    result = CliRunner().invoke(cli, ["central", "--db", str(db), "set-document", "watchlist",
                                      str(doc)])
    assert result.exit_code == 0 and len(result.output.strip()) == 32


def test_library_takes_injected_validators_and_keeps_the_old_version(tmp_path, db_target):
    with central_db.connect(db_target) as conn:
        validators = {"policy": refuse_menus}
        etag = central_db.set_document(conn, "policy", b'{"profile": "hospital"}',
                                       validators=validators)
        with pytest.raises(ValueError, match="menu"):
            central_db.set_document(conn, "policy", b'{"menu": 1}', validators=validators)
        with pytest.raises(ValueError, match="no validator"):
            central_db.set_document(conn, "watchlist", b"{}", validators=validators)
        assert central_db.get_document(conn, "policy")[1] == etag


@pytest.fixture
def server(tmp_path, db_target):
    with CentralServer(db_target, admin_token="adm", validators=VALIDATORS) as s:
        yield s


def put(server, name, body, token="adm", **params):
    return requests.put(f"{server.url}/v1/documents/{name}", data=body, params=params,
                        timeout=5, headers={"Authorization": f"Bearer {token}",
                                            "Content-Type": "application/json"})


def test_http_publish_validates_with_the_injected_validators(server, tmp_path, db_target):
    bad = put(server, "policy", b'{"profile": "airport"}')
    assert bad.status_code == 400
    assert "policy.profile" in bad.json()["error"] and "'airport'" in bad.json()["error"]
    assert put(server, "policy", b'{"profile": "hospital"}', token="nope").status_code == 401
    assert put(server, "menu", b"{}").status_code == 404
    good = put(server, "policy", b'{"profile": "hospital"}', expires="2030-01-01T00:00:00Z")
    assert good.status_code == 200
    etag = good.json()["etag"]
    with central_db.connect(db_target) as conn:
        body, stored_etag, expires_at = central_db.get_document(conn, "policy")
    assert (body, stored_etag) == (b'{"profile": "hospital"}', etag)
    assert expires_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert put(server, "policy", b"{}", expires="soon").status_code == 400


def test_http_publish_without_an_admin_token_configured_is_refused(tmp_path, db_target):
    with CentralServer(db_target, validators=VALIDATORS) as s:
        assert put(s, "policy", b'{"profile": "hospital"}', token="").status_code == 401


# -- the central group's options ----------------------------------------------------------

def test_group_db_reaches_every_sub_command(tmp_path, monkeypatch, db_target):
    monkeypatch.chdir(tmp_path)  # a stray ./central.db would show the option was lost
    db = tmp_path / "x.db"
    runner = CliRunner()
    token = runner.invoke(cli, ["central", "--db", str(db), "enrol-token", "--checkpoint",
                                "CP-9", "--name", "n"])
    assert token.exit_code == 0, token.output
    report = runner.invoke(cli, ["central", "--db", str(db), "report"])
    assert report.exit_code == 0 and json.loads(report.output)["checkpoints"][0]["id"] == "CP-9"
    export = runner.invoke(cli, ["central", "--db", str(db), "export"])
    assert export.exit_code == 0 and export.output == ""
    assert not (tmp_path / "central.db").exists()
    # The sub-command's own --db still works, and wins.
    other = tmp_path / "y.db"
    runner.invoke(cli, ["central", "--db", str(db), "enrol-token", "--db", str(other),
                        "--checkpoint", "CP-Y", "--name", "n"])
    with central_db.connect(other) as conn:
        assert central_db.scans_report(conn)["checkpoints"][0]["id"] == "CP-Y"


def test_report_on_a_missing_database_says_so(tmp_path):
    result = CliRunner().invoke(cli, ["central", "report", "--db", str(tmp_path / "no.db")])
    assert result.exit_code != 0 and "no.db" in result.output
    assert not (tmp_path / "no.db").exists()


def test_help_recommends_the_environment_variable_for_the_admin_token():
    # click wraps help to the option column's width, which moves as options are added
    out = " ".join(CliRunner().invoke(cli, ["central", "--help"]).output.split())
    assert "CHECKPOINT_CENTRAL_ADMIN_TOKEN" in out and "process list" in out


def test_admin_token_on_the_command_line_warns(tmp_path, db_target):
    result = CliRunner().invoke(cli, ["central", "--db", str(db_target),
                                      "--admin-token", "s3cret", "enrol-token",
                                      "--checkpoint", "A", "--name", "a"])
    assert result.exit_code == 0
    assert "CHECKPOINT_CENTRAL_ADMIN_TOKEN" in result.output and "s3cret" not in \
        result.output.splitlines()[0]
