"""The reference central platform as a Flask application (contract: ``docs/api.yaml``)."""

from __future__ import annotations

import hmac
import json
import logging
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from email.utils import format_datetime

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from offline_queue import wire
from offline_queue.central import db as central_db
from offline_queue.central import people, queries
from offline_queue.central.backend import CentralDB, is_postgres
from offline_queue.central.dashboard import register_dashboard
from offline_queue.central.keys import CentralKey, KeyFile, default_path
from offline_queue.central.throttle import Throttle
from offline_queue.clock import iso
from offline_queue.documents import DOCUMENT_NAMES

log = logging.getLogger(__name__)

# A full batch of check-ins at the field limits of ``wire`` is about 6 MB; a normal one
# well under 1 MB.  Documents (a province's watchlist) fit too.
MAX_BODY = 8 * 1024 * 1024
# A batch nests 4 levels deep; no request of the contract needs more than a handful.
MAX_JSON_DEPTH = 32
MAX_ENROLMENT_TOKEN = 200
# Enrolment is the one route open without a token: its body is tiny, keep it so.
MAX_ENROL_BODY = 64 * 1024

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENERS = frozenset(b"[{")
_DIGITS = re.compile(r"[0-9]{1,4}")


class RequestError(ValueError):
    """The request body or a parameter is not what the contract asks for (a 400)."""


