"""Officer PINs: how they are stored (a slow hash) and checked (in constant time).

PBKDF2, so that a configuration file that leaks does not give away a 4–8 digit PIN at once;
200k rounds take about 0.1 s on a Pi 4, once per PIN entry.  A plain PIN is still accepted
in the file (a technician's first set-up) and compared in constant time too.
"""

from __future__ import annotations

import hashlib
import hmac
import os

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
