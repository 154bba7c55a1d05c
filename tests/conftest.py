"""Shared fixtures.  Tests use the real libraries: MockFactory pins, real SQLite files,
a real HTTP server on 127.0.0.1, pygame on the dummy video driver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Headless everywhere: set before anything imports pygame or gpiozero.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
TEST_OUTPUT = REPO / "test-output"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "pi: needs a Raspberry Pi (picamera2, real GPIO)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture
def test_output() -> Path:
    """A folder kept after the run for artefacts a person should look at (screenshots)."""
    TEST_OUTPUT.mkdir(exist_ok=True)
    return TEST_OUTPUT


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"the shared reference folder is missing: {SHARED} (it sits beside the repo)")
    return SHARED
