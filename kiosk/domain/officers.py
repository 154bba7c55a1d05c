"""Officer PINs: how they are stored (a slow hash) and checked (in constant time), and the
named officers' list the central publishes (:class:`OfficerList`).

PBKDF2, so that a configuration file that leaks does not give away a 4–8 digit PIN at once;
200k rounds take about 0.1 s on a Pi 4, once per PIN entry.  A plain PIN is still accepted
in the file (a technician's first set-up) and compared in constant time too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiosk.domain import model
from kiosk.domain.watchlist import (
    DEFAULT_KDF,
    HASH_BYTES,
    MIN_SALT_BYTES,
    KdfParams,
    derive,
    json_object,
    read_kdf,
)
from kiosk.errors import ConfigError

PIN_SCHEME = "pbkdf2_sha256"
PIN_ROUNDS = 200_000


def hash_pin(pin: str, *, salt: bytes | None = None, rounds: int = PIN_ROUNDS) -> str:
    """Return ``pbkdf2_sha256$rounds$salt$hash`` for ``ui.officer_pin`` in the config file."""
    _check_digits(pin)
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, rounds)
    return f"{PIN_SCHEME}${rounds}${salt.hex()}${digest.hex()}"


def check_pin(stored: str) -> None:
    """Raise ConfigError unless ``stored`` is 4–8 digits or a well-formed :func:`hash_pin` value.

    The value is a secret: the message says what is wrong and never echoes it.
    """
    if stored.startswith(PIN_SCHEME + "$"):
        parts = stored.split("$")
        if len(parts) != 4 or not parts[1].isdigit():
            raise ConfigError("ui.officer_pin looks like a hash but is malformed; "
                              "make it again with kiosk.domain.officers.hash_pin()")
        return
    _check_digits(stored)


def _check_digits(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        raise ConfigError(
            "ui.officer_pin must be 4 to 8 digits or a hash from hash_pin(); "
            f"got a value of length {len(pin)}"
        )


def pin_matches(stored: str, entered: str) -> bool:
    """Compare an entered PIN with the configured one (plain digits or a hash) in constant time."""
    if stored.startswith(PIN_SCHEME + "$"):
        _, rounds, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", entered.encode(), bytes.fromhex(salt), int(rounds))
        return hmac.compare_digest(got.hex(), digest)
    return hmac.compare_digest(stored.encode(), entered.encode())


# -- named officers: the down-synced officer list ------------------------------------------

# The officer list (document ``officers``): who may open the officer panel, each with a PIN
# of their own, so every override and declaration says which officer made it.
#
#   {"version": 1, "issued_at": ISO 8601, "salt": hex (>= 16 bytes), "kdf": {Argon2id costs},
#    "officers": [{"id": "hn-017", "name": "Nguyễn Văn An", "role": "officer",
#                  "pin": hex of the PIN's Argon2id hash}]}
#
# One salt for the list (like the watchlist) so that the PIN pad identifies an officer with one
# hash whatever the list's length; a PIN therefore belongs to one officer only (the builder
# refuses two officers with the same PIN).  Costs are the watchlist's (12 MiB, about 6 ms on
# x86-64, 20-30 ms on a Pi 4): a short PIN is protected by the lock-out, the hash keeps a copy
# of the list from giving every PIN away at a glance.

OFFICERS_VERSION = 1
ROLES = ("officer", "supervisor")
MAX_OFFICERS = 1000
MAX_OFFICER_NAME = 80
OFFICER_ID = model.OFFICER_ID  # what a check-in's officer field takes (offline_queue.records)
# What a record says when the panel was opened without a named officer.
SHARED_PIN = "shared-pin"  # the config's ui.officer_pin (no officer list synced yet)
OFFICER_KEY = "officer-key"  # the GPIO officer key


@dataclass(frozen=True)
class Officer:
    """One named officer (never holds the PIN)."""

    id: str
    name: str
    role: str = "officer"


@dataclass(frozen=True)
class OfficerList:
    """The officer list in force: who a PIN belongs to."""

    officers: tuple[Officer, ...]
    issued_at: datetime
    salt: bytes = field(repr=False)
    kdf: KdfParams = DEFAULT_KDF
    by_digest: Mapping[str, Officer] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.officers)

    def identify(self, entered: str) -> Officer | None:
        """The officer whose PIN ``entered`` is, or None (one Argon2id hash)."""
        if not (entered.isascii() and entered.isdigit() and 4 <= len(entered) <= 8):
            return None
        return self.by_digest.get(derive(entered, self.salt, self.kdf))

    @classmethod
    def from_json(cls, data: bytes | str) -> OfficerList:
        """Parse and check the document; :class:`ConfigError` names the bad member."""
        doc = json_object(data, "officers")
        unknown = sorted(set(doc) - {"version", "issued_at", "salt", "kdf", "officers"})
        if unknown:
            raise ConfigError(f"officers has unknown member(s) {unknown!r}; expected version, "
                              "issued_at, salt, kdf, officers")
        if doc.get("version") != OFFICERS_VERSION:
            raise ConfigError(f"officers.version is {doc.get('version')!r}; this kiosk reads "
                              f"version {OFFICERS_VERSION} (make it with checkpoint-kiosk "
                              "officers build)")
        issued_at = _issued_at(doc.get("issued_at"))
        salt = _officers_salt(doc.get("salt"))
        kdf = read_kdf(doc, "officers")
        rows = doc.get("officers")
        if not isinstance(rows, list) or not rows:
            raise ConfigError(f"officers.officers is {_short(rows)}; expected a non-empty array "
                              "(an empty list would lock every officer out: publish none "
                              "instead, and the kiosk's configured PIN applies)")
        if len(rows) > MAX_OFFICERS:
            raise ConfigError(f"officers.officers has {len(rows)} officers; at most "
                              f"{MAX_OFFICERS}")
        officers: list[Officer] = []
        by_digest: dict[str, Officer] = {}
        for i, row in enumerate(rows):
            officer, digest = _officer(i, row)
            if any(o.id == officer.id for o in officers):
                raise ConfigError(f"officers.officers[{i}].id {officer.id!r} is used twice")
            if digest in by_digest:
                raise ConfigError(f"officers.officers[{i}].pin is the PIN of "
                                  f"{by_digest[digest].id!r} too; every officer needs their own")
            officers.append(officer)
            by_digest[digest] = officer
        return cls(tuple(officers), issued_at, salt, kdf, by_digest)


def build_officers(rows: Iterable[tuple[str, str, str, str]], *, salt: bytes | None = None,
                   issued_at: datetime | None = None,
                   kdf: KdfParams = DEFAULT_KDF) -> dict[str, Any]:
    """The officer-list document from ``(id, name, role, pin)`` rows (PINs 4-8 digits).

    Raises :class:`ConfigError` naming the row (1-based) and the field; a PIN never shows.
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    issued_at = issued_at or datetime.now(UTC)
    out: list[dict[str, str]] = []
    for n, (officer_id, name, role, pin) in enumerate(rows, start=1):
        try:
            _check_digits(pin)
        except ConfigError:
            raise ConfigError(f"officer {n} ({officer_id!r}): the PIN must be 4 to 8 digits "
                              f"(6 or more recommended); got {len(pin)} character(s)") from None
        out.append({"id": officer_id, "name": name, "role": role,
                    "pin": derive(pin, salt, kdf)})
    doc = {"version": OFFICERS_VERSION, "issued_at": issued_at.isoformat(),
           "salt": salt.hex(), "kdf": kdf.as_json(), "officers": out}
    try:
        OfficerList.from_json(json.dumps(doc))
    except ConfigError as e:
        raise ConfigError(str(e).replace("officers.officers[", "officer row [")) from None
    return doc


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _issued_at(value: object) -> datetime:
    problem = f"officers.issued_at is {_short(value)}, expected an ISO 8601 time"
    if not isinstance(value, str):
        raise ConfigError(problem)
    try:
        at = datetime.fromisoformat(value)
    except ValueError as e:
        raise ConfigError(problem) from e
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _officers_salt(value: object) -> bytes:
    try:
        if not isinstance(value, str):
            raise TypeError(f"a {type(value).__name__}")
        salt = bytes.fromhex(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"officers.salt {_short(value)} is not a hex string") from e
    if len(salt) < MIN_SALT_BYTES:
        raise ConfigError(f"officers.salt is {len(salt)} byte(s); it must be at least "
                          f"{MIN_SALT_BYTES} random bytes")
    return salt


