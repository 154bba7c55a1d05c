"""The ``checkpoint-kiosk`` command line: a thin layer over the library.

Library code raises :class:`kiosk.errors.KioskError`; this module turns it into one
clear line on stderr and exit status 1.  Commands live in their own modules and are
registered in ``COMMANDS``; each one's help ends with an example.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from kiosk import __version__
from kiosk.errors import EXPECTED

# (module, attribute) of each top-level command, imported lazily so that
# ``checkpoint-kiosk --help`` does not pay for pygame, numpy or the decoders.
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("kiosk.cli.config", "config_group"),
    "run": ("kiosk.cli.run", "run"),
    "demo": ("kiosk.cli.demo", "demo"),
    "inspect": ("kiosk.cli.inspect", "inspect"),
    "central": ("kiosk.cli.queue", "central"),
    "export": ("kiosk.cli.queue", "export"),
    "queue": ("kiosk.cli.queue", "queue"),
    "sync": ("kiosk.cli.queue", "sync"),
    "decode": ("kiosk.cli.decode", "decode"),
    "provision": ("kiosk.cli.appliance", "provision"),
    "selftest": ("kiosk.cli.appliance", "selftest"),
    "status": ("kiosk.cli.appliance", "status"),
    "support-bundle": ("kiosk.cli.appliance", "support_bundle"),
    "watchlist": ("kiosk.cli.watchlist", "watchlist_group"),
    "status-doc": ("kiosk.cli.status_doc", "status_doc_group"),
    "officers": ("kiosk.cli.officers", "officers_group"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), attr)
            if not isinstance(command, click.Command):  # a wrong COMMANDS entry
                raise TypeError(f"COMMANDS[{cmd_name!r}] names {module}.{attr}, which is not "
                                "a click command; point it at the command's function")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="checkpoint-kiosk")
def cli() -> None:
    """QR check-in kiosk for quarantine checkpoints.

    Example: checkpoint-kiosk demo
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and ``python -m kiosk``."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # pygame's banner is not a log line
    try:
        rv = cli.main(args=argv, prog_name="checkpoint-kiosk", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except EXPECTED as e:
        click.echo(f"checkpoint-kiosk: error: {e}", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
