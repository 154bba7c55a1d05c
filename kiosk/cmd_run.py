"""``checkpoint-kiosk run``: the appliance, with its screen or headless."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kiosk import config as config_mod

log = logging.getLogger(__name__)


@click.command("run")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration file (default /etc/checkpoint-kiosk/kiosk.toml).")
@click.option("--camera", "camera_spec", metavar="SPEC",
              help="Camera: picamera2, v4l2:/dev/videoN or replay:PATH[,fps=N][,loop].")
@click.option("--db", "db_path", type=click.Path(dir_okay=False),
              help="Check-in database (overrides store.path).")
@click.option("--headless", is_flag=True,
              help="No screen: lights, buzzer and records only (a side-door scanner).")
@click.option("--windowed", is_flag=True, help="A window instead of fullscreen.")
@click.option("--max-seconds", type=click.FloatRange(min=0.1),
              help="Stop after this long (technicians' and tests' runs).")
def run(config_path: str | None, camera_spec: str | None, db_path: str | None, headless: bool,
        windowed: bool, max_seconds: float | None) -> None:
    """Run the kiosk: camera, decisions, lights, records and sync.

    A replayed camera that runs out of frames ends the run with exit status 0; SIGTERM stops
    it cleanly.  Off a Pi (no GPIO) with signals.pin_factory unset the lights are simulated,
    with one warning; a configuration problem stops start-up ('config check' lists them all).

    Example: checkpoint-kiosk run --headless --camera replay:/srv/recording --db /tmp/k.db
    """
    cfg = config_mod.load(config_path)
    overrides: dict = {}
    if camera_spec:
        overrides["camera"] = {"spec": camera_spec}
    if db_path:
        overrides["store"] = {"path": db_path}
    if windowed:
        overrides["ui"] = {"fullscreen": False}
    if overrides:
        cfg = cfg.replace(**overrides)
    sys.exit(run_kiosk(cfg, headless=headless, max_seconds=max_seconds,
                       config_path=Path(config_path) if config_path
                       else config_mod.DEFAULT_PATH))


# The officer holds the printed test card up within this long (the CLI waits 30 s; an
# officer at a queue has less patience, and the card is optional: it fails, nothing breaks).
PANEL_CARD_SECONDS = 15.0


def selftest_runner(cfg: config_mod.Config, parts: Any, *,
                    card_seconds: float = PANEL_CARD_SECONDS) -> Callable[..., Any]:
    """The officer panel's self-test: the running kiosk's own frames and Signals."""
    from kiosk.selftest import run_selftest

    def run(progress: Callable[[str], None], confirm: Callable[[str], bool | None]) -> Any:
        return run_selftest(cfg, frames=parts.loop.latest_frame, signals=parts.signals,
                            confirm=confirm, progress=progress, card_seconds=card_seconds)

    return run


def state_dir() -> Path:
    """systemd's StateDirectory= (it sets $STATE_DIRECTORY), else the provisioning default."""
    from kiosk.provision import STATE_DIR

    env = os.environ.get("STATE_DIRECTORY", "")
    return Path(env.split(":")[0]) if env else STATE_DIR


def run_kiosk(cfg: config_mod.Config, *, headless: bool, max_seconds: float | None = None,
              show_lights: bool = False, sync_options: dict | None = None,
              loop_options: dict | None = None,
              config_path: str | os.PathLike[str] | None = None,
              state_dir_path: str | os.PathLike[str] | None = None) -> int:
    """Build the kiosk from ``cfg`` and run it until stopped; returns the exit status.

    Under systemd it notifies READY once up, pings the watchdog from the main loop while the
    camera and sync threads turn, keeps STATUS= current and says STOPPING on the way out.
    ``config_path`` is the file a provisioning QR from the officer panel rewrites (None: that
    entry is disabled, as in the demo); after it the screen returns and the exit status is 0,
    so systemd (Restart=always) starts the kiosk again with the new configuration.
    """
    from kiosk import notify
    from kiosk.app import build, run_headless, setup_logging, stop_on_signals

    setup_logging(cfg.log.level)
    if notify.use_journal():
        log.debug("logging to the journal with structured fields")
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(stop_on_signals())
        notifier = stack.enter_context(notify.Notifier())
        parts = build(cfg, stack, sync_options=sync_options, loop_options=loop_options)
        supervisor = notify.Supervisor(
            notifier,
            alive=notify.kiosk_checks(parts, cfg),
            ready=notify.kiosk_ready(parts),
            status=lambda: notify.status_line(parts.loop.health()),
        )
        # Registered last, so it runs first: STOPPING=1 goes out before the parts close.
        stack.callback(supervisor.stopping)
        if headless:
            return run_headless(parts, stop, max_seconds=max_seconds, on_tick=supervisor.tick)
        from kiosk.ui import UiConfig, run_ui

        ui = cfg.ui
        size = (ui.width, ui.height) if ui.width and ui.height else None
        ui_config = UiConfig(
            fullscreen=ui.fullscreen, size=size, portrait=ui.portrait, language=ui.language,
            result_seconds=ui.result_seconds, idle_seconds=ui.idle_seconds,
            officer_pin=ui.officer_pin or None, show_lights=show_lights, voice=ui.voice,
            camera_crop=cfg.camera.crop,
        )
        if max_seconds:
            import threading

            timer = threading.Timer(max_seconds, stop.set)
            timer.daemon = True
            timer.start()
            stack.callback(timer.cancel)

        def tick() -> None:
            supervisor.tick()
            if parts.loop.ended:  # a replay without 'loop' is over: exit 0, as headless does
                stop.set()

        from kiosk.ui.appliance import Appliance

        appliance = Appliance(
            config_path=Path(config_path) if config_path is not None else None,
            state_dir=Path(state_dir_path) if state_dir_path is not None else state_dir(),
            selftest=selftest_runner(cfg, parts),
        )
        # run_ui calls on_tick only after a frame was drawn: READY means the screen is up.
        run_ui(parts.loop, config=ui_config, stop=stop, on_tick=tick, appliance=appliance)
    return 0
