"""The reference central platform as a Flask application (contract: ``docs/api.yaml``)."""

from __future__ import annotations

import hmac
import logging
import os
import threading
from email.utils import format_datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlite_utils import Database

from offline_queue import wire
from offline_queue.central import db as central_db
from offline_queue.clock import iso
from offline_queue.documents import DOCUMENT_NAMES

log = logging.getLogger(__name__)


def _error(status: int, message: str, **headers: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = status
    response.headers.update(headers)
    return response


def create_app(db_path: str | os.PathLike[str], *, admin_token: str | None = None) -> Flask:
    """Build the app over the SQLite file at ``db_path`` (created and migrated here)."""
    central_db.connect(db_path).close()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 32 * 1024 * 1024
    local = threading.local()
    # One connection per server thread, reused across requests: opening SQLite and
    # checking migrations on every request would cost more than the ingest itself.
    connections: list[Database] = []
    lock = threading.Lock()

    def db() -> Database:
        conn = getattr(local, "db", None)
        if conn is None:
            conn = local.db = central_db.connect(db_path, migrate=False)
            with lock:
                connections.append(conn)
        return conn

    def close_connections() -> None:
        with lock:
            for conn in connections:
                conn.close()
            connections.clear()

    app.extensions["checkpoint_kiosk_close"] = close_connections

    def authenticated_device() -> central_db.Device | Response:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return _error(401, "missing device token", **{"WWW-Authenticate": "Bearer"})
        device = central_db.device_for_token(db(), token.strip())
        if device is None:
            return _error(
                401, "device token unknown or revoked; re-provision the kiosk",
                **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        return device

    @app.get("/v1/health")
    def health() -> Any:
        return {"status": "ok", "time": iso(central_db.now_utc())}

    @app.post("/v1/devices/enrol")
    def enrol() -> Any:
        body = request.get_json(silent=True)
        token = body.get("enrolment_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return _error(400, 'send {"enrolment_token": "..."} as JSON')
        result = central_db.enrol(db(), token)
        if result is None:
            return _error(403, "enrolment token unknown or already used; ask for a new one")
        device, device_token = result
        log.info("enrolled device %s at checkpoint %s", device.id, device.checkpoint_id)
        return {
            "device_id": device.id,
            "checkpoint_id": device.checkpoint_id,
            "device_token": device_token,
            "server_time": iso(central_db.now_utc()),
        }, 201

    @app.post("/v1/checkins")
    def checkins() -> Any:
        device = authenticated_device()
        if isinstance(device, Response):
            return device
        body = request.get_json(silent=True)
        items = body.get("checkins") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return _error(400, 'send {"checkins": [...]} as JSON')
        if len(items) > wire.MAX_BATCH:
            return _error(413, f"at most {wire.MAX_BATCH} check-ins per request, got {len(items)}")
        results = central_db.ingest(db(), device, items)
        return {"results": results}

    @app.get("/v1/documents/<name>")
    def document(name: str) -> Any:
        device = authenticated_device()
        if isinstance(device, Response):
            return device
        if name not in DOCUMENT_NAMES:
            return _error(404, f"unknown document {name!r}; one of {', '.join(DOCUMENT_NAMES)}")
        found = central_db.get_document(db(), name)
        if found is None:
            return _error(404, f"document {name!r} has not been published yet")
        body, etag, expires_at = found
        headers = {"ETag": f'"{etag}"', "Cache-Control": "no-cache"}
        if expires_at is not None:
            headers["Expires"] = format_datetime(expires_at, usegmt=True)
        if etag in request.if_none_match:
            return Response(status=304, headers=headers)
        return Response(body, status=200, headers=headers, mimetype="application/json")

    @app.get("/v1/report/scans")
    def report() -> Any:
        header = request.headers.get("Authorization", "")
        given = header.partition(" ")[2].strip()
        if not admin_token or not hmac.compare_digest(given.encode(), admin_token.encode()):
            return _error(401, "admin token required", **{"WWW-Authenticate": "Bearer"})
        days = request.args.get("days", "7")
        if not days.isdigit() or not 1 <= int(days) <= 366:
            return _error(400, f"days is {days!r}; use a whole number from 1 to 366")
        return central_db.scans_report(db(), days=int(days))

    return app
