"""The kiosk screen: a fullscreen pygame UI driven by the scan loop.

``run_ui`` owns the main thread: each frame it calls ``loop.step()``, draws the current
screen and calls ``on_tick`` (the watchdog).  pygame is imported only when the UI runs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiosk.errors import ConfigError

if TYPE_CHECKING:
    from kiosk.ui.appliance import Appliance
    from kiosk.ui.contract import ScanLoopLike

LANGUAGES = ("vi", "en")

# PBKDF2 so that a config file that leaks does not give away a 4–8 digit PIN at once;
# 200k rounds take ~0.1 s on a Pi 4, once per PIN entry.
_PIN_SCHEME = "pbkdf2_sha256"
_PIN_ROUNDS = 200_000


def hash_pin(pin: str, *, salt: bytes | None = None, rounds: int = _PIN_ROUNDS) -> str:
    """Return ``pbkdf2_sha256$rounds$salt$hash`` for ``officer_pin`` in the config file."""
    _check_pin_digits(pin)
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, rounds)
    return f"{_PIN_SCHEME}${rounds}${salt.hex()}${digest.hex()}"


def _check_pin_digits(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 8):
        # The value is a secret: say what is wrong, never echo it.
        raise ConfigError(
            "ui.officer_pin must be 4 to 8 digits or a hash from hash_pin(); "
            f"got a value of length {len(pin)}"
        )


def pin_matches(stored: str, entered: str) -> bool:
    """Compare an entered PIN with the configured one (plain digits or a hash) in constant time."""
    if stored.startswith(_PIN_SCHEME + "$"):
        _, rounds, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", entered.encode(), bytes.fromhex(salt), int(rounds))
        return hmac.compare_digest(got.hex(), digest)
    return hmac.compare_digest(stored.encode(), entered.encode())


@dataclass(frozen=True)
class UiConfig:
    """The ``[ui]`` table of the kiosk configuration, validated on construction."""

    fullscreen: bool = True
    size: tuple[int, int] | None = None  # None = the display's own size
    portrait: bool = False  # draw portrait on a landscape panel (rotated 90°)
    language: str = "vi"
    result_seconds: float = 4.0
    idle_seconds: float = 60.0
    # Plain 4–8 digits or hash_pin() output; None = the panel opens only with the GPIO key.
    officer_pin: str | None = field(default=None, repr=False)
    show_lights: bool = False  # the demo draws the traffic lights, buzzer and gate
    camera_crop: float = 1.0  # camera.crop: sizes the guide frame to the card
    voice: bool = False
    fps: int = 30
    sound: bool = True

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ConfigError(
                f"ui.language must be one of {', '.join(LANGUAGES)}; got {self.language!r}"
            )
        if self.size is not None:
            if (
                len(self.size) != 2
                or not all(isinstance(v, int) and 200 <= v <= 8192 for v in self.size)
            ):
                raise ConfigError(
                    f"ui.size must be [width, height] in pixels (200–8192) or absent; "
                    f"got {self.size!r}"
                )
        for key, low, high in (
            ("result_seconds", 0.5, 120.0),
            ("idle_seconds", 5.0, 86400.0),
        ):
            value = getattr(self, key)
            if not isinstance(value, int | float) or not low <= value <= high:
                raise ConfigError(f"ui.{key} must be a number of seconds in {low}–{high}; "
                                  f"got {value!r}")
        if not isinstance(self.fps, int) or not 5 <= self.fps <= 120:
            raise ConfigError(f"ui.fps must be an integer in 5–120; got {self.fps!r}")
        if self.officer_pin is not None:
            if self.officer_pin.startswith(_PIN_SCHEME + "$"):
                parts = self.officer_pin.split("$")
                if len(parts) != 4 or not parts[1].isdigit():
                    raise ConfigError(
                        "ui.officer_pin looks like a hash but is malformed; "
                        "make it again with hash_pin()"
                    )
            else:
                _check_pin_digits(self.officer_pin)


def run_ui(
    loop: ScanLoopLike,
    *,
    config: UiConfig,
    stop: threading.Event,
    on_tick: Callable[[], None] = lambda: None,
    appliance: Appliance | None = None,
) -> None:
    """Open the display and run the kiosk screen until ``stop`` is set (see ``kiosk.ui.app``).

    ``appliance`` enables the officer panel's provisioning and self-test entries; it returns
    (exit status 0) after a provisioning QR was enrolled, so systemd restarts the kiosk.
    """
    from kiosk.ui.app import run_ui as _run

    _run(loop, config=config, stop=stop, on_tick=on_tick, appliance=appliance)


__all__ = ["LANGUAGES", "UiConfig", "hash_pin", "pin_matches", "run_ui"]
