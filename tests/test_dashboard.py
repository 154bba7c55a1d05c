"""Issue 12: the officials' dashboard through Flask's test client, on SQLite and on a real
PostgreSQL (``db_target``): logins and roles, sessions that expire, CSRF, the login
throttle, escaping what kiosks sent, "none" for an unknown person, CSV exports with
formula cells neutralised, the audit log without identity numbers in clear, the
administrator's forms naming the bad field, and the user commands."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner

from kiosk.cli import cli
from kiosk.domain.documents import VALIDATORS
from offline_queue.central import db as central_db
from offline_queue.central.app import create_app
from offline_queue.central.dashboard import auth
from offline_queue.central.dashboard.users import add_user
from offline_queue.records import uuid7

PASSWORD = "correct horse battery"
CASE, OTHER = "001085000001", "001085000002"
SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://x")'  # an identifier a kiosk sent that a spreadsheet would run

GET_PAGES = ["/dashboard/activity", "/dashboard/activity.csv", "/dashboard/fleet",
             "/dashboard/checkpoints", "/dashboard/documents", "/dashboard/trace",
             "/dashboard/audit"]
# page -> roles that may open it
ALLOWED = {
    "/dashboard/activity": {"administrator", "official", "viewer"},
    "/dashboard/activity.csv": {"administrator", "official", "viewer"},
    "/dashboard/fleet": {"administrator"},
    "/dashboard/checkpoints": {"administrator"},
    "/dashboard/documents": {"administrator"},
    "/dashboard/trace": {"official"},
    "/dashboard/audit": {"administrator"},
}


def wire_row(device, when, person, **kw) -> dict:
    base = {
        "id": uuid7(), "device_id": device.id, "checkpoint_id": device.checkpoint_id,
        "direction": "in", "kind": "cccd", "person_key": person,
        "display": {"name": "N***"}, "decision": "pass", "reasons": [], "source": "scan",
        "override_of": None, "original_decision": None, "override_reason": None,
        "recorded_at": when.isoformat(), "monotonic_ns": 1, "boot_id": "b",
        "clock_synced": True, "corrected_at": None, "app_version": "0.9.1",
    }
    return base | kw


@pytest.fixture
def central(db_target):
    """The app over a database with three users, two checkpoints and a few check-ins:
    the case and a contact at CB-01, a kiosk-sent name that is a script tag and one
    that is a spreadsheet formula."""
    with central_db.connect(db_target) as conn:
        for name, role in (("ada", "administrator"), ("olga", "official"),
                           ("vic", "viewer")):
            add_user(conn, name, role, PASSWORD)
        token = central_db.create_enrolment_token(conn, checkpoint_id="CB-01",
                                                  name=f"Tà Lùng {SCRIPT}")
        device, _ = central_db.enrol(conn, token)
        central_db.create_enrolment_token(conn, checkpoint_id="CB-02", name="Quiet")
        now = central_db.now_utc()
        visit = now - timedelta(hours=3)
        central_db.ingest(conn, device, [
            wire_row(device, visit, CASE, display={"name": SCRIPT}),
            wire_row(device, visit + timedelta(minutes=5), OTHER),
            wire_row(device, visit + timedelta(minutes=6), FORMULA),
            wire_row(device, visit - timedelta(minutes=1), "002", recorded_at=(
                visit - timedelta(minutes=1)).isoformat(),
                corrected_at=(visit + timedelta(seconds=90)).isoformat(),
                time_source="central"),
        ], now=now, backlog=42)
    app = create_app(db_target, validators=VALIDATORS)  # the kiosk's checks, as served
    app.config["TESTING"] = False  # errors go through the handlers, as when served
    app.db_target = db_target
    yield app
    app.extensions["checkpoint_kiosk_close"]()


def csrf_of(html: bytes) -> str:
    return re.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()


def login(app, username, password=PASSWORD, **kw):
    client = app.test_client()
    page = client.get("/dashboard/login", **kw)
    r = client.post("/dashboard/login", data={"username": username, "password": password,
                                               "csrf_token": csrf_of(page.data)}, **kw)
    return client, r


def logged_in(app, username, **kw):
    client, r = login(app, username, **kw)
    assert r.status_code == 303, r.data
    client.csrf = csrf_of(client.get("/dashboard/activity").data)
    return client


def test_unauthenticated_pages_redirect_to_the_login(central):
    client = central.test_client()
    for page in GET_PAGES:
        r = client.get(page)
        assert r.status_code == 303 and r.headers["Location"].startswith("/dashboard/login")
    r = client.post("/dashboard/trace/person", data={"identifier": CASE})
    assert r.status_code == 303 and "/dashboard/login" in r.headers["Location"]
    # and after the login, back to the page asked for
    page = client.get("/dashboard/login?next=/dashboard/fleet")
    r = client.post("/dashboard/login", data={"username": "ada", "password": PASSWORD,
                                               "next": "/dashboard/fleet",
                                               "csrf_token": csrf_of(page.data)})
    assert r.headers["Location"] == "/dashboard/fleet"


def test_login_never_redirects_to_another_site(central):
    client = central.test_client()
    page = client.get("/dashboard/login")
    r = client.post("/dashboard/login", data={"username": "vic", "password": PASSWORD,
                                               "next": "//evil.example/dashboard/",
                                               "csrf_token": csrf_of(page.data)})
    assert r.headers["Location"] == "/dashboard/activity"


@pytest.mark.parametrize("role_user", ["ada", "olga", "vic"])
def test_each_role_opens_its_pages_and_gets_a_403_page_elsewhere(central, role_user):
    role = {"ada": "administrator", "olga": "official", "vic": "viewer"}[role_user]
    client = logged_in(central, role_user)
    for page in GET_PAGES:
        r = client.get(page)
        if role in ALLOWED[page]:
            assert r.status_code == 200, (page, r.data[:300])
        else:
            assert r.status_code == 403, page
            assert b"<h1>403" in r.data and b"may not open this page" in r.data
            assert b"Traceback" not in r.data
    # A viewer (and an administrator) cannot trace, even by posting the form directly.
    r = client.post("/dashboard/trace/person", data={"identifier": CASE,
                                                      "csrf_token": client.csrf})
    assert r.status_code == (200 if role == "official" else 403)
    if role != "official":
        assert CASE.encode() not in r.data


def test_a_person_not_in_the_data_answers_none(central):
    client = logged_in(central, "olga")
    r = client.post("/dashboard/trace/person", data={"identifier": "999999999999",
                                                      "days": "14",
                                                      "csrf_token": client.csrf})
    assert r.status_code == 200
    assert b'id="none"' in r.data and b"None: no check-in of this identifier" in r.data
    r = client.post("/dashboard/trace/contacts", data={"identifier": "999999999999",
                                                        "csrf_token": client.csrf})
    assert r.status_code == 200 and b'id="none"' in r.data


def test_what_kiosks_sent_is_escaped_in_every_page(central):
    olga, ada = logged_in(central, "olga"), logged_in(central, "ada")
    r = olga.post("/dashboard/trace/person", data={"identifier": CASE,
                                                    "csrf_token": olga.csrf})
    assert SCRIPT.encode() not in r.data
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in r.data
    for client, page in ((ada, "/dashboard/activity"), (ada, "/dashboard/checkpoints"),
                         (ada, "/dashboard/fleet")):
        body = client.get(page).data
        assert b"<script>" not in body, page
    assert b"Content-Security-Policy" not in b""  # (the header below is the second line)
    assert "script-src" not in olga.get("/dashboard/trace").headers["Content-Security-Policy"]


def test_tracing_answers_and_exports_neutralise_formulas(central):
    client = logged_in(central, "olga")
    r = client.post("/dashboard/trace/person", data={"identifier": CASE, "days": "2",
                                                      "csrf_token": client.csrf})
    assert b"1 check-ins" in r.data and b"CB-01" in r.data
    r = client.post("/dashboard/trace/contacts", data={"identifier": CASE, "minutes": "15",
                                                        "format": "csv",
                                                        "csrf_token": client.csrf})
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    assert CASE not in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.data.decode("utf-8-sig"))))
    people = {row["person_key"] for row in rows}
    assert people == {OTHER, "002", "'" + FORMULA}
    since = client.get("/dashboard/trace").data
    window = re.search(rb'name="since" id="since" value="([^"]+)"', since).group(1).decode()
    r = client.post("/dashboard/trace/checkpoint", data={
        "checkpoint": "CB-01", "since": "2000-01-01 00:00", "until": window,
        "csrf_token": client.csrf})
    assert r.status_code == 400 and b"at most 7 days later" in r.data
    r = client.post("/dashboard/trace/checkpoint", data={
        "checkpoint": "CB-01", "since": "yesterday", "until": window,
        "csrf_token": client.csrf})
    assert r.status_code == 400 and b'id="since-error"' in r.data


def test_every_trace_and_export_is_audited_without_the_number_in_clear(central):
    olga = logged_in(central, "olga")
    olga.post("/dashboard/trace/person", data={"identifier": CASE, "csrf_token": olga.csrf})
    olga.post("/dashboard/trace/person", data={"identifier": CASE, "format": "csv",
                                                "csrf_token": olga.csrf})
    olga.post("/dashboard/trace/contacts", data={"identifier": CASE,
                                                  "csrf_token": olga.csrf})
    with central_db.connect(central.db_target) as conn:
        rows = conn.execute("SELECT username, role, action, params, result_rows FROM "
                            "audit_log ORDER BY seq").fetchall()
    assert [(r[0], r[2]) for r in rows] == [("olga", "trace_person")] * 2 + [
        ("olga", "trace_contacts")]
    assert all(CASE not in r[3] for r in rows)
    params = [json.loads(r[3]) for r in rows]
    assert params[0]["identifier"]["masked"] == "001*******01"
    assert params[0]["identifier"]["hmac"] == params[2]["identifier"]["hmac"]
    assert params[1]["format"] == "csv" and rows[0][4] == 1
    ada = logged_in(central, "ada")
    page = ada.get("/dashboard/audit").data
    assert b"001*******01" in page and CASE.encode() not in page
    found = ada.post("/dashboard/audit", data={"identifier": CASE, "csrf_token": ada.csrf})
    assert found.data.count(b"trace_") == 3
    other = ada.post("/dashboard/audit", data={"identifier": OTHER, "csrf_token": ada.csrf})
    assert b"No query for this identifier" in other.data


def test_forms_without_the_csrf_token_are_refused(central):
    client = logged_in(central, "olga")
    for token in (None, "forged"):
        data = {"identifier": CASE} | ({"csrf_token": token} if token else {})
        r = client.post("/dashboard/trace/person", data=data)
        assert r.status_code == 400 and b"CSRF" in r.data and CASE.encode() not in r.data
    admin = logged_in(central, "ada")
    r = admin.post("/dashboard/fleet/revoke", data={"device_id": "x", "csrf_token": "forged"})
    assert r.status_code == 400
    # The login form has its own (double-submit) token.
    fresh = central.test_client()
    r = fresh.post("/dashboard/login", data={"username": "ada", "password": PASSWORD})
    assert r.status_code == 400
    assert not any(c.startswith(auth.COOKIE + "=") for c in r.headers.getlist("Set-Cookie"))


def test_session_cookie_flags_and_secure_over_https(central):
    _, r = login(central, "vic")
    cookie = [c for c in r.headers.getlist("Set-Cookie") if c.startswith(auth.COOKIE + "=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    _, r = login(central, "vic", base_url="https://central.example")
    cookie = [c for c in r.headers.getlist("Set-Cookie") if c.startswith(auth.COOKIE + "=")][0]
    assert "Secure" in cookie


def test_sessions_expire_when_idle_or_old_and_end_at_logout(central):
    client = logged_in(central, "vic")
    with central_db.connect(central.db_target) as conn, conn.atomic():
        conn.execute("UPDATE dashboard_sessions SET last_seen = last_seen - ?",
                     [int(auth.IDLE.total_seconds()) + 5])
    assert client.get("/dashboard/activity").status_code == 303
    client = logged_in(central, "vic")
    with central_db.connect(central.db_target) as conn, conn.atomic():
        conn.execute("UPDATE dashboard_sessions SET created_at = created_at - ?",
                     [int(auth.ABSOLUTE.total_seconds()) + 5])
    assert client.get("/dashboard/activity").status_code == 303
    client = logged_in(central, "vic")
    client.post("/dashboard/logout", data={"csrf_token": client.csrf})
    assert client.get("/dashboard/activity").status_code == 303


def test_a_disabled_user_is_out_at_once(central):
    client = logged_in(central, "olga")
    runner = CliRunner()
    r = runner.invoke(cli, ["central", "--db", str(central.db_target), "user", "disable",
                            "olga"])
    assert r.exit_code == 0, r.output
    assert client.get("/dashboard/activity").status_code == 303
    _, again = login(central, "olga")
    assert again.status_code == 401


def test_wrong_passwords_are_throttled(central):
    for _ in range(5):
        _, r = login(central, "vic", "wrong password!")
        assert r.status_code == 401 and b"Wrong user name or password" in r.data
    _, r = login(central, "vic")  # the right password, but too soon
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    _, r = login(central, "ada")  # another account from the same address still may
    assert r.status_code == 303


def test_the_administrator_s_forms_name_the_bad_field(central):
    client = logged_in(central, "ada")
    r = client.post("/dashboard/checkpoints", data={"id": "CB-01", "name": "",
                                                     "district": "Thạch An", "commune": "x",
                                                     "csrf_token": client.csrf})
    assert r.status_code == 400 and b'id="name-error"' in r.data and b"name:" in r.data
    r = client.post("/dashboard/checkpoints", data={"id": "CB-01", "name": "Tà Lùng",
                                                     "district": "x" * 101,
                                                     "csrf_token": client.csrf})
    assert r.status_code == 400 and b'id="district-error"' in r.data
    r = client.post("/dashboard/checkpoints", data={"id": "NOPE", "name": "a",
                                                     "csrf_token": client.csrf})
    assert r.status_code == 400 and b'id="id-error"' in r.data
    r = client.post("/dashboard/checkpoints/token", data={"checkpoint": "", "name": "x",
                                                           "csrf_token": client.csrf})
    assert r.status_code == 400 and b'id="token_checkpoint-error"' in r.data
    r = client.post("/dashboard/documents", data={
        "name": "policy", "csrf_token": client.csrf,
        "file": (io.BytesIO(b'{"profile": "nonsense"}'), "policy.json")},
        content_type="multipart/form-data")
    assert r.status_code == 400 and b'id="file-error"' in r.data
    # and the good ones work
    r = client.post("/dashboard/checkpoints", data={"id": "CB-01", "name": "Tà Lùng",
                                                     "district": "Thạch An",
                                                     "commune": "Đức Long",
                                                     "csrf_token": client.csrf})
    assert r.status_code == 303
    page = client.get("/dashboard/activity?district=Thạch An").data.decode()
    assert "Đức Long" in page and "CB-02" not in page.split('id="checkpoints"')[1]
    r = client.post("/dashboard/checkpoints/token", data={"checkpoint": "CB-03",
                                                           "name": "Trà Lĩnh",
                                                           "csrf_token": client.csrf})
    token = re.search(rb"<code>(enrol-[^<]+)</code>", r.data).group(1).decode()
    with central_db.connect(central.db_target) as conn:
        assert central_db.enrol(conn, token) is not None
    r = client.post("/dashboard/documents", data={
        "name": "policy", "csrf_token": client.csrf,
        "file": (io.BytesIO(b'{"profile": "hospital"}'), "policy.json")},
        content_type="multipart/form-data")
    assert r.status_code == 303


def test_the_fleet_shows_what_the_devices_reported(central):
    client = logged_in(central, "ada")
    page = client.get("/dashboard/fleet").data.decode()
    row = page.split('id="fleet"')[1]
    assert "0.9.1" in row and ">42<" in row  # app version, backlog header
    assert "+150.0 s" in row  # corrected - recorded of the corrected row
    device_id = re.search(r"(kiosk-[0-9a-f]{12})", row).group(1)
    r = client.post("/dashboard/fleet/revoke", data={"device_id": device_id,
                                                      "csrf_token": client.csrf})
    assert r.status_code == 303
    assert "revoked" in client.get("/dashboard/fleet").data.decode().split('id="fleet"')[1]


def test_activity_page_has_the_chart_and_the_silent_checkpoints(central):
    client = logged_in(central, "vic")
    page = client.get("/dashboard/activity").data.decode()
    assert "<svg" in page and page.count("<rect") >= 8  # background + 7 days
    silent = page.split('id="silent"')[1].split("</p>")[0]
    assert "CB-02" in silent and "CB-01" not in silent
    r = client.get("/dashboard/activity.csv?days=3")
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0][:6] == ["checkpoint_id", "name", "district", "commune", "scans", "silent"]
    assert len(rows[0]) == 9
    assert client.get("/dashboard/activity?days=abc").status_code == 400


def test_user_commands_read_the_password_from_stdin_never_argv(db_target, tmp_path):
    runner = CliRunner()
    base = ["central", "--db", str(db_target), "user"]
    r = runner.invoke(cli, [*base, "add", "Hoa", "--role", "official"],
                      input="a long enough phrase\n")
    assert r.exit_code == 0 and "added hoa (official)" in r.output
    r = runner.invoke(cli, [*base, "add", "hoa", "--role", "viewer"], input="another phrase\n")
    assert r.exit_code == 2 and "exists already" in r.output
    r = runner.invoke(cli, [*base, "add", "short", "--role", "viewer"], input="short\n")
    assert r.exit_code == 2 and "use 10 to" in r.output
    r = runner.invoke(cli, [*base, "add", "x", "--role", "viewer", "--password", "p"])
    assert r.exit_code == 2 and "No such option" in r.output
    r = runner.invoke(cli, [*base, "list"])
    listed = [json.loads(line) for line in r.output.splitlines()]
    assert [u["username"] for u in listed] == ["hoa"] and "password_hash" not in listed[0]
    with central_db.connect(db_target) as conn:
        stored = conn.execute("SELECT password_hash FROM dashboard_users").fetchone()[0]
    assert stored.startswith("$argon2id$") and "long enough" not in stored
    r = runner.invoke(cli, [*base, "disable", "nobody"])
    assert r.exit_code == 1 and "no user 'nobody'" in r.output


def test_the_dashboard_migration_reaches_both_engines_once(db_target):
    """m005 on SQLite, version 2 on PostgreSQL (later ones follow): applied to a new
    database, idempotent, and an existing checkpoint gains district and commune (empty)."""
    from offline_queue.central import schema

    with central_db.connect(db_target) as conn:
        central_db.create_enrolment_token(conn, checkpoint_id="CB-01", name="x")
        schema.migrate(conn)  # a second start changes nothing
        assert conn.execute("SELECT district, commune FROM checkpoints").fetchall() == [
            (None, None)]
        if conn.postgres:
            (version,) = conn.execute("SELECT version FROM schema_version").fetchone()
            assert version == max(schema.PG_MIGRATIONS)
        else:
            applied = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations")]
            assert applied.count("m005_dashboard") == 1


def test_a_postgresql_central_of_the_previous_version_is_upgraded(pg_url):
    """A database made before the dashboard (schema version 1) gains its tables."""
    from offline_queue.central import schema
    from offline_queue.central.backend import open_postgres

    with open_postgres(pg_url) as old:  # what the previous release created
        old.executescript(schema._pg_ddl())
        old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        old.execute("INSERT INTO schema_version VALUES (1)")
    with central_db.connect(pg_url) as conn:
        (version,) = conn.execute("SELECT version FROM schema_version").fetchone()
        assert version == max(schema.PG_MIGRATIONS)
        add_user(conn, "ada", "administrator", PASSWORD)
        assert conn.execute("SELECT count(*) FROM dashboard_users").fetchone()[0] == 1


def test_fleet_shows_a_drained_kiosk_as_drained_at_once(db_target):
    """The device row is written at most once a minute, but a kiosk saying it has
    drained is written now: a quiet kiosk would show its old backlog for hours."""
    with central_db.connect(db_target) as conn:
        token = central_db.create_enrolment_token(conn, checkpoint_id="CB-01", name="x")
        device, _ = central_db.enrol(conn, token)
        now = central_db.now_utc()

        def post(backlog: int, seconds: int) -> int:
            central_db.ingest(conn, device, [wire_row(device, now, CASE)],
                              now=now + timedelta(seconds=seconds), backlog=backlog)
            return conn.execute("SELECT backlog FROM devices WHERE id = ?",
                                [device.id]).fetchone()[0]

        assert post(42, 0) == 42
        assert post(30, 5) == 42  # within the minute: not written
        assert post(0, 10) == 0  # drained: written at once
        assert post(7, 15) == 0  # within the minute again
        assert post(7, 75) == 7
