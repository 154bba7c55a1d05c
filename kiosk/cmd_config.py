"""``checkpoint-kiosk config``: print the default file, check a file."""

from __future__ import annotations

import dataclasses
import json

import click

from kiosk import config as config_mod


@click.group("config")
def config_group() -> None:
    """Write and check the configuration file.

    Example: checkpoint-kiosk config defaults > /etc/checkpoint-kiosk/kiosk.toml
    """


@config_group.command("defaults")
def defaults() -> None:
    """Print a commented configuration file with every default.

    Example: checkpoint-kiosk config defaults > kiosk.toml
    """
    click.echo(config_mod.defaults_toml(), nl=False)


@config_group.command("check")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Configuration file (default /etc/checkpoint-kiosk/kiosk.toml).")
def check(config_path: str | None) -> None:
    """Validate the configuration and print the effective values as JSON.

    Example: checkpoint-kiosk config check --config /etc/checkpoint-kiosk/kiosk.toml
    """
    cfg = config_mod.load(config_path)
    data = dataclasses.asdict(cfg)
    data["ui"]["officer_pin"] = "***" if cfg.ui.officer_pin else ""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
