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
from offline_queue.clock import iso
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


# --- issue 14 #5: hardening the central ----------------------------------------------------


def test_the_sqlite_database_and_its_journal_are_created_0600(tmp_path):
    path = tmp_path / "fresh" / "central.db"
    with CentralServer(path) as server:
        device = enrol(server, path)
        assert statuses(post(server, device, [item(device)])) == ["accepted"]
        for name in ("central.db", "central.db-wal", "central.db-shm"):
            mode = (tmp_path / "fresh" / name).stat().st_mode & 0o777
            assert mode == 0o600, f"{name} is {mode:o}"


def _enrol_with(server, token: str) -> requests.Response:
    return requests.post(server.url + "/v1/devices/enrol", json={"enrolment_token": token},
                         timeout=5)


def test_enrolment_tokens_expire(server, db_target, monkeypatch):
    with central_db.connect(db_target) as db:
        short = central_db.create_enrolment_token(db, checkpoint_id="CP-1", name="a",
                                                  valid_for=timedelta(minutes=5))
        week = central_db.create_enrolment_token(db, checkpoint_id="CP-1", name="a")
        old = central_db.create_enrolment_token(db, checkpoint_id="CP-1", name="a")
        # A token made before tokens expired: no expiry stored, made 8 days ago.
        db.execute("UPDATE enrolment_tokens SET expires_at = NULL, created_at = ? "
                   "WHERE token_hash = ?", [iso(datetime.now(UTC) - timedelta(days=8)),
                                            central_db.hash_token(old)])
        db.commit()
        with pytest.raises(ValueError, match="from a minute to 366 days"):
            central_db.create_enrolment_token(db, checkpoint_id="CP-1", name="a",
                                              valid_for=timedelta(days=400))
    later = datetime.now(UTC) + timedelta(minutes=10)
    monkeypatch.setattr(central_db, "now_utc", lambda: later)  # the central's clock moves on
    refused = _enrol_with(server, short)
    assert refused.status_code == 403 and "expired" in refused.json()["error"]
    assert _enrol_with(server, old).status_code == 403
    assert _enrol_with(server, week).status_code == 201


def test_only_bearer_is_accepted_for_admin_and_device_tokens(server, db_target):
    device = enrol(server, db_target)
    report = server.url + "/v1/report/scans"
    # Before: any scheme was read as the token ("Basic adm" opened the report).
    for header in ("Basic adm", "Token adm", "adm", "Bearer"):
        r = requests.get(report, headers={"Authorization": header}, timeout=5)
        assert r.status_code == 401, header
        assert "Bearer" in r.json()["error"] or r.json()["error"] == "admin token required"
    assert requests.get(report, headers={"Authorization": "bearer adm"},
                        timeout=5).status_code == 200  # the scheme's case is free (RFC 9110)
    r = requests.post(server.url + "/v1/checkins", json={"checkins": [item(device)]},
                      headers={"Authorization": f"Token {device['device_token']}"}, timeout=5)
    assert r.status_code == 401 and "Bearer" in r.json()["error"]


