"""Issue 9 #3b on the screen: the officer confirms or rejects a USB stick's provisioning file.

Real pygame events on the dummy driver over the real scan loop (``test_ui_loop.kit``), two real
central servers on 127.0.0.1 (the kiosk's own and the stick's), the real staging in
``kiosk.ops.provision``.  A screenshot of the question is written for a person to look at.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pygame
import pytest
from conftest import new_token, snapshot
from test_provision_media import devices, other  # noqa: F401 - the fixture
from test_ui_app import Clock, frame, key, tap_button, type_digits
from test_ui_appliance import run_until
from test_ui_loop import kit  # noqa: F401 - the fixture

from kiosk import config as config_mod
from kiosk.config import UiSettings
from kiosk.ops import provision as prov
from kiosk.ui.app import KioskApp
from kiosk.ui.appliance import Appliance
from kiosk.ui.machine import Timeouts

T = Timeouts()  # the durations the screens run on

PIN = "2468"


# A display for fonts and surfaces (tests/conftest.py), opened once per module.
pytestmark = pytest.mark.usefixtures("pygame_display")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def staged(central, other, etc, tmp_path):  # noqa: F811
    """An enrolled kiosk, and a stick pointing it at another server, staged by the unit."""
    enrolled = prov.provision(prov.Request(central.url, new_token(central, "LS-A", "A")),
                              config_path=etc / "kiosk.toml")
    stick = tmp_path / "usb-sda1"
    stick.mkdir()
    token = new_token(other, "QN-MONGCAI", "Móng Cái")
    (stick / prov.FILE_NAME).write_text(
        f'server_url = "{other.url}"\nenrolment_token = "{token}"\n'
        'checkpoint_name = "Cửa khẩu Móng Cái"\npolicy_profile = "border"\n',
        encoding="utf-8")
    (result,) = prov.import_from_media(globs=[str(stick)], config_path=etc / "kiosk.toml",
                                       state_dir=tmp_path / "state")
    assert result.pending
    return enrolled, token


def start(kit, clock, etc, tmp_path, **config):  # noqa: F811
    config.setdefault("officer_pin", PIN)
    app = KioskApp(kit.loop, UiSettings.checked(**config), (800, 480), clock=clock,
                   appliance=Appliance(config_path=etc / "kiosk.toml",
                                       state_dir=tmp_path / "state"))
    clock.advance(1.5)
    frame(app)
    clock.advance(T.provision_poll)
    frame(app)
    return app


def test_the_officer_sees_old_and_new_and_confirms_with_the_pin(kit, clock, etc, tmp_path,  # noqa: F811
                                                               staged, other, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    enrolled, token = staged
    app = start(kit, clock, etc, tmp_path, language="en")
    assert app.state == "confirm_provision" and app.screen.phase == "review"
    lines = [text for text, _colour in app.screen.change_lines(app)]
    assert lines[0] == f"Server: {enrolled.server_url} » {other.url}"
    assert lines[1] == ("Checkpoint: Old name (LS-A) » Cửa khẩu Móng Cái "
                        "(the enrolment token's checkpoint)")
    assert "policy_profile: — » border" in lines
    surface = frame(app)
    shot = tmp_path / "confirm-provision.png"
    pygame.image.save(surface, str(shot))
    print(f"screenshot: {shot}")
    # A citizen's code while only the question is up is a check-in as usual.
    kit.scan("cccd")
    frame(app)
    assert app.state == "result" and len(kit.rows()) == 1
    clock.advance(app.settings.result_seconds + 0.1)
    frame(app)
    clock.advance(T.provision_poll)
    frame(app)
    assert app.state == "confirm_provision"  # asked again when the kiosk is free
    before = snapshot(etc)
    tap_button(app, "confirm")
    assert app.screen.phase == "pin"
    type_digits(app, "13")
    kit.scan("cccd_mismatch")  # read while the officer types: decided, shown as a notice
    frame(app)
    assert app.state == "confirm_provision" and app.screen.entry.value == "13"  # PIN kept
    assert len(kit.rows()) == 2 and app.notice_shown is not None
    pygame.image.save(frame(app), str(tmp_path / "confirm-provision-pin.png"))
    type_digits(app, "57")
    key(app, pygame.K_RETURN)
    assert app.screen.phase == "pin" and app.screen.message == "Wrong PIN"
    assert snapshot(etc) == before
    for d in PIN:
        tap_button(app, d)
    tap_button(app, "ok")
    assert app.screen.phase == "working" and app.busy
    run_until(app, lambda: app.screen.phase != "working")
    assert app.screen.phase == "done", app.screen.error
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert cfg.sync.server_url == other.url and cfg.device.checkpoint_id == "QN-MONGCAI"
    assert cfg.device.id in devices(other)
    assert "officer confirmed provisioning file" in caplog.text
    assert prov.pending_change(tmp_path / "state") is None
    pygame.image.save(frame(app), str(tmp_path / "confirm-provision-done.png"))
    device_token = Path(cfg.sync.token_file).read_text().strip()
    for secret in (token, device_token, PIN):
        assert secret not in caplog.text
    clock.advance(Timeouts().restart_after + 0.1)
    frame(app)
    assert not app.running  # exit 0: systemd starts the kiosk with its new settings


def test_rejected_with_the_pin_nothing_changes(kit, clock, etc, tmp_path, staged, caplog):  # noqa: F811
    caplog.set_level(logging.INFO)
    app = start(kit, clock, etc, tmp_path)
    before = snapshot(etc)
    tap_button(app, "reject")
    assert app.screen.phase == "pin"
    tap_button(app, "cancel")  # changed their mind: the question again, nothing decided
    assert app.screen.phase == "review"
    tap_button(app, "reject")
    type_digits(app, PIN, keypad=True)
    key(app, pygame.K_KP_ENTER)
    assert app.state == "scanning"
    assert snapshot(etc) == before and prov.pending_change(tmp_path / "state") is None
    assert "officer rejected provisioning file" in caplog.text
    clock.advance(T.provision_poll)
    frame(app)
    assert app.state == "scanning"  # neither the question nor a "failed" screen comes back


def test_later_asks_again_after_a_while(kit, clock, etc, tmp_path, staged):  # noqa: F811
    app = start(kit, clock, etc, tmp_path)  # Vietnamese, as at a checkpoint
    pygame.image.save(frame(app), str(tmp_path / "confirm-provision-vi.png"))
    tap_button(app, "later")
    assert app.state == "scanning"
    clock.advance(T.provision_poll)
    frame(app)
    assert app.state == "scanning"
    clock.advance(Timeouts().remind)
    frame(app)
    assert app.state == "confirm_provision"


def test_without_an_officer_pin_the_screen_cannot_confirm(kit, clock, etc, tmp_path, staged):  # noqa: F811
    app = start(kit, clock, etc, tmp_path, officer_pin="")
    assert app.state == "confirm_provision"
    buttons = {b.action: b for b in app.screen.buttons(app)}
    assert not buttons["confirm"].enabled and not buttons["reject"].enabled
    app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN,
                                        pos=buttons["confirm"].rect.center, button=1))
    assert app.screen.phase == "review"
    frame(app)
