"""``checkpoint-kiosk run``: the appliance, with its screen or headless."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kiosk import config as config_mod
from kiosk.main import run_kiosk


@click.command("run")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration file (default /etc/checkpoint-kiosk/kiosk.toml).")
@click.option("--camera", "camera_spec", metavar="SPEC",
              help="Camera: picamera2, v4l2:/dev/videoN or replay:PATH[,fps=N][,loop].")
@click.option("--scanner", "scanner_spec", metavar="SPEC",
              help="Dedicated 2D scanner: serial:/dev/ttyACM0[,baud=N] or "
                   "hid:/dev/input/by-id/...-event-kbd (overrides scanner.spec).")
@click.option("--db", "db_path", type=click.Path(dir_okay=False),
              help="Check-in database (overrides store.path).")
@click.option("--headless", is_flag=True,
              help="No screen: lights, buzzer and records only (a side-door scanner).")
@click.option("--windowed", is_flag=True, help="A window instead of fullscreen.")
@click.option("--max-seconds", type=click.FloatRange(min=0.1),
              help="Stop after this long (technicians' and tests' runs).")
def run(config_path: str | None, camera_spec: str | None, scanner_spec: str | None,
        db_path: str | None, headless: bool, windowed: bool, max_seconds: float | None) -> None:
    """Run the kiosk: camera, decisions, lights, records and sync.

    A replayed camera that runs out of frames ends the run with exit status 0; SIGTERM stops
    it cleanly.  Off a Pi (no GPIO) with signals.pin_factory unset the lights are simulated,
    with one warning; a configuration problem stops start-up ('config check' lists them all).

    Example: checkpoint-kiosk run --headless --camera replay:/srv/recording --db /tmp/k.db

    Example: checkpoint-kiosk run --scanner serial:/dev/serial/by-id/usb-Scanner-if00
    """
    cfg = config_mod.load(config_path)
    overrides: dict[str, dict[str, object]] = {}
    if camera_spec:
        overrides["camera"] = {"spec": camera_spec}
    if scanner_spec:
        overrides["scanner"] = {"spec": scanner_spec}
    if db_path:
        overrides["store"] = {"path": db_path}
    if windowed:
        overrides["ui"] = {"fullscreen": False}
    if overrides:
        cfg = cfg.replace(**overrides)
    sys.exit(run_kiosk(cfg, headless=headless, max_seconds=max_seconds,
                       config_path=Path(config_path) if config_path
                       else config_mod.DEFAULT_PATH))
