"""``checkpoint-kiosk config``: print the default file, check a file."""

from __future__ import annotations

import dataclasses
import sys

import click

from kiosk import config as config_mod
from kiosk.terminal import printable, printable_json


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

    Every problem is listed (on stderr, one a line: where, key, value, what to write), not
    only the first; exit status 1 when there is any, 0 when the kiosk can start with it.

    Example: checkpoint-kiosk config check --config /etc/checkpoint-kiosk/kiosk.toml
    """
    cfg, problems = config_mod.check(config_path)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        click.echo(f"checkpoint-kiosk: error: {count} in the configuration:", err=True)
        for problem in problems:
            # A stick's file may carry terminal escapes in a key or a value.
            click.echo("  " + printable(str(problem), keep=""), err=True)
        sys.exit(1)
    data = dataclasses.asdict(cfg)
    data["ui"]["officer_pin"] = "***" if cfg.ui.officer_pin else ""
    click.echo(printable_json(data, indent=2, default=str))
