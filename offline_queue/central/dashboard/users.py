"""The dashboard's users: roles, Argon2id password hashes, enable/disable.

Users live in the central database (``dashboard_users``, migration m005 / PostgreSQL
version 2), managed with ``checkpoint-kiosk central user add|list|disable``.  Passwords
are hashed with argon2-cffi's Argon2id (its defaults: RFC 9106's second recommended
profile, 64 MiB, 3 passes; a login costs the server ~0.1 s, a stolen database costs an
attacker the same per guess).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from offline_queue.central.backend import CentralDB
from offline_queue.clock import iso

ROLES = ("administrator", "official", "viewer")
ROLE_TITLES = {"administrator": "administrator", "official": "health official",
               "viewer": "viewer"}
# What each role may do.  The administrator runs the platform (checkpoints, devices,
# enrolment tokens, documents, the audit log) but does not trace: reading personal data
# is the health officials' task, and the administrator audits it (separation of duties;
# one person with both tasks has two accounts).
PERMISSIONS: dict[str, frozenset[str]] = {
    "administrator": frozenset({"reports", "fleet", "manage", "audit"}),
    "official": frozenset({"reports", "trace"}),
    "viewer": frozenset({"reports"}),
}
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")

_hasher = PasswordHasher()
# Verified against when the user is unknown or disabled, so that the answer takes as
# long as for a real user (no probing for names by timing).
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    @property
    def role_title(self) -> str:
        return ROLE_TITLES.get(self.role, self.role)


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise ValueError(f"user name {username[:80]!r} is not allowed; use 2 to 64 lower-case "
                         "letters, digits, '.', '_', '-' or '@', starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role {role[:40]!r} is unknown; use one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"the password has {len(password)} characters; use {MIN_PASSWORD} to "
                         f"{MAX_PASSWORD} (a phrase of a few words is easiest to remember)")
    return password


def add_user(db: CentralDB, username: str, role: str, password: str) -> User:
    """Create an enabled user; ValueError if the name is taken or a value is not allowed."""
    name, role = check_username(username), check_role(role)
    digest = _hasher.hash(check_password(password))
    with db.atomic():
        if db.execute("SELECT 1 FROM dashboard_users WHERE username = ?", [name]).fetchone():
            raise ValueError(f"user {name!r} exists already; pick another name, or "
                             "'central user disable' the old one")
        db.execute("INSERT INTO dashboard_users (username, role, password_hash, created_at) "
                   "VALUES (?, ?, ?, ?)", [name, role, digest, iso(_now())])
        (user_id,) = db.one("SELECT id FROM dashboard_users WHERE username = ?", [name])
    return User(int(user_id), name, role)


def list_users(db: CentralDB) -> list[dict[str, Any]]:
    """Every user (no hashes): name, role, created, last login, disabled."""
    rows = db.execute("SELECT username, role, created_at, last_login_at, disabled_at "
                      "FROM dashboard_users ORDER BY username").fetchall()
    return [{"username": r[0], "role": r[1], "created_at": r[2], "last_login_at": r[3],
             "disabled_at": r[4]} for r in rows]


def set_disabled(db: CentralDB, username: str, disabled: bool = True) -> bool:
    """Disable (or enable again) a user; a disabled user's sessions end at once.  False
    if no such user."""
    name = check_username(username)
    with db.atomic():
        row = db.execute("SELECT id FROM dashboard_users WHERE username = ?", [name]).fetchone()
        if row is None:
            return False
        db.execute("UPDATE dashboard_users SET disabled_at = ? WHERE id = ?",
                   [iso(_now()) if disabled else None, row[0]])
        if disabled:
            db.execute("DELETE FROM dashboard_sessions WHERE user_id = ?", [row[0]])
    return True


def authenticate(db: CentralDB, username: str, password: str) -> User | None:
    """The enabled user with this name and password, or None (same time either way)."""
    try:
        name = check_username(username)
    except ValueError:
        name = ""
    row = db.execute("SELECT id, username, role, password_hash FROM dashboard_users "
                     "WHERE username = ? AND disabled_at IS NULL", [name]).fetchone()
    digest = row[3] if row else _DUMMY_HASH
    try:
        _hasher.verify(digest, password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    user = User(int(row[0]), row[1], row[2])
    with db.atomic():
        if _hasher.check_needs_rehash(digest):  # the library's parameters grew
            db.execute("UPDATE dashboard_users SET password_hash = ? WHERE id = ?",
                       [_hasher.hash(password), user.id])
        db.execute("UPDATE dashboard_users SET last_login_at = ? WHERE id = ?",
                   [iso(_now()), user.id])
    return user


def _now() -> datetime:  # late import keeps this module light for the CLI
    from offline_queue.central.db import now_utc

    return now_utc()
