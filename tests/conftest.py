"""Shared fixtures.  Tests use the real libraries: MockFactory pins, real SQLite files,
a real HTTP server on 127.0.0.1, pygame on the dummy video driver."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The central's PostgreSQL fixtures: pg_server, pg_url, db_target (sqlite and postgresql).
from tests.fakepi import fake_pi  # noqa: F401
from tests.pgserver import db_target, pg_server, pg_url  # noqa: F401

# Headless everywhere: set before anything imports pygame or gpiozero.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

REPO = Path(__file__).resolve().parent.parent
# The project's shared reference folder (official EU DCC test vectors, which are not copied
# into the repository) sits beside the clone; CHECKPOINT_KIOSK_SHARED names it elsewhere.
SHARED = Path(os.environ.get("CHECKPOINT_KIOSK_SHARED") or REPO.parent / "shared")
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
        pytest.fail(f"the shared reference folder is missing: {SHARED}; put it beside the "
                    "clone or set CHECKPOINT_KIOSK_SHARED=/path/to/shared")
    return SHARED


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    """The reference central server on 127.0.0.1 with its own database (``.db_path``)."""
    from offline_queue.central.server import CentralServer

    path = tmp_path_factory.mktemp("central") / "central.db"
    with CentralServer(path) as server:
        server.db_path = path
        yield server


def new_token(central, checkpoint: str = "LS-HUUNGHI", name: str = "Hữu Nghị") -> str:
    """A one-time enrolment token from the central server's admin side."""
    from offline_queue.central import db as central_db

    conn = central_db.connect(central.db_path)
    try:
        return central_db.create_enrolment_token(conn, checkpoint_id=checkpoint, name=name)
    finally:
        conn.close()


OLD_CONFIG = '[device]\ncheckpoint_name = "Old name"\n[ui]\nlanguage = "en"\n'


@pytest.fixture
def etc(tmp_path):
    """A config folder as a device has it before (re-)provisioning."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "kiosk.toml").write_text(OLD_CONFIG, encoding="utf-8")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder, to show that a failed provisioning left it byte for byte."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def pygame_display():
    """pygame's display on the dummy driver, opened once for a module of screen tests."""
    import pygame

    pygame.display.init()
    pygame.font.init()
    pygame.display.set_mode((64, 64))
    yield
    pygame.display.quit()
