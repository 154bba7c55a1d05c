"""The kiosk screen's state machine and the pygame main loop.

``KioskApp`` is the machine (``kiosk.ui.machine`` says what it owns): its states are the
screens of ``kiosk.ui.screens``, ``kiosk.ui.technician`` and ``kiosk.ui.confirm_provision``;
each frame it takes what the scan loop's step produced (typed items, ``kiosk.runtime.events``),
runs the current screen's timers and draws onto any surface, so tests drive it with real
pygame events on the dummy driver and an injected clock.  ``run_ui`` opens the display and
runs it frame by frame.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, TypeVar

import pygame

from kiosk.config import UiSettings
from kiosk.domain.documents import load as load_document
from kiosk.domain.model import Outcome
from kiosk.domain.officers import OFFICER_KEY, SHARED_PIN, OfficerList, pin_matches
from kiosk.errors import KioskError
from kiosk.runtime.capture import Decoded
from kiosk.runtime.events import ButtonPress, CodeClaimed, Health, ScanResult
from kiosk.runtime.scanloop import ScanLoop
from kiosk.ui import screens
from kiosk.ui.appliance import Appliance, Job, ResultWatch
from kiosk.ui.confirm_provision import ConfirmProvision
from kiosk.ui.confirm_provision import offer as offer_pending_change
from kiosk.ui.declare import Declare
from kiosk.ui.i18n import Translator
from kiosk.ui.layout import Layout
from kiosk.ui.machine import Screen, Timeouts
from kiosk.ui.technician import Provision, Provisioned, SelfTest
from kiosk.ui.text import Fonts

if TYPE_CHECKING:
    from kiosk.ops.provision import Result as ProvisionResult

log = logging.getLogger(__name__)
S = TypeVar("S", bound=Screen)

def all_screens() -> dict[str, Screen]:
    """A fresh set of screens by name: the machine's states."""
    states: list[Screen] = [
        screens.Splash(), screens.Scanning(), screens.Idle(), screens.Result(), screens.Fault(),
        screens.Pin(), screens.Manual(), screens.Officer(), screens.Override(), Declare(),
        Provision(),
        SelfTest(), Provisioned(), ConfirmProvision(),
    ]
    return {s.name: s for s in states}


