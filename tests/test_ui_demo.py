"""The demo looks like a healthy kiosk: a trust list from its central, a clock that agrees
with it (issue 9).  The demo's own pieces: its central, documents, enrolment, first sync and
configuration, built by ``kiosk.runtime.build.build`` as ``run_kiosk`` does."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from kiosk.cli import demo as cmd_demo
from kiosk.config import UiSettings
from kiosk.runtime.build import Supplied, build
from kiosk.ui.app import KioskApp
from kiosk.ui.screens import OK, status_items
from offline_queue.central.server import CentralServer
from offline_queue.sync import sync_once

# A display for fonts and surfaces (tests/conftest.py), opened once per module.
pytestmark = pytest.mark.usefixtures("pygame_display")


@pytest.fixture
def demo_central(tmp_path):
    central_db = tmp_path / "central.db"
    with CentralServer(central_db) as server:
        cmd_demo.publish_documents(central_db)
        token_file = tmp_path / "device-token"
        ids = cmd_demo.enrol(central_db, server.url, token_file)
        sync_once(db_path=tmp_path / "checkins.db", server_url=server.url,
                  token=token_file.read_text().strip())
        yield server, ids, token_file


@pytest.mark.parametrize("language", ["vi", "en"])
def test_the_demo_kiosk_has_a_trust_list_and_a_synced_clock(demo_central, tmp_path, language):
    server, ids, token_file = demo_central
    cfg = cmd_demo.demo_config(tmp_path, ids, server.url, token_file, width=800, height=480,
                               language=language)
    with contextlib.ExitStack() as stack:
        parts = build(cfg, stack, with_camera=False, parts=Supplied(
            sync_options=cmd_demo.SYNC_OPTIONS, loop_options=cmd_demo.loop_options(server.url)))
        health = parts.loop.health()
        assert health.clock_synced
        assert health.trust_list_age is not None and health.trust_list_age < timedelta(hours=1)
        app = KioskApp(parts.loop, UiSettings.checked(language=language), (800, 480),
                       show_lights=True)
        app.health = health
        items = {text: colour for text, _short, colour in status_items(app)}
    trust = [text for text in items if "trust" in text.lower() or "tin cậy" in text]
    assert len(trust) == 1 and items[trust[0]] == OK, items
    clock = "Giờ đúng" if language == "vi" else "Clock OK"
    assert items[clock] == OK, items


def test_the_clock_check_measures_the_central(demo_central, monkeypatch):
    server, _ids, _token_file = demo_central
    assert cmd_demo.clock_agrees(server.url)
    from offline_queue.central import db as central_db

    real = central_db.now_utc
    monkeypatch.setattr(central_db, "now_utc", lambda: real() + timedelta(minutes=3))
    assert not cmd_demo.clock_agrees(server.url)  # a central 3 min ahead: not agreeing
    assert not cmd_demo.clock_agrees("http://127.0.0.1:9")  # none at all: not agreeing