def _get_from(address: str, url: str, token: str, forwarded_for: str | None = None
              ) -> tuple[int, dict[str, str]]:
    """GET ``url`` from the local address ``address`` (127.0.0.x: another client)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5,
                                      source_address=(address, 0))
    try:
        headers = {"Authorization": f"Bearer {token}"}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        conn.request("GET", parts.path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, dict(response.getheaders())
    finally:
        conn.close()


def test_wrong_tokens_are_throttled_per_client_address(tmp_path):
    from offline_queue.central.throttle import Throttle

    path = tmp_path / "c.db"
    with CentralServer(path, admin_token="adm", throttle=Throttle(limit=5)) as server:
        device = enrol(server, path)
        url = server.url + "/v1/documents/policy"
        for _ in range(5):
            assert _get_from("127.0.0.1", url, "dev-wrong")[0] == 401
        status, headers = _get_from("127.0.0.1", url, "dev-wrong")
        assert status == 429 and 1 <= int(headers["Retry-After"]) <= 61
        # The answer says nothing about a guess: a right token from there waits too ...
        assert _get_from("127.0.0.1", url, device["device_token"])[0] == 429
        assert _get_from("127.0.0.1", server.url + "/v1/report/scans", "adm")[0] == 429
        # ... while another address is served.
        assert _get_from("127.0.0.2", url, device["device_token"])[0] == 404  # unpublished
        assert _get_from("127.0.0.2", server.url + "/v1/report/scans", "adm")[0] == 200
        r = requests.post(server.url + "/v1/devices/enrol",
                          json={"enrolment_token": "enrol-guess"}, timeout=5)
        assert r.status_code == 429


def test_behind_a_local_reverse_proxy_the_forwarded_address_is_throttled(tmp_path):
    """The documented set-up: a TLS proxy on this machine, every peer 127.0.0.1.  One
    client's wrong tokens must not lock every kiosk out; a client's own X-Forwarded-For
    entries (before the proxy's) change nothing."""
    from offline_queue.central.throttle import Throttle

    path = tmp_path / "c.db"
    with CentralServer(path, throttle=Throttle(limit=3)) as server:
        device = enrol(server, path)
        url = server.url + "/v1/documents/policy"
        for _ in range(3):
            assert _get_from("127.0.0.1", url, "dev-wrong", "203.0.113.5")[0] == 401
        assert _get_from("127.0.0.1", url, "dev-wrong", "198.51.100.1, 203.0.113.5")[0] == 429
        assert _get_from("127.0.0.1", url, device["device_token"], "203.0.113.6")[0] == 404
        assert _get_from("127.0.0.1", url, device["device_token"])[0] == 404


def test_the_throttle_keeps_bounded_memory_and_forgets_after_its_window():
    from offline_queue.central.throttle import Throttle

    now = [0.0]
    throttle = Throttle(limit=3, window_s=60, max_addresses=100, clock=lambda: now[0])
    for i in range(10_000):
        throttle.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(throttle) == 100
    for _ in range(3):
        throttle.failed("192.0.2.1")
    assert throttle.blocked("192.0.2.1") == 61
    assert throttle.blocked("192.0.2.2") is None
    now[0] = 59.5
    assert throttle.blocked("192.0.2.1") == 1
    now[0] = 60.0
    assert throttle.blocked("192.0.2.1") is None


def test_one_device_cannot_pre_empt_another_device_s_check_in_id(server, db_target):
    """Check-in ids are unique per device: a device that posts another's id first (a
    guess, or a copied id) takes nothing from it.  Before: the second, genuine check-in was
    answered "conflict" and never stored."""
    honest = enrol(server, db_target, checkpoint="CP-1")
    other = enrol(server, db_target, checkpoint="CP-2")
    genuine = item(honest)
    squat = item(other, id=genuine["id"], person_key="079190000000")
    assert statuses(post(server, other, [squat])) == ["accepted"]
    assert statuses(post(server, honest, [genuine])) == ["accepted"]
    assert statuses(post(server, honest, [genuine])) == ["duplicate"]
    assert statuses(post(server, other, [squat])) == ["duplicate"]
    changed = {**genuine, "decision": "stop"}
    assert statuses(post(server, honest, [changed])) == ["conflict"]
    with central_db.connect(db_target) as db:
        rows = sorted((r["device_id"], r["person_key"]) for r in
                      central_db.export_checkins(db) if r["id"] == genuine["id"])
    assert rows == sorted([(honest["device_id"], genuine["person_key"]),
                           (other["device_id"], "079190000000")])


def test_an_m004_sqlite_database_is_migrated_with_its_rows(tmp_path):
    from sqlite_utils import Database

    from offline_queue.central import schema

    path = tmp_path / "old.db"
    db = central_db.connect(path, migrate=False)
    central_db.migrations.apply(Database(db.conn), stop_before="m006_signed_and_scoped")
    db.execute("INSERT INTO checkpoints (id, name, created_at, num) "
               "VALUES ('CP', 'cp', '2021-01-01T00:00:00Z', 1)")
    db.execute("INSERT INTO devices (id, checkpoint_id, token_hash, enrolled_at, num) "
               "VALUES ('kiosk-a', 'CP', 'h', '2021-01-01T00:00:00Z', 1)")
    device = {"device_id": "kiosk-a", "checkpoint_id": "CP"}
    body = item(device)
    row = schema.scan_row({**body, "time_source": None}, digest=1, event_time=1,
                          basis="received", received_us=1, checkpoint=1, device=1,
                          posted_by=None)
    columns = schema.M006_COLUMNS  # the table as m004 made it
    db.execute("INSERT INTO scans (" + ", ".join(columns) + ") VALUES ("
               + ", ".join("?" * len(columns)) + ")", row[:len(columns)])
    db.execute("INSERT INTO documents VALUES ('policy', ?, 'e', '2021-01-01T00:00:00Z', NULL)",
               [b'{"profile": "border"}'])
    db.conn.commit()
    db.close()
    with central_db.connect(path) as db:
        assert [r["id"] for r in central_db.export_checkins(db)] == [body["id"]]
        assert central_db.get_document_record(db, "policy").version == 1
        key = [r[0] for r in db.execute(
            "SELECT name FROM pragma_table_info('scans') WHERE pk > 0 ORDER BY pk")]
        assert db.execute("SELECT count(*) FROM checkins").fetchone()[0] == 1  # the view
        indexes = {r[0] for r in db.execute("SELECT name FROM pragma_index_list('scans')")}
    assert key == ["device", "id"]
    assert {"scans_checkpoint_time", "scans_person_time"} <= indexes


def test_a_version_1_postgresql_database_is_migrated(pg_url):
    from offline_queue.central import schema
    from offline_queue.central.backend import open_postgres

    db = open_postgres(pg_url)
    db.executescript(schema._pg_ddl())
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (1)")
    db.execute("INSERT INTO documents VALUES ('policy', ?, 'e', '2021-01-01T00:00:00Z', NULL)",
               [b'{"profile": "border"}'])
    db.close()
    with central_db.connect(pg_url) as db:
        (version,) = db.execute("SELECT version FROM schema_version").fetchone()
        assert version == max(schema.PG_MIGRATIONS)
        assert central_db.get_document_record(db, "policy").version == 1
        columns = [r[0] for r in db.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'scans'::regclass "
            "AND i.indisprimary")]
    assert sorted(columns) == ["device", "id"]
    with central_db.connect(pg_url) as db:  # idempotent
        (version,) = db.execute("SELECT version FROM schema_version").fetchone()
        assert version == max(schema.PG_MIGRATIONS)


