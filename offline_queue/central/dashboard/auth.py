"""Dashboard sessions, CSRF tokens and the wrong-password throttle.

A session is a row of ``dashboard_sessions``: the cookie holds a random token, the
database its SHA-256 (a copy of the database logs nobody in), the user, a CSRF token,
when it began and when it was last used.  It ends after ``IDLE`` without a request or
``ABSOLUTE`` after the login, whichever comes first, at logout, and when the user is
disabled.  Server-side rows rather than a signed cookie: a disabled user or a logout is
out at once, and there is no signing key to keep.

CSRF: every form carries the session's token (a synchronizer token), checked on every
POST; the login form, before any session, a double-submit cookie.  The cookie is
``SameSite=Strict`` besides.  Flask-WTF's CSRFProtect would bring WTForms and Flask's
signed cookie session for the same check: this is ~20 lines over the session row the
dashboard has anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta

from offline_queue.central.backend import CentralDB
from offline_queue.central.dashboard.users import User

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)
COOKIE = "checkpoint_dashboard"
LOGIN_CSRF_COOKIE = "checkpoint_dashboard_login"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _seconds() -> int:
    return int(time.time())


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    token: str


def open_session(db: CentralDB, user: User, *, now: int | None = None) -> Session:
    """A new session for ``user`` (a new token at every login: no session fixation)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    stamp = _seconds() if now is None else now
    with db.atomic():
        db.execute("INSERT INTO dashboard_sessions (token_hash, user_id, csrf, created_at, "
                   "last_seen) VALUES (?, ?, ?, ?, ?)",
                   [_hash(token), user.id, csrf, stamp, stamp])
        # Ended sessions go when someone logs in: the table stays small.
        db.execute("DELETE FROM dashboard_sessions WHERE created_at < ? OR last_seen < ?",
                   [stamp - int(ABSOLUTE.total_seconds()), stamp - int(IDLE.total_seconds())])
    return Session(user, csrf, token)


def current_session(db: CentralDB, token: str | None, *, idle: timedelta = IDLE,
                    absolute: timedelta = ABSOLUTE, now: int | None = None
                    ) -> Session | None:
    """The live session of this cookie token (its last use moved to now), or None."""
    if not token or len(token) > 200:
        return None
    stamp = _seconds() if now is None else now
    row = db.execute(
        "SELECT s.csrf, s.created_at, s.last_seen, u.id, u.username, u.role "
        "FROM dashboard_sessions AS s JOIN dashboard_users AS u ON u.id = s.user_id "
        "WHERE s.token_hash = ? AND u.disabled_at IS NULL", [_hash(token)]).fetchone()
    if row is None:
        return None
    csrf, created, last_seen = row[0], int(row[1]), int(row[2])
    if stamp - created > absolute.total_seconds() or stamp - last_seen > idle.total_seconds():
        close_session(db, token)
        return None
    if stamp > last_seen:
        with db.atomic():
            db.execute("UPDATE dashboard_sessions SET last_seen = ? WHERE token_hash = ?",
                       [stamp, _hash(token)])
    return Session(User(int(row[3]), row[4], row[5]), csrf, token)


def close_session(db: CentralDB, token: str) -> None:
    with db.atomic():
        db.execute("DELETE FROM dashboard_sessions WHERE token_hash = ?", [_hash(token)])


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


class LoginThrottle:
    """Wrong passwords slow the guesser down: after ``per_user`` failures for one user
    name, or ``per_client`` from one address, within ``window`` seconds, further tries
    are refused (without checking the password) until the oldest failure leaves the
    window.  In memory: the central is one process; a restart forgives."""

    def __init__(self, *, per_user: int = 5, per_client: int = 20,
                 window: float = 15 * 60) -> None:
        self.per_user, self.per_client, self.window = per_user, per_client, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.setdefault(key, deque())
        while stamps and now - stamps[0] > self.window:
            stamps.popleft()
        return stamps

    def wait(self, username: str, client: str) -> int:
        """Seconds before this user name / address may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            waits = [0.0]
            for key, limit in ((f"u:{username}", self.per_user),
                               (f"c:{client}", self.per_client)):
                stamps = self._recent(key, now)
                if len(stamps) >= limit:
                    waits.append(stamps[-limit] + self.window - now)
            return int(max(waits)) + (1 if max(waits) > 0 else 0)

    def failed(self, username: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"u:{username}", f"c:{client}"):
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # a flood of names: forget the idle ones
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{username}", None)
