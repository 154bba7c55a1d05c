"""The screen's state machine: its states (the screens), who each is for, when each ends.

Every screen is a state with ``enter`` / ``handle`` (input) / ``update`` (do) / ``draw`` /
``exit``.  The machine, :class:`kiosk.ui.app.KioskApp`, owns everything between them:

* **transitions**: only ``app.go(name)`` changes the state;
* **interruptions**: a code the scan loop decided replaces a citizen's screen with its result,
  but on a screen an officer is working at (:meth:`Screen.officer_at_kiosk`) it only shows as
  a notice; a screen that wants the camera's codes for itself says so with :meth:`Screen.takes`
  and gets them through :meth:`Screen.code` (never decided, never recorded);
* **timeouts**: each screen says when it ends (:meth:`Screen.deadline`, on the machine's
  clock) and what happens then (:meth:`Screen.expired`); the machine checks every frame.
  Every duration is a field of :class:`Timeouts`, so tests shorten them instead of sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import pygame

if TYPE_CHECKING:
    from kiosk.runtime.capture import Decoded
    from kiosk.runtime.events import ScanResult
    from kiosk.ui.app import KioskApp

BG = (16, 24, 38)  # the screens' background (kiosk.ui.screens draws on it)

#: citizen: a person in the queue reads it (results take over, the PIN pad may be asked for);
#: officer: an officer works at it (results show as notices); system: start-up and prompts.
Audience = Literal["citizen", "officer", "system"]


@dataclass(frozen=True)
class Timeouts:
    """Every duration the screens run on, in seconds."""

    splash: float = 1.0
    pin: float = 20.0  # the PIN pad, untouched
    officer: float = 120.0  # an officer who walks away must not leave the panel open
    declare: float = 180.0  # a declaration form left alone is discarded, nothing recorded
    long_press: float = 2.0  # press and hold the status strip to ask for the PIN
    pin_attempts: int = 5
    pin_lockout: float = 60.0
    notice_min: float = 6.0  # a decided code's notice on an officer screen, at least
    disabled_notice: float = 5.0  # why a greyed-out panel entry does nothing
    restart_after: float = 10.0  # time to read a provisioning result before the restart
    provisioned: float = 20.0  # the start-up provisioning result goes away by itself
    remind: float = 600.0  # a staged provisioning file put off with "Later"
    light_question: float = 60.0  # an unanswered self-test question counts as "no"
    counts_poll: float = 2.0
    provision_poll: float = 5.0  # how soon a provisioning file's result appears


class Screen:
    """One state of the machine; the defaults are a citizen screen that never times out."""

    name: ClassVar[str] = ""
    audience: ClassVar[Audience] = "citizen"
    #: scanning, idle and fault: where the kiosk rests between people
    rest: ClassVar[bool] = False

    def enter(self, app: KioskApp) -> None:
        """Called by ``app.go``; a screen that shows something given to it (a result, a
        staged change) is handed it first by a typed ``load`` method the app calls."""

    def exit(self, app: KioskApp) -> None:
        pass

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        pass

    def update(self, app: KioskApp) -> None:
        pass

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)

    # --- what the machine asks --------------------------------------------------------------

    def officer_at_kiosk(self, app: KioskApp) -> bool:
        """An officer is working here: a decided code shows as a notice, the screen stays."""
        return self.audience == "officer"

    def busy(self, app: KioskApp) -> bool:
        """Background work runs that must not be abandoned (buttons and timeouts wait)."""
        return False

    def takes(self, app: KioskApp, code: Decoded) -> bool:
        """Claim a code the camera read, instead of it being decided and recorded."""
        return False

    def code(self, app: KioskApp, code: Decoded) -> None:
        """A code this screen claimed."""

    def result_arrived(self, app: KioskApp, result: ScanResult) -> None:
        """A code was decided and recorded while this (officer) screen stayed."""

    def deadline(self, app: KioskApp) -> float | None:
        """When this screen ends, on ``app.clock``; None: it stays."""
        return None

    def expired(self, app: KioskApp) -> None:
        """The deadline passed: by default back to the citizen's home screen."""
        app.home()
