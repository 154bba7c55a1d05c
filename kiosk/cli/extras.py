"""Parts a command needs beyond what a kiosk installs, checked before it starts.

The central server (Flask, waitress) is the ``central`` extra and the demo's samples and
test-signing helpers (``kiosk.testing``) stay out of the wheel: a kiosk runs without both.
A command that needs one says so in one line, with the fix, instead of a traceback.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TypeVar

from kiosk.errors import KioskError

# What a shared click option decorates: a command's function (or a command already built).
CommandT = TypeVar("CommandT", bound=Callable[..., object])

CENTRAL_MODULES = ("flask", "waitress")
CENTRAL_INSTALL = "pip install 'checkpoint-kiosk[central]'"


def _missing(modules: tuple[str, ...]) -> list[str]:
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # a parent package is missing, or an import hook refused it
            found = False
        if not found:
            missing.append(name)
    return missing


def require_central(command: str) -> None:
    """Stop ``command`` with one line when the ``central`` extra is not installed."""
    missing = _missing(CENTRAL_MODULES)
    if missing:
        raise KioskError(
            f"{command} needs the central server, an extra a kiosk does not install "
            f"({' and '.join(missing)} missing here): {CENTRAL_INSTALL}"
        )


def require_testing(command: str) -> None:
    """Stop ``command`` with one line when ``kiosk.testing`` (not in the wheel) is absent."""
    if _missing(("kiosk.testing",)):
        raise KioskError(
            f"{command} needs the demo samples (kiosk.testing), which are not installed on a "
            "kiosk: run it from a checkout of checkpoint-kiosk after systemd/install.sh --dev"
        )
