"""The kiosk screen's state machine and the pygame main loop.

``KioskApp`` holds the states (scanning, result, idle, pin, officer, manual, override,
fault, provision, selftest, provisioned) and draws onto any surface, so tests drive it with
real pygame events on the dummy driver.  ``run_ui`` opens the display and runs it frame by
frame.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

import pygame

from kiosk.domain.model import Outcome
from kiosk.domain.officers import pin_matches
from kiosk.ui import UiConfig
from kiosk.ui.appliance import Appliance, HeldSignals, Job, ResultWatch
from kiosk.ui.confirm_provision import offer as offer_pending_change
from kiosk.ui.contract import ScanLoopLike, is_health
from kiosk.ui.i18n import Translator
from kiosk.ui.layout import Layout
from kiosk.ui.text import Fonts

log = logging.getLogger(__name__)

HEALTH_POLL_S = 2.0
COUNTS_POLL_S = 2.0
OFFICER_TIMEOUT_S = 120.0  # an officer who walks away must not leave the panel open
PIN_TIMEOUT_S = 20.0
LONG_PRESS_S = 2.0  # press and hold the status strip to ask for the PIN
PIN_ATTEMPTS = 5
PIN_LOCKOUT_S = 60.0
SPLASH_S = 1.0
PROVISION_POLL_S = 5.0  # how soon a provisioning file's result appears on screen
# Screens a citizen sees; from these (only) an officer can ask for the PIN pad.
CITIZEN_STATES = ("scanning", "idle", "fault", "result")
# Screens an officer or technician is working on or reading: a code read meanwhile never
# replaces them (docs/ui.md); "provisioned" is the start-up result, shown once.
OFFICER_STATES = ("pin", "officer", "manual", "override", "provision", "selftest",
                  "provisioned")
NOTICE_MIN_S = 6.0  # a compact notice stays at least this long (longer than a glance)


class KioskApp:
    """All screens of the kiosk over one ScanLoop; ``update`` then ``draw`` once per frame."""

    def __init__(
        self,
        loop: ScanLoopLike,
        config: UiConfig,
        size: tuple[int, int],
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sound: Any = None,
        tz: tzinfo | None = None,
        appliance: Appliance | None = None,
    ) -> None:
        from kiosk.ui import screens

        self.loop = loop
        self.config = config
        self.clock = clock
        self.now = now
        self.sound = sound
        self.tz = tz  # None: the system's local time zone (Asia/Ho_Chi_Minh on the appliance)
        self.t = Translator(config.language)
        self.fonts = Fonts()
        self.layout = Layout.for_size(*size, lights=config.show_lights)
        self.health: Any = None
        self.counts: dict[str, int] = {}
        self.last_result: Any = None
        # What "Change last decision" changes: the last check-in that was recorded, so a
        # venue poster scanned after a person does not hide that person's decision.
        self.last_recorded: Any = None
        # Recorded while an officer screen was open: the officer came for the person decided
        # before, so this becomes "last" only once the officer is back on a citizen screen.
        self.recorded_meanwhile: Any = None
        # A result decided while an officer screen was open, shown compactly on that screen.
        self.notice: Any = None
        self.notice_until = 0.0
        self.internal_error: str | None = None
        self.running = True
        self.appliance = appliance or Appliance()
        self.provision_watch = ResultWatch(self.appliance.state_dir)
        self._provision_polled = -1e9
        self._jobs: list[Job] = []
        self._held: HeldSignals | None = None
        self.pin_failures = 0
        self.pin_locked_until = 0.0
        self._screens = screens.build()
        started = clock()
        self.last_activity = started
        self._health_at = -1e9
        self._counts_at = -1e9
        self._press_started: float | None = None
        self.state = ""
        self.screen: Any = None
        self.entered_at = started
        self.go("splash")

    # --- transitions -------------------------------------------------------------------

    def go(self, state: str, **kwargs: Any) -> None:
        """Leave the current screen and enter ``state`` (names are in ``screens.build``)."""
        if self.screen is not None:
            self.screen.exit(self)
        log.debug("screen %s -> %s", self.state or "-", state)
        self.state = state
        self.screen = self._screens[state]
        self.entered_at = self.clock()
        self.screen.enter(self, **kwargs)
        if not self.officer_screen:
            self.notice = None  # back on a citizen screen: the result is in the counts
            if state in ("scanning", "idle", "fault") and self.recorded_meanwhile is not None:
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
        if self.state in OFFICER_STATES or getattr(self.screen, "officer_present", False):
            return True  # officer_present: a screen an officer is at only in some phases
        return self.state == "result" and bool(getattr(self.screen, "back_to", None))

    @property
    def busy(self) -> bool:
        """Background work of the current screen is running: it must not be left."""
        return bool(getattr(self.screen, "busy", lambda _app: False)(self))

    def after_splash(self) -> None:
        """Start-up: a provisioning result not shown yet comes first, then the home screen."""
        self._provision_polled = self.clock()
        result = self.provision_watch.unseen()
        if result is not None:
            self.go("provisioned", result=result)
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
        """Take the lights from the scan loop for the self-test; returns the real Signals."""
        real = getattr(self.loop, "signals", None)
        if real is None or isinstance(real, HeldSignals):
            return getattr(real, "real", real)
        from hardware.signals import Pattern

        self._held = HeldSignals(real)
        self._held.requested = real.pattern
        self.loop.signals = self._held  # type: ignore[attr-defined]
        # All off first: a fault blink or a result's beep must not run on under the test.
        try:
            real.show(Pattern.IDLE)
        except Exception:  # noqa: BLE001 - the self-test reports a broken pin itself
            log.exception("switching the lights off for the self-test failed")
        return real

    def release_signals(self) -> None:
        """Give the lights back and show what the loop's state calls for now."""
        held, self._held = self._held, None
        if held is None:
            return
        from hardware.signals import Pattern

        self.loop.signals = held.real  # type: ignore[attr-defined]
        health = self.health
        # A result's pattern is never replayed (its beep and gate pulse are long over):
        # the loop's steady state is idle or fault, and that is what it asked for meanwhile.
        fault = bool(getattr(health, "fault", False)) or held.requested is Pattern.FAULT
        try:
            held.real.show(Pattern.FAULT if fault else Pattern.IDLE)
        except Exception:  # noqa: BLE001 - a pin error must not take the screen down
            log.exception("restoring the lights after the self-test failed")

    def close(self) -> None:
        """Stop background work (idempotent); the lights go back to the loop."""
        for job in self._jobs:
            job.close()
        self._jobs.clear()
        self.release_signals()

    def _divert_codes(self, takes: Callable[[Any], bool]) -> list[Any]:
        """Decoded codes the screen ``takes``, off the loop's queue before it sees them.

        Other events go back in order; only a sync status posted in the same instant can
        overtake one, and the newest status wins anyway.
        """
        from kiosk.runtime.capture import Decoded

        events = getattr(self.loop, "events", None)
        if events is None:
            return []
        codes, others = [], []
        while True:
            try:
                event = events.get_nowait()
            except queue.Empty:
                break
            (codes if isinstance(event, Decoded) and takes(event) else others).append(event)
        for event in others:
            events.put(event)
        return codes

    # --- scan loop ---------------------------------------------------------------------

    def update(self) -> None:
        """Run one step of the scan loop and the timers of the current screen."""
        now = self.clock()
        if self._held is not None and not any(j.alive for j in self._jobs):
            self.release_signals()  # the self-test is over, even if its screen was left
        takes = getattr(self.screen, "takes", None)
        if takes is not None:
            screen = self.screen
            for code in self._divert_codes(lambda code: takes(self, code)):
                screen.code(self, code)
        for item in self.loop.step():
            if is_health(item):
                self.health = item
                self._health_at = now
            elif hasattr(item, "decision"):
                if self.officer_screen:
                    self.show_notice(item)
                else:
                    self.show_result(item)
            else:
                self.button(getattr(item, "name", ""))
        if now - self._health_at >= HEALTH_POLL_S:
            self.health = self.loop.health()
            self._health_at = now
        if now - self._counts_at >= COUNTS_POLL_S:
            self.refresh_counts()
        if (self.state in ("scanning", "idle", "fault")
                and now - self._provision_polled >= PROVISION_POLL_S):
            self._provision_polled = now
            result = self.provision_watch.unseen()
            if result is not None:
                self.go("provisioned", result=result)
            else:  # a USB stick's file for an enrolled kiosk waits for the officer
                offer_pending_change(self, self._screens["confirm_provision"])
        if (self._press_started is not None and self.state in CITIZEN_STATES
                and now - self._press_started >= LONG_PRESS_S):
            self._press_started = None
            self.ask_pin()
        self.screen.update(self)

    def refresh_counts(self) -> None:
        self.counts = self.loop.counts_today()
        self._counts_at = self.clock()

    def show_result(self, result: Any, *, back_to: str | None = None) -> None:
        """A scan, manual entry or override happened: show it and sound it."""
        self.last_result = result
        if getattr(result, "checkin_id", None) is not None:
            self.last_recorded, self.recorded_meanwhile = result, None
        self.touch()
        self._counts_at = -1e9
        if self.sound is not None:
            from kiosk.ui.screens import not_a_person

            # A code that is not a person's keeps the tone of its lights (amber) but must not
            # say "wait for check": the screen tells the citizen to show a personal code.
            self.sound.play(result.decision.outcome, self.t.language,
                            voice=not_a_person(result) is None)
        self.go("result", result=result, back_to=back_to)

    def show_notice(self, result: Any) -> None:
        """A code decided while an officer screen is open: recorded and signalled by the loop
        like any other; here it is sounded and shown compactly, and the screen stays."""
        self.last_result = result
        if getattr(result, "checkin_id", None) is not None:
            self.recorded_meanwhile = result
        self._counts_at = -1e9
        # Not self.touch(): a moving queue must not keep an abandoned panel open.
        self.notice = result
        self.notice_until = self.clock() + max(self.config.result_seconds, NOTICE_MIN_S)
        log.info("a code was read while %s was open: shown as a notice", self.state)
        if self.sound is not None:
            from kiosk.ui.screens import not_a_person

            self.sound.play(result.decision.outcome, self.t.language,
                            voice=not_a_person(result) is None)
        arrived = getattr(self.screen, "result_arrived", None)
        if arrived is not None:
            arrived(self, result)

    @property
    def notice_shown(self) -> Any:
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

    def ask_pin(self) -> None:
        if self.config.officer_pin is None:
            log.info("officer PIN requested but none is configured; use the officer key")
            return
        self.go("pin")

    def check_pin(self, entered: str) -> bool:
        now = self.clock()
        if now < self.pin_locked_until:
            return False
        assert self.config.officer_pin is not None
        if pin_matches(self.config.officer_pin, entered):
            self.pin_failures = 0
            log.info("officer panel opened with the PIN")
            return True
        self.pin_failures += 1
        log.warning("wrong officer PIN (%d in a row)", self.pin_failures)
        if self.pin_failures >= PIN_ATTEMPTS:
            self.pin_locked_until = now + PIN_LOCKOUT_S
            self.pin_failures = 0
            log.warning("officer PIN locked for %.0f s", PIN_LOCKOUT_S)
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
        elif name == "dismiss" and self.state == "result":
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
            if not self.config.fullscreen:
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
            if self.state in CITIZEN_STATES:
                self.ask_pin()
                return
        self.screen.handle(self, event)

    def draw(self, surface: pygame.Surface) -> None:
        from kiosk.ui import screens

        self.screen.draw(self, surface)
        if self.notice_shown is not None:
            screens.draw_notice(self, surface, self.notice_shown)
        screens.draw_status(self, surface)


