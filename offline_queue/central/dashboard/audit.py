"""The audit log of tracing: who looked for whom, when, and how many rows they saw.

Every tracing query and every export writes one row of ``audit_log`` *before* its answer
is shown (no answer without its row).  The identifier searched for is not stored in
clear: the row keeps a mask (``001*******45``: enough for an administrator to recognise a
number given to them on paper) and a keyed fingerprint (HMAC-SHA256 under a random key
of this database, first 16 hex digits) so repeated searches for the same person are
visible without the number.  A plain hash would not do: a 12-digit citizen number is
found again from its SHA-256 in minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import Any

from offline_queue.central.backend import CentralDB
from offline_queue.central.dashboard.users import User
from offline_queue.clock import iso

ACTIONS = ("trace_person", "trace_checkpoint", "trace_contacts", "export_full")
# Parameters written as given (no personal data); every other one is masked.
PLAIN = frozenset({"days", "minutes", "checkpoint", "since", "until", "format"})


def mask(identifier: str) -> str:
    """The first 3 and last 2 characters, stars between (a short one: stars only)."""
    text = identifier.strip()
    if len(text) <= 6:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 5) + text[-2:]


def _key(db: CentralDB) -> bytes:
    row = db.execute("SELECT value FROM central_meta WHERE key = 'audit_key'").fetchone()
    if row is None:
        with db.atomic():
            db.execute("INSERT INTO central_meta (key, value) VALUES ('audit_key', ?) "
                       "ON CONFLICT (key) DO NOTHING", [secrets.token_hex(32)])
        row = db.one("SELECT value FROM central_meta WHERE key = 'audit_key'")
    return bytes.fromhex(row[0])


def fingerprint(db: CentralDB, identifier: str) -> str:
    """The keyed fingerprint the audit log keeps of ``identifier`` (also to search it)."""
    return hmac.new(_key(db), identifier.strip().encode("utf-8"), hashlib.sha256
                    ).hexdigest()[:16]


def safe_params(db: CentralDB, params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name in PLAIN or value is None:
            out[name] = value
        else:
            out[name] = {"masked": mask(str(value)), "hmac": fingerprint(db, str(value))}
    return out


def record(db: CentralDB, user: User, action: str, params: dict[str, Any], *,
           rows: int | None, client: str | None) -> None:
    """One audit row; raises if it cannot be written (then the answer is not shown)."""
    text = json.dumps(safe_params(db, params), ensure_ascii=False, sort_keys=True)
    with db.atomic():
        db.execute("INSERT INTO audit_log (at, username, role, action, params, result_rows, "
                   "client) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [iso(_now()), user.username, user.role, action, text, rows,
                    (client or "")[:64]])


def entries(db: CentralDB, *, limit: int = 500, fingerprint_of: str | None = None
            ) -> list[dict[str, Any]]:
    """The newest audit rows first; only those naming one identifier's fingerprint when
    ``fingerprint_of`` is given."""
    sql = "SELECT seq, at, username, role, action, params, result_rows, client FROM audit_log"
    args: list[Any] = []
    if fingerprint_of:
        sql += " WHERE params LIKE ?"
        args.append(f'%"hmac": "{fingerprint(db, fingerprint_of)}"%')
    rows = db.execute(sql + " ORDER BY seq DESC LIMIT ?", [*args, limit]).fetchall()
    return [{"seq": r[0], "at": r[1], "username": r[2], "role": r[3], "action": r[4],
             "params": json.loads(r[5]), "rows": r[6], "client": r[7]} for r in rows]


def _now() -> datetime:  # late import keeps this module light for the CLI
    from offline_queue.central.db import now_utc

    return now_utc()
