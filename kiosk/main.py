"""The kiosk process: build the parts, run the screen (or headless), talk to systemd.

``checkpoint-kiosk run`` and ``checkpoint-kiosk demo`` both end here; this is the only module
that knows the runtime, the screen and the operations side at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from kiosk import config as config_mod
from kiosk.runtime.build import Parts, Supplied

if TYPE_CHECKING:
    from hardware.signals import Signals
    from kiosk.ops.selftest import SelfTestReport
    from kiosk.ui.app import KioskApp
    from kiosk.ui.appliance import Confirm, Progress, SelfTestRunner

log = logging.getLogger(__name__)


# The officer holds the printed test card up within this long (the CLI waits 30 s; an
# officer at a queue has less patience, and the card is optional: it fails, nothing breaks).
PANEL_CARD_SECONDS = 15.0


def selftest_runner(cfg: config_mod.Config, parts: Parts, *,
                    card_seconds: float = PANEL_CARD_SECONDS) -> SelfTestRunner:
    """The officer panel's self-test: the running kiosk's own frames and Signals."""
    from kiosk.ops.selftest import run_selftest

    # The self-test drives each device (lamp, buzzer, gate) of the kiosk's own Signals, which
    # build() opened from the config; a Lights a test supplies instead has no devices to try.
    signals = cast("Signals | None", parts.signals)

    def run(progress: Progress, confirm: Confirm) -> SelfTestReport:
        return run_selftest(cfg, frames=parts.loop.latest_frame, signals=signals,
                            scanner=parts.scanner,
                            confirm=confirm, progress=progress, card_seconds=card_seconds)

    return run


class Observer(Protocol):
    """Watches and drives a kiosk from inside its process (the checkpoint-day harness,
    ``bench/day_kiosk.py``): the product runs unchanged around it.

    ``started`` is called once the parts are built and, with a screen, before its first
    frame (``app`` is None headless); ``tick`` after every frame drawn (or headless step);
    ``finished`` on the way out, with why the kiosk stopped.  Setting ``stop`` ends the
    kiosk as SIGTERM would.
    """

    def started(self, parts: Parts, app: KioskApp | None, stop: threading.Event) -> None: ...
    def tick(self) -> None: ...
    def finished(self, reason: str) -> None: ...


class _Unobserved:
    def started(self, parts: Parts, app: KioskApp | None, stop: threading.Event) -> None:
        pass

    def tick(self) -> None:
        pass

    def finished(self, reason: str) -> None:
        pass


def state_dir() -> Path:
    """systemd's StateDirectory= (it sets $STATE_DIRECTORY), else the provisioning default."""
    from kiosk.ops.provision import STATE_DIR

    env = os.environ.get("STATE_DIRECTORY", "")
    return Path(env.split(":")[0]) if env else STATE_DIR


def run_kiosk(cfg: config_mod.Config, *, headless: bool, max_seconds: float | None = None,
              show_lights: bool = False, supplied: Supplied | None = None,
              config_path: str | os.PathLike[str] | None = None,
              state_dir_path: str | os.PathLike[str] | None = None,
              observer: Observer | None = None,
              card_seconds: float = PANEL_CARD_SECONDS) -> int:
    """Build the kiosk from ``cfg`` and run it until stopped; returns the exit status.

    Under systemd it notifies READY once up, pings the watchdog from the main loop while the
    camera and sync threads turn, keeps STATUS= current and says STOPPING on the way out.
    ``config_path`` is the file a provisioning QR from the officer panel rewrites (None: that
    entry is disabled, as in the demo); after it the screen returns and the exit status is 0,
    so systemd (Restart=always) starts the kiosk again with the new configuration.
    ``supplied`` parts replace those the configuration names (the demo's fast sync);
    ``observer`` watches from inside (see :class:`Observer`); ``card_seconds`` is how long the
    panel's self-test waits for the printed test card.
    """
    from kiosk.ops import notify
    from kiosk.runtime.build import build, run_headless, setup_logging, stop_on_signals

    watcher = observer if observer is not None else _Unobserved()
    setup_logging(cfg.log.level)
    if notify.use_journal():
        log.debug("logging to the journal with structured fields")
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(stop_on_signals())
        notifier = stack.enter_context(notify.Notifier())
        parts = build(cfg, stack, parts=supplied)
        supervisor = notify.Supervisor(
            notifier,
            alive=notify.kiosk_checks(parts, cfg),
            ready=notify.kiosk_ready(parts),
            status=lambda: notify.status_line(parts.loop.health()),
        )
        # Registered last, so it runs first: STOPPING=1 goes out before the parts close.
        stack.callback(supervisor.stopping)

        def tick() -> None:
            supervisor.tick()
            watcher.tick()
            if parts.loop.ended:  # a replay without 'loop' is over: exit 0, as headless does
                stop.set()

        if headless:
            watcher.started(parts, None, stop)
            code = run_headless(parts, stop, max_seconds=max_seconds, on_tick=tick)
            watcher.finished("stopped")
            return code
        if max_seconds:
            timer = threading.Timer(max_seconds, stop.set)
            timer.daemon = True
            timer.start()
            stack.callback(timer.cancel)
        from kiosk.ui import run_ui
        from kiosk.ui.appliance import Appliance

        appliance = Appliance(
            config_path=Path(config_path) if config_path is not None else None,
            state_dir=Path(state_dir_path) if state_dir_path is not None else state_dir(),
            selftest=selftest_runner(cfg, parts, card_seconds=card_seconds),
        )
        # run_ui calls on_tick only after a frame was drawn: READY means the screen is up.
        stopped = run_ui(parts.loop, settings=cfg.ui, show_lights=show_lights,
                         camera_crop=cfg.camera.crop, stop=stop, on_tick=tick,
                         appliance=appliance,
                         on_start=lambda app: watcher.started(parts, app, stop))
        watcher.finished("stopped" if stopped else "restart requested by the screen")
    return 0