def _display_size(config: UiConfig) -> tuple[int, int]:
    if config.size is not None:
        return config.size
    info = pygame.display.Info()
    if info.current_w > 0 and info.current_h > 0:
        return info.current_w, info.current_h
    return 800, 480


def run_ui(
    loop: ScanLoopLike,
    *,
    config: UiConfig,
    stop: threading.Event,
    on_tick: Callable[[], None] = lambda: None,
    appliance: Appliance | None = None,
) -> None:
    """Open the display and run the kiosk screen until ``stop`` is set, the demo closes or
    the officer panel asks for a restart (after provisioning)."""
    from kiosk.ui.sound import Sound, voice_dir

    pygame.display.init()
    pygame.font.init()
    try:
        # The kiosk is always on: never let SDL start a screensaver.
        pygame.display.set_allow_screensaver(False)
        size = _display_size(config)
        flags = pygame.FULLSCREEN if config.fullscreen else 0
        display = pygame.display.set_mode(size, flags)
        pygame.display.set_caption("checkpoint-kiosk")
        if config.fullscreen:
            pygame.mouse.set_visible(False)
        size = display.get_size()
        # Portrait on a landscape panel: draw upright on a canvas, rotate it into place.
        rotate = config.portrait and size[0] > size[1]
        logical = (size[1], size[0]) if rotate else size
        canvas = pygame.Surface(logical).convert() if rotate else display
        log.info("screen %dx%d%s, driver %s", *logical, " (rotated)" if rotate else "",
                 pygame.display.get_driver())
        with Sound(enabled=config.sound, voice=config.voice, voice_dir=voice_dir()) as sound:
            app = KioskApp(loop, config, logical, sound=sound, appliance=appliance)
            try:
                _main_loop(app, display, canvas, rotate, stop, on_tick)
            finally:
                app.close()
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


def _main_loop(app: KioskApp, display: pygame.Surface, canvas: pygame.Surface, rotate: bool,
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
        frame_clock.tick(app.config.fps)


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