def _error(status: int, message: str, **headers: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    response.headers.update(headers)
    return response


def _too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if the JSON text ``data`` nests arrays/objects deeper than ``limit``.

    Checked before parsing: the parser recurses once per level, and 200,000 levels
    exhaust the stack (a RecursionError, formerly a 500 with a traceback).
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for byte in _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def json_body(max_bytes: int = MAX_BODY) -> object:
    """The request body as JSON, untrusted (the caller checks its shape);
    :class:`RequestError` if it is not JSON, or nests too deep."""
    if (request.content_length or 0) > max_bytes:
        raise RequestEntityTooLarge()
    data = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH: a 413 from werkzeug
    if len(data) > max_bytes:
        raise RequestEntityTooLarge()
    if _too_deep(data):
        raise RequestError(f"request body nests JSON more than {MAX_JSON_DEPTH} levels deep; "
                         "send the documented shape")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise RequestError(f"request body is not valid JSON ({e}); send UTF-8 JSON") from None


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """Query parameter ``name`` as an int in ``low..high``; :class:`RequestError` if not."""
    raw = request.args.get(name)
    if raw is None:
        return default
    # A regex before int(): int() of 5,000 digits raises (CPython's digit limit).
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise RequestError(f"{name} is {wire.short_repr(raw, 20)}; use a whole number from "
                         f"{low} to {high}")
    return int(raw)


class Admission:
    """Whether a check-in post may start now, and if not, how long the kiosk should wait.

    ``backlog()`` is the number of requests waiting for a server thread (waitress's task
    queue).  Past ``limit`` a post is answered 503 at once, before any database work,
    with ``Retry-After``: a place in a virtual queue.  Each refused kiosk is given the
    next free slot, slots ``1/rate`` apart (``rate``: posts finished a second over the
    last ``RATE_WINDOW`` seconds), so that a herd comes back spread out at the pace the
    central serves it, instead of together (a second refusal, and a third) or into its
    timeouts.  A random factor of 1 to 1.2 keeps kiosks refused at the same instant by
    two worker processes apart.
    """

    RATE_WINDOW = 10.0  # seconds of finished posts behind the rate
    START_RATE = 20.0  # posts a second assumed before any has finished

    def __init__(self, backlog: Callable[[], int], *, limit: int = 32,
                 rng: random.Random | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.backlog = backlog
        self.limit = limit
        self._rng = rng or random.Random()
        self._clock = clock
        self._lock = threading.Lock()
        self._finished: deque[float] = deque()
        self._next_slot = 0.0
        self.refused = 0

    def done(self) -> None:
        """One post finished (its time feeds the rate)."""
        now = self._clock()
        with self._lock:
            self._finished.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._finished and self._finished[0] < now - self.RATE_WINDOW:
            self._finished.popleft()

    def rate(self) -> float:
        """Posts finished a second, over the last ``RATE_WINDOW`` seconds."""
        now = self._clock()
        with self._lock:
            self._trim(now)
            if len(self._finished) < 5:
                return self.START_RATE
            # Over the time the finished posts cover: a central idle for hours that a herd
            # wakes has 2 s of posts, not 10 (divided by 10 s, they said 1/5 of its pace,
            # and kiosks were told to come back 5x too far apart: the herd took 150 s).
            span = min(self.RATE_WINDOW, max(now - self._finished[0], 1.0))
            return max(len(self._finished) / span, 1.0)

    def retry_after(self) -> int | None:
        """Seconds to tell the kiosk, or None to serve it now."""
        waiting = self.backlog()
        if waiting <= self.limit:
            return None
        rate = self.rate()
        now = self._clock()
        with self._lock:
            self.refused += 1
            # After the queue in front of it has drained, and after every kiosk already
            # told to come back.
            slot = max(self._next_slot, now + waiting / rate)
            self._next_slot = slot + 1.0 / rate
        wait = (slot - now) * self._rng.uniform(1.0, 1.2)
        return int(min(MAX_RETRY_AFTER, max(1.0, wait)) + 0.5)


# The longest wait a busy central asks for: kiosks come back within two minutes.
MAX_RETRY_AFTER = 120


def busy_message(wait: int) -> str:
    """The error text of a busy central's 503 (also sent by ``server`` before the body)."""
    return f"the central is busy; nothing was stored, retry after {wait} s"


class _Connections:
    """One database connection per server thread, reused across requests: opening the
    database and checking migrations on every request would cost more than the ingest."""

    def __init__(self, db_path: str | os.PathLike[str]) -> None:
        self._path = db_path
        self._local = threading.local()
        self._all: list[CentralDB] = []
        self._lock = threading.Lock()

    def get(self) -> CentralDB:
        conn = getattr(self._local, "db", None)
        if conn is not None and getattr(conn.conn, "closed", False):
            # A PostgreSQL connection lost (the server restarted): open a new one.
            with self._lock:
                self._all.remove(conn)
            conn = None
        if conn is None:
            conn = self._local.db = central_db.connect(self._path, migrate=False)
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _register_error_handlers(app: Flask) -> None:
    """Every error is a JSON ``{"error": ...}`` answer; a 500 never quotes the request."""

    @app.errorhandler(RequestError)
    def bad_request(e: RequestError) -> Response:
        return _error(400, str(e))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(e: RequestEntityTooLarge) -> Response:
        if request.path == "/v1/checkins":
            return _error(413, f"request body over {MAX_BODY} bytes; send at most "
                               f"{wire.MAX_BATCH} check-ins per request")
        return _error(413, "request body too large for this route")

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response:
        response = _error(e.code or 500, e.description or e.name)
        allow = dict(e.get_headers()).get("Allow")
        if allow:  # a 405 names the methods that work
            response.headers["Allow"] = allow
        return response

    @app.errorhandler(Exception)
    def internal_error(e: Exception) -> Response:
        # The request may carry personal data and the traceback may quote it: name the
        # route and the error type at ERROR, keep the traceback for DEBUG.
        log.error("internal error on %s %r: %s (traceback at DEBUG)", request.method,
                  request.path, type(e).__name__)
        log.debug("traceback of the internal error", exc_info=e)
        return _error(500, "internal server error; retry later")


def _backlog_header() -> int | None:
    """The rows the kiosk says it still holds (optional; shown on the fleet page)."""
    raw = request.headers.get(wire.BACKLOG_HEADER, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


def _unknown_document(name: str) -> Response:
    return _error(404, f"unknown document {wire.short_repr(name)}; one of "
                       f"{', '.join(DOCUMENT_NAMES)}")


class _Routes:
    """The contract's routes (``docs/api.yaml``), one method each, over one database."""

    def __init__(self, db: Callable[[], CentralDB], *, admin_token: str | None,
                 validators: central_db.Validators | None,
                 admission: Admission | None = None, signing_key: CentralKey | KeyFile,
                 throttle: Throttle, fold: people.Folder | None = None,
                 republisher: people.Republisher | None = None) -> None:
        self.db = db
        self.fold = fold
        self.republisher = republisher
        self.admission = admission
        self.admin_token = admin_token
        self.validators = validators
        self._signing_key = signing_key
        self.throttle = throttle

    @property
    def signing_key(self) -> CentralKey:
        return self._signing_key.current()

    def register(self, app: Flask) -> None:
        app.add_url_rule("/v1/health", view_func=self.health, methods=["GET"])
        app.add_url_rule("/v1/devices/enrol", view_func=self.enrol, methods=["POST"])
        app.add_url_rule("/v1/keys", view_func=self.keys, methods=["GET"])
        app.add_url_rule("/v1/checkins", view_func=self.checkins, methods=["POST"])
        app.add_url_rule("/v1/documents/<name>", view_func=self.document, methods=["GET"])
        app.add_url_rule("/v1/documents/<name>", view_func=self.publish, methods=["PUT"])
        app.add_url_rule("/v1/report/scans", view_func=self.report, methods=["GET"])
        app.add_url_rule("/v1/report/activity", view_func=self.activity, methods=["GET"])

    # --- who is asking ---------------------------------------------------------------------

    def throttled(self) -> Response | None:
        """A 429 when this address sent too many wrong tokens lately (before any check)."""
        wait = self.throttle.blocked(_client_address())
        if wait is None:
            return None
        return _error(429, f"too many wrong tokens from this address; retry after {wait} s",
                      **{"Retry-After": str(wait)})

    def wrong_token(self, status: int, message: str, **headers: str) -> Response:
        self.throttle.failed(_client_address())
        return _error(status, message, **headers)

    def authenticated_device(self) -> central_db.Device | Response:
        refused = self.throttled()
        if refused is not None:
            return refused
        token = _bearer()
        if not token:
            return _error(401, "missing device token (send Authorization: Bearer <token>)",
                          **{"WWW-Authenticate": "Bearer"})
        device = central_db.device_for_token(self.db(), token)
        if device is None:
            return self.wrong_token(
                401, "device token unknown or revoked; re-provision the kiosk",
                **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return device

    def admin_refused(self) -> Response | None:
        refused = self.throttled()
        if refused is not None:
            return refused
        given = _bearer()
        if not self.admin_token or not given:
            return _error(401, "admin token required (send Authorization: Bearer <token>)",
                          **{"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.encode(), self.admin_token.encode()):
            return self.wrong_token(401, "admin token required", **{"WWW-Authenticate":
                                                                     "Bearer"})
        return None

    # --- kiosks -----------------------------------------------------------------------------

    def health(self) -> ResponseReturnValue:
        stamp = iso(central_db.now_utc())
        return {"status": "ok", "time": stamp, "server_time": stamp}

    def keys(self) -> ResponseReturnValue:
        """The central's public signing key and its rotations (public: no token)."""
        return self.signing_key.keys_answer()

    def enrol(self) -> ResponseReturnValue:
        refused = self.throttled()
        if refused is not None:
            return refused
        body = json_body(MAX_ENROL_BODY)
        if not isinstance(body, dict):
            raise RequestError('send {"enrolment_token": "..."} as JSON')
        token = body.get("enrolment_token")
        if not isinstance(token, str) or not 0 < len(token) <= MAX_ENROLMENT_TOKEN:
            raise RequestError('send {"enrolment_token": "..."} as JSON')
        try:
            previous = central_db.check_previous_device_ids(
                body.get("previous_device_ids") or [])
        except ValueError as e:
            raise RequestError(str(e)) from None
        result = central_db.enrol(self.db(), token, previous_device_ids=previous)
        if result is None:
            return self.wrong_token(403, "enrolment token unknown, already used or expired; "
                                         "ask for a new one")
        device, device_token = result
        linked = central_db.linked_devices(self.db(), device.id)
        log.info("enrolled device %s at checkpoint %r, replacing %s", device.id,
                 device.checkpoint_id, linked or "none")
        return {
            "device_id": device.id,
            "checkpoint_id": device.checkpoint_id,
            "device_token": device_token,
            "linked_device_ids": linked,
            "server_time": iso(central_db.now_utc()),
            # The key the kiosk pins: its documents must be signed by it (docs/trust.md).
            "central_key": self.signing_key.keys_answer(),
        }, 201

    def checkins(self) -> ResponseReturnValue:
        if self.admission is not None:
            wait = self.admission.retry_after()
            if wait is not None:
                # Nothing was stored: the kiosk keeps every row and comes back later.
                return _error(503, busy_message(wait), **{"Retry-After": str(wait)})
        device = self.authenticated_device()
        if isinstance(device, Response):
            return device
        try:
            return self._store_checkins(device)
        finally:
            if self.admission is not None:
                self.admission.done()

    def _store_checkins(self, device: central_db.Device) -> ResponseReturnValue:
        body = json_body()
        items = body.get("checkins") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise RequestError('send {"checkins": [...]} as JSON')
        if len(items) > wire.MAX_BATCH:
            return _error(413, f"at most {wire.MAX_BATCH} check-ins per request, got {len(items)}")
        now = central_db.now_utc()
        results = central_db.ingest(self.db(), device, items, now=now,
                                    backlog=_backlog_header(),
                                    opener=self.signing_key.sealing.opener)
        unopened = sum(1 for r in results if r["status"] == "unopened")
        if unopened:
            # Counts only; the rows are in the unopened table (``central unopened``).
            log.error("device %s sent %d check-in(s) whose sealed identity this central "
                      "cannot open; kept aside (checkpoint-kiosk central unopened)",
                      device.id, unopened)
        if self.republisher is not None and any(
                r["status"] == "accepted" and item.get("source") == "declared"
                for r, item in zip(results, items, strict=False) if isinstance(item, dict)):
            self.republisher.poke()  # a declaration: the next kiosk should know it soon
        forbidden = sum(1 for r in results if r["status"] == "forbidden")
        if forbidden:
            # Counts only: the rows carry personal data.  A technician links the devices
            # (``central link-device``) or re-enrols the kiosk with previous_device_ids.
            log.warning("device %s sent %d check-ins of devices it does not replace",
                        device.id, forbidden)
        return {"results": results, "server_time": iso(now)}

    def document(self, name: str) -> ResponseReturnValue:
        device = self.authenticated_device()
        if isinstance(device, Response):
            return device
        if name not in DOCUMENT_NAMES:
            return _unknown_document(name)
        found = central_db.get_document_record(self.db(), name)
        if found is None:
            return _error(404, f"document {name!r} has not been published yet")
        headers = {"ETag": f'"{found.etag}"', "Cache-Control": "no-cache"}
        if found.expires_at is not None:
            headers["Expires"] = format_datetime(found.expires_at, usegmt=True)
        if found.etag in request.if_none_match:
            return Response(status=304, headers=headers)
        # Signed as served, with the key in force now: a rotation needs no re-publishing.
        headers.update(self.signing_key.sign_document(name, found.version, found.body,
                                                      headers.get("Expires")))
        return Response(found.body, status=200, headers=headers, mimetype="application/json")

    # --- the platform's operators -----------------------------------------------------------

    def publish(self, name: str) -> ResponseReturnValue:
        refused = self.admin_refused()
        if refused is not None:
            return refused
        if name not in DOCUMENT_NAMES:
            return _unknown_document(name)
        expires = request.args.get("expires")
        expires_at = wire.parse_time(expires) if expires is not None else None
        if expires is not None and expires_at is None:
            raise RequestError(f"expires is {wire.short_repr(expires)}; use an ISO-8601 "
                               "date-time with a time zone, e.g. 2030-01-01T00:00:00Z")
        body = request.get_data(cache=False)
        try:
            if name == people.NAME and self.fold is not None:
                # The province's import: published with the kiosks' declarations folded in.
                etag = people.set_import(self.db(), body, fold=self.fold,
                                         expires_at=expires_at, validators=self.validators)
            else:
                etag = central_db.set_document(self.db(), name, body, expires_at=expires_at,
                                               validators=self.validators)
        except ValueError as e:
            raise RequestError(str(e)) from None
        log.info("published document %s, ETag %s", name, etag)
        return {"name": name, "etag": etag}

    def report(self) -> ResponseReturnValue:
        refused = self.admin_refused()
        if refused is not None:
            return refused
        return central_db.scans_report(self.db(), days=int_arg("days", 7, 1, 366))

    def activity(self) -> ResponseReturnValue:
        refused = self.admin_refused()
        if refused is not None:
            return refused
        return queries.activity_report(self.db(), days=int_arg("days", 7, 1, 366))


def _client_address() -> str:
    return request.remote_addr or "unknown"


def _bearer() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for any other scheme
    (the scheme's case does not matter, RFC 9110 11.1)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def default_signing_key(db_path: str | os.PathLike[str]) -> CentralKey | KeyFile:
    """The key file beside a SQLite database (created on the first start); for a
    PostgreSQL URL a key in memory only, which kiosks can pin only on first use."""
    if not is_postgres(db_path):
        return KeyFile(default_path(db_path))
    key = CentralKey.generate()
    log.info("signing documents with a temporary key, fingerprint %s", key.fingerprint)
    return key


def create_app(
    db_path: str | os.PathLike[str],
    *,
    admin_token: str | None = None,
    validators: central_db.Validators | None = None,
    admission: Admission | None = None,
    signing_key: CentralKey | KeyFile | None = None,
    throttle: Throttle | None = None,
    fold: people.Folder | None = None,
    republisher: people.Republisher | None = None,
) -> Flask:
    """Build the app over the database ``db_path``, a SQLite path or a postgresql:// URL
    (created if need be and migrated here).

    ``validators`` (document name -> check raising ValueError) are the kiosk's own, so a
    document is refused on publish if a kiosk could not apply it.  ``signing_key`` signs
    every document served; by default the key file beside a SQLite database (created on
    the first start), and for a PostgreSQL URL a key in memory only, which kiosks can pin
    only on first use (the command line always passes a key file).

    ``fold`` makes the published ``status`` document from the province's import and the
    kiosks' declarations (``offline_queue.central.people``); ``republisher`` is poked when
    an ingest took a declaration.
    """
    if signing_key is None:
        signing_key = default_signing_key(db_path)
    central_db.connect(db_path).close()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    connections = _Connections(db_path)
    app.extensions["checkpoint_kiosk_close"] = connections.close
    _register_error_handlers(app)
    _Routes(connections.get, admin_token=admin_token, validators=validators,
            admission=admission, signing_key=signing_key,
            throttle=Throttle() if throttle is None else throttle, fold=fold,
            republisher=republisher).register(app)
    register_dashboard(app, connections.get, validators=validators)
    return app