def test_the_admin_token_comes_from_a_file_and_the_flag_warns(tmp_path):
    import subprocess
    import sys

    from click.testing import CliRunner

    from kiosk.cli import cli
    from tests.conftest import REPO

    token_file = tmp_path / "admin-token"
    token_file.write_text("file-secret\n")
    result = CliRunner().invoke(cli, ["central", "--db", str(tmp_path / "a.db"),
                                      "--admin-token", "s3cret", "enrol-token",
                                      "--checkpoint", "A", "--name", "a"])
    assert result.exit_code == 0 and "removed in the next release" in result.output
    env = {k: v for k, v in __import__("os").environ.items()
           if not k.startswith("CHECKPOINT_CENTRAL_")}
    env["CHECKPOINT_CENTRAL_ADMIN_TOKEN_FILE"] = str(token_file)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "central", "--db", str(tmp_path / "s.db"), "--port",
         "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        ok = requests.get(url + "/v1/report/scans", timeout=5,
                          headers={"Authorization": "Bearer file-secret"})
        assert ok.status_code == 200
        assert (tmp_path / "s.db.signing-key").stat().st_mode & 0o777 == 0o600
        assert requests.get(url + "/v1/keys", timeout=5).json()["fingerprint"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert "file-secret" not in proc.stderr.read()


def test_the_typed_check_in_and_the_validator_name_the_same_fields(tmp_path):
    """wire.CheckIn (what the code is typed against) and wire._FIELDS (what the central
    checks) are one shape: a field added to one and not the other fails here."""
    typed = wire.CheckIn.__annotations__.keys()
    assert set(typed) == set(wire._FIELDS)
    assert wire.CheckIn.__required_keys__ == {
        name for name, (_, required) in wire._FIELDS.items() if required}
    good = item({"device_id": "kiosk-1", "checkpoint_id": "CP"})
    assert wire.parse(good) == good
    assert wire.parse([good]) == ["a check-in must be a JSON object, got list"]
    assert wire.parse({**good, "monotonic_ns": True}) == [
        "monotonic_ns has type bool, value True"]


def test_behind_the_local_tls_proxy_the_dashboard_cookies_are_secure(tmp_path):
    """The documented nginx sets X-Forwarded-Proto: https.  The central trusts it from the
    proxy's address, so the dashboard's cookies are Secure without CHECKPOINT_CENTRAL_HTTPS
    (before: waitress dropped the header and the cookies went out without Secure)."""
    import http.client

    from offline_queue.central.dashboard import auth

    path = tmp_path / "c.db"
    with CentralServer(path) as server:
        def login_cookie(headers: dict[str, str]) -> str:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
            try:
                conn.request("GET", "/dashboard/login", headers=headers)
                response = conn.getresponse()
                response.read()
                assert response.status == 200
                return next(v for k, v in response.getheaders() if k.lower() == "set-cookie"
                            and v.startswith(auth.LOGIN_CSRF_COOKIE + "="))
            finally:
                conn.close()

        assert "Secure" in login_cookie({"X-Forwarded-For": "203.0.113.5",
                                         "X-Forwarded-Proto": "https"})
        assert "Secure" not in login_cookie({"X-Forwarded-For": "203.0.113.5",
                                             "X-Forwarded-Proto": "http"})
        assert "Secure" not in login_cookie({})  # straight to 127.0.0.1:port, plain http