class KioskApp:
    """All screens of the kiosk over one ScanLoop; ``update`` then ``draw`` once per frame."""

    def __init__(
        self,
        loop: ScanLoop,
        settings: UiSettings,
        size: tuple[int, int],
        *,
        show_lights: bool = False,
        camera_crop: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sound: Any = None,
        tz: tzinfo | None = None,
        appliance: Appliance | None = None,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.loop = loop
        self.settings = settings
        self.show_lights = show_lights  # the demo draws the lights, buzzer and gate
        self.camera_crop = camera_crop  # camera.crop: sizes the guide frame to the card
        self.clock = clock
        self.now = now
        self.sound = sound
        self.tz = tz  # None: the system's local time zone (Asia/Ho_Chi_Minh on the appliance)
        self.t = Translator(settings.language)
        self.fonts = Fonts()
        self.layout = Layout.for_size(*size, lights=show_lights)
        self.timeouts = timeouts or Timeouts()
        self.health: Health | None = None  # the last one the loop sent
        self.counts: dict[str, int] = {}
        self.last_result: ScanResult | None = None
        # What "Change last decision" changes: the last check-in that was recorded, so a
        # venue poster scanned after a person does not hide that person's decision.
        self.last_recorded: ScanResult | None = None
        # Recorded while an officer screen was open: the officer came for the person decided
        # before, so this becomes "last" only once the officer is back on a citizen screen.
        self.recorded_meanwhile: ScanResult | None = None
        # A result decided while an officer screen was open, shown compactly on that screen.
        self.notice: ScanResult | None = None
        self.notice_until = 0.0
        self.internal_error: str | None = None
        self.running = True
        self.appliance = appliance or Appliance()
        self.provision_watch = ResultWatch(self.appliance.state_dir)
        self._provision_polled = -1e9
        self._jobs: list[Job] = []
        self.pin_failures = 0
        self.pin_locked_until = 0.0
        # Who opened the officer panel: a named officer's id (the synced officer list), or
        # SHARED_PIN / OFFICER_KEY; recorded with each override and declaration, and
        # forgotten when the kiosk is back on a citizens' screen.
        self.officer_id = ""
        self.officer_name = ""
        self._officers: OfficerList | None = None
        self._officers_version: Any = None
        self._screens = all_screens()
        # The screens shown with something handed to them, each by its own type, so what
        # they are given is checked by the type checker (the rest are entered by name).
        self._result = self._typed(screens.Result)
        self._provisioned = self._typed(Provisioned)
        self._confirm = self._typed(ConfirmProvision)  # offered when the kiosk rests
        started = clock()
        self.last_activity = started
        self._counts_at = -1e9
        self._press_started: float | None = None
        self.state = ""
        self.screen: Screen = self._screens["splash"]
        self.entered_at = started
        self.go("splash")

    # --- transitions -------------------------------------------------------------------

    def _typed(self, kind: type[S]) -> S:
        screen = self._screens[kind.name]
        if not isinstance(screen, kind):
            raise TypeError(f"all_screens() maps {kind.name!r} to {type(screen).__name__}, "
                            f"not {kind.__name__}; give each screen class its own name")
        return screen

    def show_provisioned(self, result: ProvisionResult) -> None:
        """A provisioning result not shown on this kiosk yet: show it once."""
        self._provisioned.load(result)
        self.go(Provisioned.name)

    def go(self, state: str) -> None:
        """Leave the current screen and enter ``state`` (names are in ``all_screens``)."""
        if self.state:
            self.screen.exit(self)
        log.debug("screen %s -> %s", self.state or "-", state)
        self.state = state
        self.screen = self._screens[state]
        self.entered_at = self.clock()
        self.screen.enter(self)
        if self.screen.rest:
            self.officer_id = self.officer_name = ""  # the officer has left the kiosk
        if not self.officer_screen:
            self.notice = None  # back on a citizen screen: the result is in the counts
            if self.screen.rest and self.recorded_meanwhile is not None:
                self.last_recorded, self.recorded_meanwhile = self.recorded_meanwhile, None

    def home(self) -> None:
        """The citizen-facing screen for the current health: scanning, or the fault screen."""
        self.go("fault" if self.faults() else "scanning")

    def touch(self) -> None:
        self.last_activity = self.clock()

    @property
    def officer_screen(self) -> bool:
        """An officer is at the kiosk: PIN pad, panel, its sub-screens, or the result of the
        officer's own action (which returns to the panel)."""
        return self.screen.officer_at_kiosk(self)

    @property
    def busy(self) -> bool:
        """Background work of the current screen is running: it must not be left."""
        return self.screen.busy(self)

    def after_splash(self) -> None:
        """Start-up: a provisioning result not shown yet comes first, then the home screen."""
        self._provision_polled = self.clock()
        result = self.provision_watch.unseen()
        if result is not None:
            self.show_provisioned(result)
        else:
            self.home()

    def restart(self) -> None:
        """Leave the main loop with exit status 0; systemd (Restart=always) starts us again."""
        log.info("leaving the screen so the kiosk restarts with its new configuration")
        self.running = False

    # --- background work ---------------------------------------------------------------

    def start_job(self, name: str, work: Any) -> Job:
        """Run ``work(job)`` on a thread; the screen polls ``job.poll()`` every frame."""
        self._jobs = [j for j in self._jobs if j.alive]
        job = Job(name, work)
        self._jobs.append(job)
        return job.start()

    def hold_signals(self) -> Any:
        """Borrow the lights from the scan loop for the self-test; returns the real Signals.
        They go back by themselves once no background job runs any more."""
        return self.loop.lend_signals()

    def release_signals(self) -> None:
        """Give the lights back; the loop shows what its state calls for now."""
        self.loop.return_signals()

    def close(self) -> None:
        """Stop background work (idempotent); the lights go back to the loop."""
        for job in self._jobs:
            job.close()
        self._jobs.clear()
        self.release_signals()

    # --- scan loop ---------------------------------------------------------------------

    def update(self) -> None:
        """One step of the scan loop, then the machine's timers and the current screen's."""
        now = self.clock()
        if self.loop.signals_lent and not any(j.alive for j in self._jobs):
            self.release_signals()  # the self-test is over, even if its screen was left
        self.take_loop_outputs()
        if now - self._counts_at >= self.timeouts.counts_poll:
            self.refresh_counts()
        if self.screen.rest and now - self._provision_polled >= self.timeouts.provision_poll:
            self._provision_polled = now
            self.poll_provisioning()
        if (self._press_started is not None and self.screen.audience == "citizen"
                and now - self._press_started >= self.timeouts.long_press):
            self._press_started = None
            self.ask_pin()
        deadline = self.screen.deadline(self)
        if deadline is not None and now >= deadline:
            self.screen.expired(self)
        self.screen.update(self)

    def take_loop_outputs(self) -> None:
        """One step of the scan loop; each typed output goes where it belongs: a claimed code
        to the screen that claimed it, a decision to the result screen (or, over an officer's
        screen, a notice), health to the status bar, a button to the machine."""
        screen = self.screen

        def claim(code: Decoded) -> bool:
            return screen.takes(self, code)

        for item in self.loop.step(claim=claim):
            match item:
                case CodeClaimed(code=code):
                    screen.code(self, code)
                case Health():
                    self.health = item
                case ScanResult() if self.officer_screen:
                    self.show_notice(item)
                case ScanResult():
                    self.show_result(item)
                case ButtonPress(name=name):
                    self.button(name)

    def poll_provisioning(self) -> None:
        """While the kiosk rests: a provisioning result not shown yet, else a staged change
        from a USB stick that waits for the officer's confirmation."""
        result = self.provision_watch.unseen()
        if result is not None:
            self.show_provisioned(result)
        else:
            offer_pending_change(self, self._confirm)

    def refresh_counts(self) -> None:
        self.counts = self.loop.counts_today()
        self._counts_at = self.clock()

    def show_result(self, result: ScanResult, *, back_to: str | None = None) -> None:
        """A scan, manual entry or override happened: show it and sound it."""
        self.last_result = result
        if result.recorded:
            self.last_recorded, self.recorded_meanwhile = result, None
        self.touch()
        self._counts_at = -1e9
        if self.sound is not None:
            # A code that is not a person's keeps the tone of its lights (amber) but must not
            # say "wait for check": the screen tells the citizen to show a personal code.
            self.sound.play(result.decision.outcome, self.t.language,
                            voice=screens.not_a_person(result) is None)
        self._result.load(result, back_to)
        self.go(screens.Result.name)

    def show_notice(self, result: ScanResult) -> None:
        """A code decided while an officer screen is open: recorded and signalled by the loop
        like any other; here it is sounded and shown compactly, and the screen stays."""
        self.last_result = result
        if result.recorded:
            self.recorded_meanwhile = result
        self._counts_at = -1e9
        # Not self.touch(): a moving queue must not keep an abandoned panel open.
        self.notice = result
        self.notice_until = self.clock() + max(self.settings.result_seconds,
                                               self.timeouts.notice_min)
        log.info("a code was read while %s was open: shown as a notice", self.state)
        if self.sound is not None:
            self.sound.play(result.decision.outcome, self.t.language,
                            voice=screens.not_a_person(result) is None)
        self.screen.result_arrived(self, result)

    @property
    def notice_shown(self) -> ScanResult | None:
        """The result to show as a notice now, or None."""
        if self.notice is not None and self.officer_screen and self.clock() < self.notice_until:
            return self.notice
        return None

    def faults(self) -> list[tuple[Outcome, str, str]]:
        """(severity, title, what to do) for every current fault, worst first (translated)."""
        t = self.t
        out: list[tuple[Outcome, str, str]] = []
        if self.internal_error is not None:
            out.append((Outcome.STOP, t("Unexpected error"),
                        t("The kiosk restarts by itself. If this screen stays, "
                          "call the technician.")))
        h = self.health
        if h is None:
            return out
        if not h.camera_ok:
            out.append((Outcome.STOP, t("Camera not working"),
                        t("Check the camera cable and that nothing covers the lens. "
                          "If it stays, call the technician.")))
        if not h.store_ok:
            out.append((Outcome.STOP, t("Check-ins cannot be saved"),
                        t("Database problem. Do not switch the kiosk off; "
                          "call the technician.")))
        if h.disk_low:
            out.append((Outcome.CHECK, t("Storage nearly full"),
                        t("Connect the kiosk to the network so check-ins are sent, "
                          "or call the technician.")))
        if h.reprovision_needed:
            out.append((Outcome.CHECK, t("Kiosk must be registered again"),
                        t("Ask the technician to re-provision this kiosk with the "
                          "central server.")))
        return out

    # --- officer access ----------------------------------------------------------------

    def officer_list(self) -> OfficerList | None:
        """The named officers synced from the central (document ``officers``), or None: then
        the config's ``ui.officer_pin`` opens the panel.  A list that cannot be applied is
        logged and the one in force stays (none at start-up)."""
        read = getattr(self.loop.store, "document", None)
        if read is None:
            return None
        try:
            doc = read("officers")
        except Exception as e:  # noqa: BLE001 - a store hiccup must not lock officers out
            log.warning("cannot read the officer list (%s); keeping the one in force",
                        type(e).__name__)
            return self._officers
        version = None if doc is None else (doc.etag, doc.fetched_at, len(doc.body))
        if version == self._officers_version:
            return self._officers
        self._officers_version = version
        if doc is None:
            self._officers = None
            return None
        try:
            self._officers = load_document("officers", doc.body)
            log.info("officer list in force: %d officers", len(self._officers))
        except KioskError as e:
            log.error("the officer list is not applied, the one in force stays: %s", e)
        return self._officers

    def ask_pin(self) -> None:
        if not self.settings.officer_pin and self.officer_list() is None:
            log.info("officer PIN requested but none is configured; use the officer key")
            return
        self.go("pin")

    def check_pin(self, entered: str) -> bool:
        """Open the panel for the officer whose PIN this is (the synced list; without one,
        the config's PIN); wrong PINs in a row lock the pad (``Timeouts.pin_lockout``)."""
        now = self.clock()
        if now < self.pin_locked_until:
            return False
        officers = self.officer_list()
        officer = officers.identify(entered) if officers is not None else None
        if officer is not None:
            self.pin_failures = 0
            self.officer_id, self.officer_name = officer.id, officer.name
            log.info("officer panel opened by officer %s", officer.id)
            return True
        if (officers is None and self.settings.officer_pin
                and pin_matches(self.settings.officer_pin, entered)):
            self.pin_failures = 0
            self.officer_id, self.officer_name = SHARED_PIN, ""
            log.info("officer panel opened with the PIN")
            return True
        self.pin_failures += 1
        log.warning("wrong officer PIN (%d in a row)", self.pin_failures)
        if self.pin_failures >= self.timeouts.pin_attempts:
            self.pin_locked_until = now + self.timeouts.pin_lockout
            self.pin_failures = 0
            log.warning("officer PIN locked for %.0f s", self.timeouts.pin_lockout)
        return False

    def button(self, name: str) -> None:
        """A GPIO button the scan loop reported (its callback thread posted it to the loop)."""
        self.touch()
        if self.busy:
            log.info("button %r ignored: %s is running", name, self.state)
            return
        if name == "officer":
            log.info("officer panel opened with the officer key")
            self.go("officer")
            if not self.officer_id:
                self.officer_id = OFFICER_KEY
        elif name == "dismiss" and isinstance(self.screen, screens.Result):
            self.screen.finish(self)
        # "direction" and "confirm" are acted on by the loop; the screen shows the new state.

    def toggle_direction(self) -> None:
        new = "out" if self.loop.direction == "in" else "in"
        self.loop.set_direction(new)
        log.info("direction set to %s", new)

    def set_language(self, language: str) -> None:
        self.t.set_language(language)
        log.info("screen language set to %s", language)

    # --- events --------------------------------------------------------------------------

    def handle_event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            # Only the windowed demo can be closed; the appliance has no way out.
            if not self.settings.fullscreen:
                self.running = False
            return
        if event.type in (pygame.MOUSEBUTTONDOWN, pygame.KEYDOWN):
            self.touch()
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            if self.layout.status.collidepoint(event.pos):
                self._press_started = self.clock()
        elif event.type == pygame.MOUSEBUTTONUP:
            self._press_started = None
        if event.type == pygame.KEYDOWN and event.key in (pygame.K_KP_MULTIPLY, pygame.K_ASTERISK,
                                                          pygame.K_F2):
            if self.screen.audience == "citizen":
                self.ask_pin()
                return
        self.screen.handle(self, event)

    def draw(self, surface: pygame.Surface) -> None:
        self.screen.draw(self, surface)
        if self.notice_shown is not None:
            screens.draw_notice(self, surface, self.notice_shown)
        screens.draw_status(self, surface)


def _display_size(settings: UiSettings) -> tuple[int, int]:
    if settings.size is not None:
        return settings.size
    info = pygame.display.Info()
    if info.current_w > 0 and info.current_h > 0:
        return info.current_w, info.current_h
    return 800, 480


def run_ui(
    loop: ScanLoop,
    *,
    settings: UiSettings,
    stop: threading.Event,
    show_lights: bool = False,
    camera_crop: float = 1.0,
    on_tick: Callable[[], None] = lambda: None,
    appliance: Appliance | None = None,
    on_start: Callable[[KioskApp], None] | None = None,
) -> bool:
    """Open the display and run the kiosk screen until ``stop`` is set, the demo closes or
    the officer panel asks for a restart (after provisioning); False in that last case.
    ``on_start`` is handed the machine before its first frame (an in-process observer)."""
    from kiosk.ui.sound import Sound, voice_dir

    pygame.display.init()
    pygame.font.init()
    try:
        # The kiosk is always on: never let SDL start a screensaver.
        pygame.display.set_allow_screensaver(False)
        size = _display_size(settings)
        flags = pygame.FULLSCREEN if settings.fullscreen else 0
        display = pygame.display.set_mode(size, flags)
        pygame.display.set_caption("checkpoint-kiosk")
        if settings.fullscreen:
            pygame.mouse.set_visible(False)
        size = display.get_size()
        # Portrait on a landscape panel: draw upright on a canvas, rotate it into place.
        rotate = settings.portrait and size[0] > size[1]
        logical = (size[1], size[0]) if rotate else size
        canvas = pygame.Surface(logical).convert() if rotate else display
        log.info("screen %dx%d%s, driver %s", *logical, " (rotated)" if rotate else "",
                 pygame.display.get_driver())
        with Sound(enabled=settings.sound, voice=settings.voice, voice_dir=voice_dir()) as sound:
            app = KioskApp(loop, settings, logical, sound=sound, appliance=appliance,
                           show_lights=show_lights, camera_crop=camera_crop)
            try:
                if on_start is not None:
                    on_start(app)
                main_loop(app, display, canvas, rotate, stop, on_tick)
            finally:
                app.close()
            return app.running
    finally:
        pygame.display.quit()


def _rotate_pos(event: pygame.event.Event, logical: tuple[int, int]) -> pygame.event.Event:
    """Map a touch on the landscape panel to the portrait canvas (rotated 90° clockwise)."""
    if not hasattr(event, "pos"):
        return event
    x, y = event.pos
    data = dict(event.dict)
    data["pos"] = (y, logical[1] - 1 - x)
    return pygame.event.Event(event.type, data)


def run_frame(app: KioskApp, display: pygame.Surface, canvas: pygame.Surface,
              rotate: bool = False) -> None:
    """One frame: pygame's pending events, the scan loop and timers, the drawing."""
    for event in pygame.event.get():
        app.handle_event(_rotate_pos(event, canvas.get_size()) if rotate else event)
    app.update()
    app.draw(canvas)
    if rotate:
        display.blit(pygame.transform.rotate(canvas, -90), (0, 0))
    pygame.display.flip()


def main_loop(app: KioskApp, display: pygame.Surface, canvas: pygame.Surface, rotate: bool,
               stop: threading.Event, on_tick: Callable[[], None]) -> None:
    frame_clock = pygame.time.Clock()
    failed_frames = 0
    while app.running and not stop.is_set():
        try:
            run_frame(app, display, canvas, rotate)
        except Exception as e:  # noqa: BLE001 - the screen must never show a traceback
            failed_frames += 1
            if app.internal_error is None:
                log.exception("screen error; showing the fault screen")
                app.internal_error = f"{type(e).__name__}: {e}"
            _draw_failsafe(app, display, canvas, rotate)
        else:
            if failed_frames:
                log.info("screen recovered after %d failed frames", failed_frames)
                failed_frames = 0
                app.internal_error = None
            # The watchdog is fed only by frames that completed: a UI stuck in errors
            # stops feeding it and systemd restarts the service.
            on_tick()
        frame_clock.tick(app.settings.fps)


def _draw_failsafe(app: KioskApp, display: pygame.Surface, canvas: pygame.Surface,
                   rotate: bool) -> None:
    try:
        app.go("fault")
        app.draw(canvas)
        if rotate:
            display.blit(pygame.transform.rotate(canvas, -90), (0, 0))
    except Exception:  # noqa: BLE001 - even drawing the fault failed: plain red screen
        log.debug("fault screen failed too", exc_info=True)
        display.fill((120, 0, 0))
    try:
        pygame.display.flip()
    except pygame.error:
        pass
