"""The dashboard's pages (a Flask blueprint under /dashboard), server-rendered, no script.

Reading the code: ``_Dashboard.register`` lists every route; ``before`` logs the user in
from the cookie (or redirects to the login) and checks the CSRF token of every POST;
each page checks its permission (``users.PERMISSIONS``) and answers 403 otherwise.
Tracing is POST only, so an identity number never lands in a URL, a proxy's access log
or the browser history; each answer is written to the audit log before it is shown.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from offline_queue.central import db as central_db
from offline_queue.central import queries, render
from offline_queue.central.backend import CentralDB
from offline_queue.central.dashboard import audit, auth, data
from offline_queue.central.dashboard.chart import bar_chart
from offline_queue.documents import DOCUMENT_NAMES

log = logging.getLogger(__name__)

# Set to 1 when a TLS proxy serves the central but passes plain HTTP on to it: the
# cookies are then marked Secure although the request the app sees is http.
HTTPS_ENV = "CHECKPOINT_CENTRAL_HTTPS"
MAX_UPLOAD = 4 * 1024 * 1024
_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
NOTICES = {
    "revoked": "The device was revoked: its token no longer posts or reads documents.",
    "saved": "The checkpoint was saved.",
    "published": "The document was published; kiosks fetch it at their next sync.",
}


class FormError(ValueError):
    """A form field that is not allowed: ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _int_field(form: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = (form.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 6 or not low <= int(raw) <= high:
        raise FormError(name, f"{name} is {raw[:20]!r}; give a whole number from {low} to {high}")
    return int(raw)


def _text_field(form: Mapping[str, str], name: str, label: str, *, max_len: int = 256) -> str:
    text = (form.get(name) or "").strip()
    if not text:
        raise FormError(name, f"{label} is empty; fill it in")
    if len(text) > max_len:
        raise FormError(name, f"{label} has {len(text)} characters; at most {max_len}")
    return text


def _time_field(form: Mapping[str, str], name: str, offset: timezone) -> datetime:
    raw = (form.get(name) or "").strip()
    try:
        when = datetime.fromisoformat(raw.replace(" ", "T", 1)) if raw else None
    except ValueError:
        when = None
    if when is None:
        raise FormError(name, f"{name} is {raw[:40]!r}; write a local date and time as "
                              "2024-05-01 08:30")
    return when.replace(tzinfo=offset) if when.tzinfo is None else when


def _local_zone(db: CentralDB) -> timezone:
    return timezone(timedelta(microseconds=central_db.day_offset_us(db)))


def _csv_response(rows: list[list[object]], filename: str) -> Response:
    out = io.StringIO()
    out.write("\ufeff")  # a spreadsheet then reads the file as UTF-8 (Vietnamese names)
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([render.safe_cell(v) for v in row])
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _trace_csv(result: dict[str, Any], kind: str) -> Response:
    """A trace's check-ins as the CSV download, named by its kind and last day."""
    fields = queries.TRACE_FIELDS
    return _csv_response([list(fields), *([c.get(f) for f in fields]
                                          for c in result["checkins"])],
                         f"trace-{kind}-{result['until'][:10]}.csv")


def _safe_next(target: str | None) -> str | None:
    """A redirect target after login: a path of this dashboard, never another site."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/dashboard/") \
            or target.startswith("//") or "\\" in target:
        return None
    return target


class _Dashboard:
    def __init__(self, db: Callable[[], CentralDB], *,
                 validators: central_db.Validators | None) -> None:
        self.db = db
        self.validators = validators
        self.throttle = auth.LoginThrottle()
        self.idle = auth.IDLE
        self.absolute = auth.ABSOLUTE

    # --- plumbing ---------------------------------------------------------------------------

    def register(self, app: Flask) -> None:
        bp = Blueprint("dashboard", __name__, url_prefix="/dashboard",
                       template_folder="templates")
        bp.before_request(self.before)
        bp.after_request(self.after)
        bp.app_template_filter("local")(self.local_time)
        bp.app_template_filter("fields")(_fields)
        bp.context_processor(self.context)
        bp.register_error_handler(HTTPException, self.http_error)
        bp.register_error_handler(Exception, self.internal_error)
        routes: list[tuple[str, Callable[[], ResponseReturnValue], list[str]]] = [
            ("/", self.index, ["GET"]),
            ("/login", self.login, ["GET", "POST"]),
            ("/logout", self.logout, ["POST"]),
            ("/activity", self.activity, ["GET"]),
            ("/activity.csv", self.activity_csv, ["GET"]),
            ("/fleet", self.fleet, ["GET"]),
            ("/fleet/revoke", self.revoke, ["POST"]),
            ("/checkpoints", self.checkpoints, ["GET", "POST"]),
            ("/checkpoints/token", self.enrolment_token, ["POST"]),
            ("/documents", self.documents, ["GET", "POST"]),
            ("/trace", self.trace, ["GET"]),
            ("/trace/person", self.trace_person, ["POST"]),
            ("/trace/checkpoint", self.trace_checkpoint, ["POST"]),
            ("/trace/contacts", self.trace_contacts, ["POST"]),
            ("/audit", self.audit_log, ["GET", "POST"]),
        ]
        for rule, view, methods in routes:
            bp.add_url_rule(rule, view_func=view, methods=methods)
        app.register_blueprint(bp)
        app.extensions["checkpoint_kiosk_dashboard"] = self

    def secure(self) -> bool:
        return request.is_secure or os.environ.get(HTTPS_ENV) == "1"

    def before(self) -> ResponseReturnValue | None:
        g.session = None
        if request.endpoint == "dashboard.login":
            return None
        session = auth.current_session(self.db(), request.cookies.get(auth.COOKIE),
                                       idle=self.idle, absolute=self.absolute)
        if session is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("dashboard.login", next=target), 303)
        g.session = session
        if request.method == "POST" and not auth.same_token(
                request.form.get("csrf_token"), session.csrf):
            abort(400, "The form is out of date or did not come from this dashboard "
                       "(CSRF token missing or wrong); reload the page and send it again.")
        return None

    def after(self, response: Response) -> Response:
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"  # pages may hold personal data
        return response

    def context(self) -> dict[str, Any]:
        session = g.get("session")
        return {"user": session.user if session else None,
                "csrf_token": session.csrf if session else ""}

    def local_time(self, value: str | None) -> str:
        """An ISO time as the central's local time, e.g. 2024-05-01 08:30:12."""
        if not value:
            return ""
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        zone = g.get("zone")
        if zone is None:  # once a request: a page of 6,000 devices formats 18,000 times
            zone = g.zone = _local_zone(self.db())
        return f"{when.astimezone(zone):%Y-%m-%d %H:%M:%S}"

    def need(self, permission: str) -> auth.Session:
        session: auth.Session = g.session
        if not session.user.can(permission):
            abort(403, f"Your role ({session.user.role_title}) may not open this page; "
                       "ask an administrator if you need it.")
        return session

    def http_error(self, e: HTTPException) -> ResponseReturnValue:
        return render_template("error.html", code=e.code, title=e.name,
                               message=e.description), e.code or 500

    def internal_error(self, e: Exception) -> ResponseReturnValue:
        log.error("internal error on dashboard %s %r: %s (traceback at DEBUG)", request.method,
                  request.path, type(e).__name__)
        log.debug("traceback of the internal error", exc_info=e)
        return render_template("error.html", code=500, title="Internal error",
                               message="Something went wrong on the central; try again, "
                                       "and tell the administrator if it persists."), 500

    def client(self) -> str:
        return request.remote_addr or ""

    # --- login ------------------------------------------------------------------------------

    def login(self) -> ResponseReturnValue:
        if request.method == "GET":
            return self._login_page(None, 200)
        form = request.form
        if not auth.same_token(form.get("csrf_token"),
                               request.cookies.get(auth.LOGIN_CSRF_COOKIE) or ""):
            return self._login_page("The login form expired; enter your name and password "
                                    "again.", 400)
        username = (form.get("username") or "").strip().lower()[:64]
        password = form.get("password") or ""
        wait = self.throttle.wait(username, self.client())
        if wait:
            return self._login_page(f"Too many wrong passwords; wait {wait} seconds and try "
                                    "again.", 429, retry_after=wait)
        from offline_queue.central.dashboard.users import authenticate

        user = authenticate(self.db(), username, password)
        if user is None:
            self.throttle.failed(username, self.client())
            log.info("dashboard: a login failed")
            return self._login_page("Wrong user name or password.", 401)
        self.throttle.succeeded(username)
        session = auth.open_session(self.db(), user)
        log.info("dashboard: %s logged in (%s)", user.username, user.role)
        response = redirect(_safe_next(form.get("next")) or url_for("dashboard.activity"), 303)
        response.set_cookie(auth.COOKIE, session.token, httponly=True, samesite="Strict",
                            secure=self.secure(), path="/dashboard",
                            max_age=int(self.absolute.total_seconds()))
        response.delete_cookie(auth.LOGIN_CSRF_COOKIE, path="/dashboard/login")
        return response

    def _login_page(self, error: str | None, status: int, *,
                    retry_after: int = 0) -> ResponseReturnValue:
        token = secrets.token_urlsafe(24)
        response = Response(render_template(
            "login.html", error=error, login_csrf=token,
            next=_safe_next(request.values.get("next")) or ""), status=status)
        response.set_cookie(auth.LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict",
                            secure=self.secure(), path="/dashboard/login", max_age=3600)
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def logout(self) -> ResponseReturnValue:
        auth.close_session(self.db(), g.session.token)
        response = redirect(url_for("dashboard.login"), 303)
        response.delete_cookie(auth.COOKIE, path="/dashboard")
        return response

    def index(self) -> ResponseReturnValue:
        return redirect(url_for("dashboard.activity"), 303)

    # --- reports ----------------------------------------------------------------------------

    def _activity(self) -> tuple[dict[str, Any], dict[str, Any], list[data.PlaceActivity]]:
        db = self.db()
        try:
            days = _int_field(request.args, "days", 7, 1, 366)
        except FormError as e:
            abort(400, str(e))
        district = (request.args.get("district") or "").strip()
        commune = (request.args.get("commune") or "").strip()
        report = queries.activity_report(db, days=days)
        where = data.places(db)
        groups = data.by_place(report, where)
        rows: list[data.PlacedCheckpoint] = []
        for row in report["checkpoints"]:
            d, c = where.get(row["id"], ("", ""))
            if (district and d != district) or (commune and c != commune):
                continue
            rows.append(data.PlacedCheckpoint(**row, district=d, commune=c))
        per_day = [sum(r["per_day"][i] for r in rows) for i in range(days)]
        # The template's context: the report for the checkpoints the filters keep.
        shown: dict[str, Any] = {**report} | {"checkpoints": rows, "scans_per_day": per_day,
                          "total_checkpoints": len(rows),
                          "active_checkpoints": sum(1 for r in rows if r["scans"]),
                          "without_scans": [r["id"] for r in rows if not r["scans"]]}
        filters = {"days": days, "district": district, "commune": commune,
                   "districts": sorted({d for d, _ in where.values() if d}),
                   "communes": sorted({c for d, c in where.values()
                                       if c and (not district or d == district)})}
        return shown, filters, groups

    def activity(self) -> ResponseReturnValue:
        self.need("reports")
        report, filters, groups = self._activity()
        chart = bar_chart([d[5:] for d in report["dates"]], report["scans_per_day"])
        return render_template("activity.html", report=report, filters=filters,
                               groups=groups, chart=chart)

    def activity_csv(self) -> ResponseReturnValue:
        self.need("reports")
        report, _, _ = self._activity()
        head = ["checkpoint_id", "name", "district", "commune", "scans", "silent",
                *report["dates"]]
        rows = [[c["id"], c["name"], c["district"], c["commune"], c["scans"],
                 "yes" if not c["scans"] else "no", *c["per_day"]]
                for c in report["checkpoints"]]
        return _csv_response([head, *rows], f"activity-{report['dates'][-1]}.csv")

    # --- the fleet and the administrator's pages -------------------------------------------

    def fleet(self) -> ResponseReturnValue:
        self.need("fleet")
        devices = data.fleet(self.db())
        now = central_db.now_utc()
        for d in devices:
            seen = d["last_seen_at"]
            d["stale"] = not d["revoked"] and (seen is None or now - datetime.fromisoformat(
                seen.replace("Z", "+00:00")) > timedelta(hours=24))
        return render_template("fleet.html", devices=devices,
                               notice=NOTICES.get(request.args.get("notice", "")))

    def revoke(self) -> ResponseReturnValue:
        self.need("manage")
        device_id = (request.form.get("device_id") or "").strip()[:64]
        if not central_db.revoke_device(self.db(), device_id):
            abort(404, f"No device {device_id!r}; pick one from the fleet list.")
        log.info("dashboard: %s revoked device %s", g.session.user.username, device_id)
        return redirect(url_for("dashboard.fleet", notice="revoked"), 303)

    def checkpoints(self) -> ResponseReturnValue:
        self.need("manage")
        db = self.db()
        errors: dict[str, str] = {}
        form: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            form = {k: request.form.get(k, "") for k in ("id", "name", "district", "commune")}
            try:
                checkpoint_id = _text_field(request.form, "id", "checkpoint id", max_len=64)
                if not data.update_checkpoint(db, checkpoint_id, name=form["name"],
                                              district=form["district"],
                                              commune=form["commune"]):
                    raise FormError("id", f"no checkpoint {checkpoint_id!r}; an enrolment "
                                          "token creates a new one")
                return redirect(url_for("dashboard.checkpoints", notice="saved"), 303)
            except FormError as e:
                errors[e.field] = str(e)
            except ValueError as e:
                field = str(e).split(":", 1)[0]
                errors[field if field in form else "name"] = str(e)
            status = 400
        else:
            edit = request.args.get("edit")
            for c in data.checkpoints(db) if edit else []:
                if c["id"] == edit:
                    form = {k: c[k] for k in ("id", "name", "district", "commune")}
        return render_template("checkpoints.html", checkpoints=data.checkpoints(db),
                               form=form, errors=errors, token=None, token_form={},
                               notice=NOTICES.get(request.args.get("notice", ""))), status

    def enrolment_token(self) -> ResponseReturnValue:
        self.need("manage")
        db = self.db()
        token_form = {k: request.form.get(k, "") for k in ("checkpoint", "name")}
        errors: dict[str, str] = {}
        token = None
        try:
            checkpoint = _text_field(request.form, "checkpoint", "checkpoint id", max_len=64)
            name = _text_field(request.form, "name", "checkpoint name", max_len=200)
            token = central_db.create_enrolment_token(db, checkpoint_id=checkpoint, name=name)
            log.info("dashboard: %s made an enrolment token for %s", g.session.user.username,
                     checkpoint)
        except FormError as e:
            errors["token_" + e.field] = str(e)
        except ValueError as e:
            errors["token_checkpoint"] = str(e)
        return render_template("checkpoints.html", checkpoints=data.checkpoints(db), form={},
                               errors=errors, token=token, token_form=token_form,
                               notice=None), 400 if errors else 200

    def documents(self) -> ResponseReturnValue:
        self.need("manage")
        db = self.db()
        errors: dict[str, str] = {}
        status = 200
        if request.method == "POST":
            try:
                name = request.form.get("name", "")
                if name not in DOCUMENT_NAMES:
                    raise FormError("name", f"document {name[:40]!r} is unknown; pick one of "
                                            f"{', '.join(DOCUMENT_NAMES)}")
                upload = request.files.get("file")
                body = upload.read(MAX_UPLOAD + 1) if upload else b""
                if not body:
                    raise FormError("file", "file: no file chosen, or it is empty")
                if len(body) > MAX_UPLOAD:
                    raise FormError("file", f"file: over {MAX_UPLOAD} bytes")
                expires_raw = (request.form.get("expires") or "").strip()
                expires = _time_field(request.form, "expires", _local_zone(db)) \
                    if expires_raw else None
                try:
                    central_db.set_document(db, name, body, expires_at=expires,
                                            validators=self.validators)
                except ValueError as e:
                    raise FormError("file", f"file: {e}") from None
                log.info("dashboard: %s published document %s", g.session.user.username, name)
                return redirect(url_for("dashboard.documents", notice="published"), 303)
            except FormError as e:
                errors[e.field] = str(e)
                status = 400
        return render_template("documents.html", documents=data.documents(db),
                               names=DOCUMENT_NAMES, errors=errors,
                               notice=NOTICES.get(request.args.get("notice", ""))), status

    # --- tracing ----------------------------------------------------------------------------

    def _defaults(self) -> dict[str, Any]:
        now = central_db.now_utc().astimezone(_local_zone(self.db()))
        return {"days": 14, "minutes": 15,
                "since": f"{now - timedelta(hours=1):%Y-%m-%d %H:%M}",
                "until": f"{now:%Y-%m-%d %H:%M}", "checkpoints": data.checkpoints(self.db())}

    def trace(self) -> ResponseReturnValue:
        self.need("trace")
        return render_template("trace.html", form=self._defaults(), errors={}, kind=None)

    def _trace_error(self, kind: str, e: FormError) -> ResponseReturnValue:
        form = self._defaults() | {k: v for k, v in request.form.items() if k != "csrf_token"}
        return render_template("trace.html", form=form, errors={e.field: str(e)},
                               kind=kind), 400

    def _audit(self, action: str, params: dict[str, Any], rows: int) -> None:
        audit.record(self.db(), g.session.user, action, params, rows=rows,
                     client=self.client())

    def trace_person(self) -> ResponseReturnValue:
        self.need("trace")
        form = request.form
        try:
            key = _text_field(form, "identifier", "identifier")
            days = _int_field(form, "days", 14, 1, queries.MAX_TRACE_DAYS)
        except FormError as e:
            return self._trace_error("person", e)
        fmt = "csv" if form.get("format") == "csv" else "html"
        result = queries.trace_person(self.db(), key, days=days)
        self._audit("trace_person", {"identifier": key, "days": days, "format": fmt},
                    len(result["checkins"]))
        if fmt == "csv":
            return _trace_csv(result, "person")
        return render_template("trace_result.html", kind="person", result=result,
                               params={"identifier": key, "days": days})

    def trace_checkpoint(self) -> ResponseReturnValue:
        self.need("trace")
        form = request.form
        db = self.db()
        try:
            checkpoint = _text_field(form, "checkpoint", "checkpoint", max_len=64)
            zone = _local_zone(db)
            since = _time_field(form, "since", zone)
            until = _time_field(form, "until", zone)
            if until < since or until - since > queries.MAX_WINDOW:
                raise FormError("until", f"until must follow since, at most "
                                         f"{queries.MAX_WINDOW.days} days later")
        except FormError as e:
            return self._trace_error("checkpoint", e)
        fmt = "csv" if form.get("format") == "csv" else "html"
        result = queries.passed_checkpoint(db, checkpoint, since, until)
        self._audit("trace_checkpoint", {"checkpoint": checkpoint, "since": result["since"],
                                         "until": result["until"], "format": fmt},
                    len(result["checkins"]))
        if fmt == "csv":
            return _trace_csv(result, "checkpoint")
        return render_template("trace_result.html", kind="checkpoint", result=result,
                               params={"checkpoint": checkpoint,
                                       "since": form.get("since", ""),
                                       "until": form.get("until", "")})

    def trace_contacts(self) -> ResponseReturnValue:
        self.need("trace")
        form = request.form
        try:
            key = _text_field(form, "identifier", "identifier")
            days = _int_field(form, "days", 14, 1, queries.MAX_TRACE_DAYS)
            minutes = _int_field(form, "minutes", 15, 1, 24 * 60)
        except FormError as e:
            return self._trace_error("contacts", e)
        fmt = "csv" if form.get("format") == "csv" else "html"
        result = queries.contacts(self.db(), key, days=days, minutes=minutes)
        rows = sum(len(v["others"]) for v in result["visits"])
        self._audit("trace_contacts", {"identifier": key, "days": days, "minutes": minutes,
                                       "format": fmt}, rows)
        if fmt == "csv":
            fields = queries.TRACE_FIELDS
            return _csv_response(
                [["case_event_time", "case_checkpoint_id", *fields],
                 *([v["case"]["event_time"], v["case"]["checkpoint_id"],
                    *(o.get(f) for f in fields)] for v in result["visits"]
                   for o in v["others"])],
                f"trace-contacts-{result['until'][:10]}.csv")
        return render_template("trace_result.html", kind="contacts", result=result,
                               params={"identifier": key, "days": days, "minutes": minutes})

    def audit_log(self) -> ResponseReturnValue:
        self.need("audit")
        search = (request.form.get("identifier") or "").strip()[:256] \
            if request.method == "POST" else ""
        entries = audit.entries(self.db(), fingerprint_of=search or None)
        return render_template("audit.html", entries=entries, searched=bool(search))


def _fields(value: Any) -> str:
    """A display dict or a reasons list as one line of text (escaped by the template)."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def register_dashboard(app: Flask, db: Callable[[], CentralDB], *,
                       validators: central_db.Validators | None = None) -> None:
    """Add the dashboard's pages to the central's Flask app."""
    _Dashboard(db, validators=validators).register(app)
