"""Issue 9 #15: hostile input never yields a traceback, bad fields are refused, slow clients
cannot starve the kiosks.  Real server on 127.0.0.1, real sockets, real SQLite."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from offline_queue import wire
from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer
from tests.central_helpers import enrol, item, post, statuses


@pytest.fixture
def server(tmp_path, db_target):
    with CentralServer(db_target, admin_token="adm") as s:
        yield s


def assert_clean_json_error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    text = response.json()["error"]
    assert "Traceback" not in response.text and "File \"" not in response.text
    assert len(response.content) < 2000
    return text


@pytest.mark.parametrize(("depth", "status"), [(200_000, 413), (20_000, 400), (1_000, 400),
                                               (65, 400)])
def test_deeply_nested_json_is_refused_even_unauthenticated(server, tmp_path, depth, status):
    body = "[" * depth + "]" * depth
    r = requests.post(server.url + "/v1/devices/enrol", data=body, timeout=10,
                      headers={"Content-Type": "application/json"})
    message = assert_clean_json_error(r, status)
    # 400 KB is over the enrolment limit (413); below it the depth itself is refused.
    assert status == 413 or ("nest" in message and "deep" in message)
    # Check-ins authenticate before reading the body at all.
    r = requests.post(server.url + "/v1/checkins", data=body, timeout=10,
                      headers={"Content-Type": "application/json", "Authorization": "Bearer x"})
    assert_clean_json_error(r, 401)


def test_nesting_inside_an_authenticated_batch_is_refused_before_parsing(
    server, tmp_path, db_target):
    device = enrol(server, db_target)
    deep = "[" * 5000 + "]" * 5000
    body = '{"checkins": [{"display": ' + deep + "}]}"
    r = requests.post(server.url + "/v1/checkins", data=body, timeout=10,
                      headers={"Content-Type": "application/json",
                               "Authorization": f"Bearer {device['device_token']}"})
    assert "nest" in assert_clean_json_error(r, 400)


def test_body_over_the_limit_is_a_413_json_error(server, tmp_path, db_target):
    device = enrol(server, db_target)
    body = b'{"checkins": ["' + b"x" * (9 * 1024 * 1024) + b'"]}'
    try:
        r = requests.post(server.url + "/v1/checkins", data=body, timeout=20,
                          headers={"Content-Type": "application/json",
                                   "Authorization": f"Bearer {device['device_token']}"})
    except requests.ConnectionError:
        return  # the server may close before reading the whole body: also a refusal
    assert r.status_code == 413


def test_malformed_json_and_unknown_route_answer_json(server):
    r = requests.post(server.url + "/v1/devices/enrol", data=b"\xff{", timeout=5,
                      headers={"Content-Type": "application/json"})
    assert "JSON" in assert_clean_json_error(r, 400)
    assert_clean_json_error(requests.get(server.url + "/nothing", timeout=5), 404)
    not_allowed = requests.delete(server.url + "/v1/health", timeout=5)
    assert_clean_json_error(not_allowed, 405)
    assert "GET" in not_allowed.headers["Allow"]


@pytest.mark.parametrize("days", ["9" * 5000, "0", "367", "-1", "abc", "²", "7.5", ""])
def test_report_days_out_of_range_is_a_clear_400(server, days):
    r = requests.get(server.url + "/v1/report/scans", params={"days": days}, timeout=5,
                     headers={"Authorization": "Bearer adm"})
    message = assert_clean_json_error(r, 400)
    assert "days" in message and "1 to 366" in message
    assert len(message) < 300  # the 5,000 digits are not echoed back in full


def test_report_days_in_range_still_works(server):
    r = requests.get(server.url + "/v1/report/scans", params={"days": "366"}, timeout=5,
                     headers={"Authorization": "Bearer adm"})
    assert r.status_code == 200 and r.json()["days"] == 366


BAD_FIELDS = [
    {"display": {"name": 5}},
    {"display": {"name": {"nested": "x"}}},
    {"display": {"name": None}},
    {"display": {"x" * 100: "y"}},
    {"display": {"name": "N" * 5000}},
    {"display": {f"k{i}": "v" for i in range(100)}},
    {"reasons": [1]},
    {"reasons": [["watchlist"]]},
    {"reasons": ["r" * 500]},
    {"reasons": ["ok"] * 200},
    {"corrected_at": "9999-99-99"},
    {"corrected_at": "2021-09-20T10:00:00"},  # no time zone
    {"corrected_at": "2019-12-31T23:59:59+00:00"},  # before the sane lower bound
    {"corrected_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()},  # future
    {"recorded_at": "yesterday"},
    {"recorded_at": "2021-09-20 10:00"},
    {"recorded_at": ""},
    {"person_key": "1" * 1000},
    {"override_reason": "x" * 5000},
    {"app_version": "v" * 500},
    {"boot_id": "b" * 500},
    {"monotonic_ns": 10 ** 30},
    {"monotonic_ns": -1},
    {"time_source": "gps"},
    {"time_source": 1},
]


@pytest.mark.parametrize("bad", BAD_FIELDS, ids=lambda b: repr(b)[:40])
def test_bad_field_types_and_values_are_rejected(server, tmp_path, bad, db_target):
    device = enrol(server, db_target)
    answer = post(server, device, [item(device, **bad)])
    assert answer.status_code == 200
    (result,) = answer.json()["results"]
    assert result["status"] == "rejected", result
    field = next(iter(bad))
    assert any(field in e for e in result["errors"]), result
    assert all(len(e) < 400 for e in result["errors"])  # values are shortened, not echoed


def test_a_huge_or_odd_id_is_not_echoed(server, tmp_path, db_target):
    device = enrol(server, db_target)
    answer = post(server, device, [item(device, id="x" * 100_000), item(device, id=7)])
    assert statuses(answer) == ["rejected", "rejected"]
    assert len(answer.content) < 3000


def test_validation_keeps_good_rows_and_old_style_rows_without_time_source(tmp_path):
    device = {"device_id": "kiosk-1", "checkpoint_id": "CP"}
    now = datetime.now(UTC)
    assert wire.validation_errors(item(device), now=now) == []
    assert wire.validation_errors(item(device, recorded_at="2021-09-20T03:04:05.123456Z"),
                                  now=now) == []
    ok = item(device, corrected_at=(now - timedelta(hours=1)).isoformat(), time_source="ntp")
    assert wire.validation_errors(ok, now=now) == []
    # A kiosk clock that restarted in 1970 still recorded a real check-in: keep it.
    assert wire.validation_errors(item(device, recorded_at="1970-01-01T00:00:09Z"),
                                  now=now) == []


def test_an_internal_error_is_a_json_500_without_details_or_personal_data(
    server, tmp_path, caplog, db_target):
    device = enrol(server, db_target)
    with central_db.connect(db_target) as conn:  # a real fault: the table is gone
        conn.execute("DROP TABLE scans CASCADE" if conn.postgres else "DROP TABLE scans")
        conn.commit()
    caplog.set_level(logging.DEBUG)
    secret = "001185099999"
    r = post(server, device, [item(device, person_key=secret)])
    message = assert_clean_json_error(r, 500)
    assert "checkins" not in message and "sqlite" not in message.lower()
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors and "/v1/checkins" in errors[0].getMessage()
    assert secret not in caplog.text


# -- slow clients -------------------------------------------------------------------------

def _half_sent(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"POST /v1/checkins HTTP/1.1\r\nHost: central\r\nContent-Length: 900\r\n")
        socks.append(s)
    return socks


def test_150_slowloris_sockets_do_not_block_a_kiosk(tmp_path, db_target):
    with CentralServer(db_target) as server:
        device = enrol(server, db_target)
        socks = _half_sent(server.port, 150)
        try:
            time.sleep(0.5)  # let the server accept them all
            started = time.monotonic()
            r = post(server, device, [item(device)])
            took = time.monotonic() - started
            assert r.status_code == 200 and statuses(r) == ["accepted"]
            assert took < 3, f"a kiosk waited {took:.1f} s behind 150 slow sockets"
            health = requests.get(server.url + "/v1/health", timeout=5)
            assert health.status_code == 200
        finally:
            for s in socks:
                s.close()


def test_a_half_sent_request_is_dropped_after_the_channel_timeout(tmp_path, db_target):
    with CentralServer(db_target, channel_timeout=1, cleanup_interval=1) as server:
        (sock,) = _half_sent(server.port, 1)
        try:
            sock.settimeout(6)
            started = time.monotonic()
            data = sock.recv(4096)
            # Closed by the server (b"") or answered with an error and then closed.
            assert data == b"" or data.startswith(b"HTTP/1.")
            assert time.monotonic() - started < 5
        finally:
            sock.close()


def test_server_limits_are_the_documented_ones(tmp_path, db_target):
    with CentralServer(db_target) as server:
        adj = server.adjustments
    assert adj.connection_limit >= 500
    assert adj.channel_timeout <= 30 and adj.cleanup_interval <= 5
    assert adj.asyncore_use_poll  # select() cannot watch more than 1024 descriptors
    assert adj.max_request_body_size <= 16 * 1024 * 1024


def test_ids_in_checkins_stay_uuid(tmp_path):
    device = {"device_id": "kiosk-1", "checkpoint_id": "CP"}
    bad = item(device, id=str(uuid.uuid4())[:-1])
    assert any("UUID" in e for e in wire.validation_errors(bad))


def test_enrolment_without_a_token_takes_only_a_small_body(server):
    body = b'{"enrolment_token": "x", "pad": "' + b"[]" * 100_000 + b'"}'
    r = requests.post(server.url + "/v1/devices/enrol", data=body, timeout=10,
                      headers={"Content-Type": "application/json"})
    assert_clean_json_error(r, 413)