def _officer(i: int, row: object) -> tuple[Officer, str]:
    where = f"officers.officers[{i}]"
    if not isinstance(row, dict) or set(row) != {"id", "name", "role", "pin"}:
        raise ConfigError(f"{where} is {_short(row)}; expected an object with exactly id, "
                          "name, role and pin")
    officer_id, name, role, pin = row["id"], row["name"], row["role"], row["pin"]
    if not isinstance(officer_id, str) or not OFFICER_ID.fullmatch(officer_id):
        raise ConfigError(f"{where}.id is {_short(officer_id)}; expected 1-32 letters, digits, "
                          ". _ - (it is recorded with every override and declaration)")
    if (not isinstance(name, str) or not name.strip() or len(name) > MAX_OFFICER_NAME
            or any(unicodedata.category(c)[0] == "C" for c in name)):
        raise ConfigError(f"{where}.name is {_short(name)}; expected plain text of "
                          f"1..{MAX_OFFICER_NAME} characters")
    if role not in ROLES:
        raise ConfigError(f"{where}.role is {_short(role)}; choose one of {', '.join(ROLES)}")
    if not isinstance(pin, str) or len(pin) != 2 * HASH_BYTES or not _is_hex(pin):
        raise ConfigError(f"{where}.pin is not the {2 * HASH_BYTES}-hex-digit Argon2id hash "
                          "of a PIN (make the list with checkpoint-kiosk officers build)")
    name = unicodedata.normalize("NFC", " ".join(name.split()))
    return Officer(officer_id, name, role), pin.lower()


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return value.isascii()
