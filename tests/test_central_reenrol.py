"""Issue 9 #1 (central side): a re-enrolled kiosk delivers the backlog it recorded under its
previous device id; a row a device may not post is "forbidden", never "rejected"."""

from __future__ import annotations

import pytest
import requests

from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer
from tests.central_helpers import enrol, item, post, statuses


@pytest.fixture
def server(tmp_path, db_target):
    with CentralServer(db_target) as s:
        yield s


def revoke(db_target, device: dict) -> None:
    with central_db.connect(db_target) as cdb:
        assert central_db.revoke_device(cdb, device["device_id"])


def test_backlog_of_the_previous_device_is_accepted_after_reenrolment(server, tmp_path, db_target):
    db = db_target
    old = enrol(server, db)
    backlog = [item(old) for _ in range(81)]
    revoke(db_target, old)
    assert post(server, old, backlog[:1]).status_code == 401
    new = enrol(server, db, previous_device_ids=[old["device_id"]])
    assert new["linked_device_ids"] == [old["device_id"]]
    answer = post(server, new, backlog + [item(new)])
    assert statuses(answer) == ["accepted"] * 82
    with central_db.connect(db) as conn:
        seen = [(r["device_id"], r["posted_by"]) for r in central_db.export_checkins(conn)]
    rows = sorted({(d, p, seen.count((d, p))) for d, p in seen},
                  key=lambda r: r[0] == new["device_id"])
    assert rows == [(old["device_id"], new["device_id"], 81),
                    (new["device_id"], new["device_id"], 1)]


def test_links_are_transitive(server, tmp_path, db_target):
    db = db_target
    first = enrol(server, db)
    second = enrol(server, db, previous_device_ids=[first["device_id"]])
    third = enrol(server, db, previous_device_ids=[second["device_id"]])
    assert statuses(post(server, third, [item(first), item(second), item(third)])) \
        == ["accepted"] * 3
    # Links point back in time only: the old device may not post the new one's rows.
    assert statuses(post(server, first, [item(third)])) == ["forbidden"]


def test_a_row_of_another_device_is_forbidden_not_rejected(server, tmp_path, db_target):
    db = db_target
    a = enrol(server, db)
    b = enrol(server, db)  # same checkpoint, no link
    answer = post(server, b, [item(a), item(b, device_id="someone-else"),
                              item(b, checkpoint_id="CP-OTHER"), item(b, kind="x")])
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["forbidden", "forbidden", "forbidden",
                                               "rejected"]
    assert "previous_device_ids" in results[0]["errors"][0]


def test_only_known_devices_of_the_same_checkpoint_are_linked(server, tmp_path, db_target):
    db = db_target
    elsewhere = enrol(server, db, checkpoint="CP-2")
    mine = enrol(server, db, checkpoint="CP-1")
    new = enrol(server, db, checkpoint="CP-1",
                previous_device_ids=[mine["device_id"], elsewhere["device_id"], "kiosk-ghost"])
    assert new["linked_device_ids"] == [mine["device_id"]]
    assert statuses(post(server, new, [item(elsewhere)])) == ["forbidden"]


@pytest.mark.parametrize("bad", ["kiosk-a", [1], [None], ["k"] * 17, ["x" * 200], {"a": 1}])
def test_invalid_previous_device_ids_are_a_400_and_do_not_use_the_token(
    server, tmp_path, bad, db_target):
    with central_db.connect(db_target) as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id="CP-1", name="x")
    r = requests.post(server.url + "/v1/devices/enrol", timeout=5,
                      json={"enrolment_token": token, "previous_device_ids": bad})
    assert r.status_code == 400 and "previous_device_ids" in r.json()["error"]
    again = requests.post(server.url + "/v1/devices/enrol", json={"enrolment_token": token},
                          timeout=5)
    assert again.status_code == 201  # the refused request did not spend the token


def test_an_admin_links_a_moved_kiosk_and_the_server_logs_forbidden_counts(
    server, tmp_path, caplog, db_target):
    from click.testing import CliRunner

    from kiosk.cli import cli

    db = db_target
    old = enrol(server, db, checkpoint="CP-OLD")
    moved = enrol(server, db, checkpoint="CP-NEW", previous_device_ids=[old["device_id"]])
    assert moved["linked_device_ids"] == []  # never across checkpoints by itself
    backlog = item(old)
    caplog.set_level("WARNING")
    assert statuses(post(server, moved, [backlog])) == ["forbidden"]
    assert any("1 check-ins" in r.getMessage() for r in caplog.records)
    assert backlog["person_key"] not in caplog.text

    runner = CliRunner()
    args = ["central", "--db", str(db), "link-device"]
    done = runner.invoke(cli, args + [moved["device_id"], old["device_id"]])
    assert done.exit_code == 0, done.output
    assert statuses(post(server, moved, [backlog])) == ["accepted"]
    again = runner.invoke(cli, args + [moved["device_id"], old["device_id"]])
    assert again.exit_code == 0 and "already linked" in again.output
    backwards = runner.invoke(cli, args + [old["device_id"], moved["device_id"]])
    assert backwards.exit_code == 1 and "newer device" in backwards.output
    ghost = runner.invoke(cli, args + [moved["device_id"], "kiosk-ghost"])
    assert ghost.exit_code == 1 and "'kiosk-ghost'" in ghost.output
