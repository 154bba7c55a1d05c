"""The kiosk screen: a fullscreen pygame UI driven by the scan loop.

``run_ui`` owns the main thread: each frame it calls ``loop.step()``, draws the current
screen and calls ``on_tick`` (the watchdog).  pygame is imported only when the UI runs.
The loop and the screen meet at one typed seam (``kiosk.runtime.events``); the screen's
state machine is ``kiosk.ui.app.KioskApp`` over the states of ``kiosk.ui.machine``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kiosk.domain.officers import check_pin
from kiosk.errors import ConfigError

if TYPE_CHECKING:
    from kiosk.runtime.scanloop import ScanLoop
    from kiosk.ui.appliance import Appliance

LANGUAGES = ("vi", "en")


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
            check_pin(self.officer_pin)

def run_ui(
    loop: ScanLoop,
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


__all__ = ["LANGUAGES", "UiConfig", "run_ui"]
