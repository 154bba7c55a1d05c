"""The officer panel's appliance entries, driven by real events over the real scan loop.

Provisioning enrols against the reference central server on 127.0.0.1 with a QR decoded from
a camera frame; the self-test runs ``kiosk.ops.selftest`` through the kiosk that
``kiosk.runtime.build.build`` makes (replayed camera, MockFactory pins, real store and sync).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import pygame
import pytest
from conftest import new_token, snapshot
from PIL import Image
from test_ui_app import Clock, frame, make_app, open_panel_with_pin, tap, tap_button
from test_ui_loop import kit  # noqa: F401 - the fixture

from hardware.signals import Pattern
from kiosk import config as config_mod
from kiosk.config import UiSettings
from kiosk.domain.model import Kind
from kiosk.ops import provision as prov
from kiosk.ops.selftest import FAIL, PASS
from kiosk.testing.samples import background, qr_image
from kiosk.ui.app import KioskApp
from kiosk.ui.appliance import SHOWN_FILE, Appliance, Job
from kiosk.ui.machine import Timeouts

T = Timeouts()  # the durations the screens run on

# A display for fonts and surfaces (tests/conftest.py), opened once per module.
pytestmark = pytest.mark.usefixtures("pygame_display")


@pytest.fixture
def clock():
    return Clock()


def qr_frame(payload: str) -> np.ndarray:
    """The camera's view of a QR on a phone or paper held up in front of the kiosk."""
    img = background(random.Random(3))
    code = qr_image(payload, module_px=3)
    img.paste(code, ((640 - code.size[0]) // 2, (480 - code.size[1]) // 2))
    return np.asarray(img, dtype=np.uint8).copy()


def show(kit, image: np.ndarray) -> None:  # noqa: F811
    assert kit.feed.show(image) == 1, "the decoder must read the code"


def run_until(app, condition, seconds: float = 20.0) -> None:
    """Turn the main loop (real time passes for the background thread) until ``condition``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still on {app.state} after {seconds} s"
        frame(app)
        time.sleep(0.01)
    frame(app)


def panel_app(kit, clock, etc, tmp_path, **config):  # noqa: F811
    appliance = Appliance(config_path=etc / "kiosk.toml", state_dir=tmp_path / "state")
    (tmp_path / "state").mkdir(exist_ok=True)
    app = KioskApp(kit.loop, UiSettings.checked(officer_pin="2468", **config), (800, 480),
                   clock=clock, appliance=appliance)
    clock.advance(1.5)
    frame(app)
    assert app.state == "scanning"
    open_panel_with_pin(app, clock)
    return app


# --- provisioning QR --------------------------------------------------------------------------


def test_a_provisioning_qr_enrols_shows_the_checkpoint_and_restarts(kit, clock, etc, tmp_path,  # noqa: F811
                                                                   central, caplog):
    caplog.set_level(logging.DEBUG)
    token = new_token(central)
    app = panel_app(kit, clock, etc, tmp_path)
    tap_button(app, "provision")
    assert app.state == "provision" and app.screen.phase == "waiting"
    lights_before = kit.loop.lights()
    payload = prov.qr_payload(prov.Request(central.url, token,
                                           checkpoint_name="Cửa khẩu Hữu Nghị",
                                           checkpoint_id="LS-HUUNGHI"))
    show(kit, qr_frame(payload))
    frame(app)
    assert app.screen.phase == "working"
    assert app.busy and not app.screen.buttons(app)  # the enrolment cannot be left half-way
    show(kit, qr_frame(payload))  # still held up: read again, ignored
    run_until(app, lambda: app.screen.phase != "working")
    assert app.screen.phase == "done", app.screen.error
    result = app.screen.result
    assert (result.checkpoint_id, result.checkpoint_name) == ("LS-HUUNGHI", "Cửa khẩu Hữu Nghị")
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert cfg.device.checkpoint_id == "LS-HUUNGHI" and cfg.device.id == result.device_id
    assert cfg.sync.server_url == central.url and cfg.ui.language == "en"
    saved = json.loads((tmp_path / "state" / prov.RESULT_FILE).read_text())
    assert saved["ok"] and saved["source"] == "provisioning QR"
    # Nothing read in this mode became a check-in or moved the lights.
    assert kit.rows() == [] and kit.loop.lights() == lights_before
    device_token = Path(cfg.sync.token_file).read_text().strip()
    for secret in (token, device_token):
        assert secret not in caplog.text and secret not in json.dumps(saved)
    # The screen tells the officer and restarts by itself (exit 0: systemd starts it again).
    assert app.running
    clock.advance(Timeouts().restart_after - 1)
    frame(app)
    assert app.running and app.state == "provision"
    clock.advance(1.1)
    frame(app)
    assert not app.running
    # Shown here, so a restart does not show it a second time.
    again = KioskApp(kit.loop, UiSettings.checked(), (800, 480), clock=clock,
                     appliance=Appliance(state_dir=tmp_path / "state"))
    clock.advance(1.5)
    frame(again)
    assert again.state == "scanning"


def test_a_wrong_token_is_shown_as_an_error_and_the_old_config_stays(kit, clock, etc, tmp_path,  # noqa: F811
                                                                  central, caplog):
    caplog.set_level(logging.DEBUG)
    before = snapshot(etc)
    app = panel_app(kit, clock, etc, tmp_path)
    tap_button(app, "provision")
    show(kit, qr_frame(prov.qr_payload(prov.Request(central.url, "enrol-not-a-real-one"))))
    run_until(app, lambda: app.screen.phase not in ("waiting", "working"))
    assert app.screen.phase == "failed"
    assert "refused the enrolment token" in app.screen.error
    assert "enrol-not-a-real-one" not in app.screen.error + caplog.text
    assert snapshot(etc) == before
    saved = prov.last_result(tmp_path / "state")
    assert saved is not None and not saved.ok and "refused" in saved.message
    assert app.running
    tap_button(app, "retry")
    assert app.screen.phase == "waiting"
    tap_button(app, "cancel")
    assert app.state == "officer"


def test_a_citizens_code_in_provisioning_mode_is_refused_and_not_recorded(kit, clock, etc,  # noqa: F811
                                                                        tmp_path):
    app = panel_app(kit, clock, etc, tmp_path)
    tap_button(app, "provision")
    kit.scan("cccd")
    frame(app)
    assert app.state == "provision" and app.screen.phase == "waiting"
    assert app.screen.message == app.t("This is not a provisioning code.")
    assert kit.rows() == []
    key_escape = pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE, mod=0, unicode="")
    app.handle_event(key_escape)
    assert app.state == "officer"
    kit.scan("cccd", seed=2)
    frame(app)
    # Outside the mode: a check-in, shown as a notice on the panel (issue 9, defect 8).
    assert app.state == "officer" and len(kit.rows()) == 1
    assert app.notice_shown is not None and app.notice_shown.checkin_id == kit.rows()[0]["id"]


def test_a_damaged_provisioning_qr_is_explained(kit, clock, etc, tmp_path):  # noqa: F811
    app = panel_app(kit, clock, etc, tmp_path)
    tap_button(app, "provision")
    show(kit, qr_frame(prov.QR_PREFIX + '{"server_url": "ftp://x", "enrolment_token": "e-1"}'))
    frame(app)
    assert app.screen.phase == "failed" and "server URL 'ftp://x' is not valid" in app.screen.error
    assert "e-1" not in app.screen.error


def test_without_a_config_path_the_entries_are_disabled(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    open_panel_with_pin(app, clock)
    buttons = {b.action: b for b in app.screen.buttons(app)}
    assert not buttons["provision"].enabled and not buttons["selftest"].enabled
    tap(app, buttons["provision"].rect.center)
    assert app.state == "officer"
    assert app.t(app.screen.notice) == "Không có tệp cấu hình (bản demo)"  # says why


def test_a_provisioning_qr_outside_the_mode_is_not_a_person(kit, clock, central, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    token = new_token(central)
    app = make_app(kit, clock)
    show(kit, qr_frame(prov.qr_payload(prov.Request(central.url, token))))
    frame(app)
    assert app.state == "result"
    result = app.screen.result
    assert result.credential.kind is Kind.UNKNOWN and result.checkin_id is None
    assert result.credential.display == {} and kit.rows() == []
    assert token not in caplog.text and token not in repr(result)
    app.draw(pygame.Surface((800, 480)))  # the screen draws "Unrecognised code", no payload


# --- a provisioning file's result at start-up ---------------------------------------------------


def test_an_imported_file_is_shown_once_at_start_up(kit, clock, etc, tmp_path, central):  # noqa: F811
    state = tmp_path / "state"
    media = tmp_path / "usb"
    media.mkdir()
    token = new_token(central, checkpoint="HN-BVBM", name="Bạch Mai")
    (media / prov.FILE_NAME).write_text(
        f'server_url = "{central.url}"\nenrolment_token = "{token}"\n'
        'checkpoint_name = "Bệnh viện Bạch Mai"\n', encoding="utf-8")
    prov.import_file(media / prov.FILE_NAME, config_path=etc / "kiosk.toml", state_dir=state)
    appliance = Appliance(state_dir=state)
    app = KioskApp(kit.loop, UiSettings.checked(), (800, 480), clock=clock, appliance=appliance)
    clock.advance(1.5)
    frame(app)
    assert app.state == "provisioned" and app.screen.result.ok
    assert app.screen.result.checkpoint_id == "HN-BVBM"
    tap(app, app.layout.banner.center)
    assert app.state == "scanning"
    assert (state / SHOWN_FILE).exists()
    # The next start does not show it again.
    app = KioskApp(kit.loop, UiSettings.checked(), (800, 480), clock=clock, appliance=appliance)
    clock.advance(1.5)
    frame(app)
    assert app.state == "scanning"
    # A failed import (the unit does not restart the kiosk then) appears while it runs,
    # and goes away by itself.
    bad = media / "again.toml"
    bad.write_text(f'server_url = "{central.url}"\nenrolment_token = "{token}"\n',
                   encoding="utf-8")
    with pytest.raises(prov.ProvisionError):
        prov.import_file(bad, config_path=etc / "kiosk.toml", state_dir=state,
                         replace_token=True)
    clock.advance(T.provision_poll)
    frame(app)
    assert app.state == "provisioned" and not app.screen.result.ok
    assert "refused the enrolment token" in app.screen.result.message
    app.draw(pygame.Surface((800, 480)))
    clock.advance(21)
    frame(app)
    assert app.state == "scanning"


# --- self-test ---------------------------------------------------------------------------------


@pytest.fixture
def appliance_kiosk(central, tmp_path):
    """The kiosk as run_kiosk builds it: replayed camera showing the test card, mock pins."""
    from kiosk.main import selftest_runner
    from kiosk.ops.selftest import test_card_image
    from kiosk.runtime.build import build

    frames = tmp_path / "frames"
    frames.mkdir()
    scene = Image.new("L", (640, 480), 120)
    scene.paste(test_card_image(module_px=4), (200, 100))
    for i in range(4):
        scene.save(frames / f"{i:03d}.png")
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[camera]\nspec = "replay:{frames},fps=10,loop"\n[signals]\npin_factory = "mock"\n'
        f'gate = 24\n[store]\npath = "{tmp_path / "k.db"}"\n[policy]\nprofile = "hospital"\n'
        '[decoder]\ndedupe_seconds = 60\n',
        encoding="utf-8")
    prov.provision(prov.Request(central.url, new_token(central, "LS-1", "x")),
                   config_path=config)
    cfg = config_mod.load(config, environ={})
    with contextlib.ExitStack() as stack:
        parts = build(cfg, stack)
        yield parts, Appliance(config_path=config, state_dir=tmp_path,
                               selftest=selftest_runner(cfg, parts, card_seconds=5))


def test_self_test_from_the_panel_asks_about_each_light_and_shows_the_verdict(
        appliance_kiosk, clock):
    parts, appliance = appliance_kiosk
    app = KioskApp(parts.loop, UiSettings.checked(officer_pin="2468"), (800, 480), clock=clock,
                   appliance=appliance)
    clock.advance(1.5)
    frame(app)
    open_panel_with_pin(app, clock)
    signals = parts.signals
    tap_button(app, "selftest")
    assert app.state == "selftest" and app.busy
    assert parts.loop.signals_lent  # the loop's own patterns wait until the test is over
    asked = []
    deadline = time.monotonic() + 30
    while app.screen.report is None:
        assert time.monotonic() < deadline, "self-test did not finish"
        frame(app)
        if app.screen.question is not None:
            question = app.screen.question
            asked.append(question)
            lit = {k for k, v in signals.state().items() if v}
            assert len(lit) == 1, (question, lit)  # exactly the device asked about is on
            if "amber" in question:
                # The loop asks for a fault pattern meanwhile: it must wait, not blink amber.
                parts.loop._show(Pattern.FAULT)
                assert signals.pattern is not Pattern.FAULT
            tap_button(app, "no" if "amber" in question else "yes")
        time.sleep(0.01)
    frame(app)
    assert asked == ["Is the red light on?", "Is the amber light on?", "Is the green light on?",
                     "Is the buzzer sounding?", "Is the gate relay clicked?"]
    results = {name: check.result for name, check in app.screen.results().items()}
    assert results["lights and buzzer"] == FAIL
    assert app.screen.results()["lights and buzzer"].detail == "not confirmed: amber"
    assert results["camera"] == PASS and results["test card"] == PASS
    assert results["server"] == PASS
    assert list(results) == app.screen.order  # the screen's list is the test's list
    assert not app.busy
    # The lights are the loop's again, showing what it asked for while it waited.
    assert parts.loop.signals is signals and signals.pattern is Pattern.IDLE
    # The test card the camera kept reading never became a check-in.
    assert parts.store.counts_today()["total"] == 0
    surface = pygame.Surface((800, 480))
    app.draw(surface)
    tap_button(app, "back")
    assert app.state == "officer"


def test_stopping_the_self_test_answers_nobody_and_the_officer_key_waits(appliance_kiosk,
                                                                         clock):
    parts, appliance = appliance_kiosk
    app = KioskApp(parts.loop, UiSettings.checked(officer_pin="2468"), (1024, 600), clock=clock,
                   appliance=appliance)
    clock.advance(1.5)
    frame(app)
    open_panel_with_pin(app, clock)
    tap_button(app, "selftest")
    run_until(app, lambda: app.screen.question is not None)
    parts.loop.post_button("officer")
    frame(app)
    assert app.state == "selftest"  # a running test is not left by a button press
    tap_button(app, "no")
    frame(app)
    tap_button(app, "stop")
    run_until(app, lambda: not app.busy)
    lights = app.screen.results()["lights and buzzer"]
    assert lights.result == FAIL and lights.detail == "not confirmed: red"
    assert parts.loop.signals is parts.signals


def test_a_job_reports_errors_and_closes_while_waiting_for_an_answer():
    def work(job):
        if job.ask("Is the red light on?", timeout=30) is None:
            raise RuntimeError("nobody there")

    job = Job("probe", work).start()
    deadline = time.monotonic() + 5
    messages = []
    while not any(kind == "question" for kind, _v in messages):
        assert time.monotonic() < deadline
        messages += job.poll()
        time.sleep(0.01)
    job.close(timeout=2)
    assert not job.alive
    while not job.finished:
        messages += job.poll()
    assert messages[-1][0] == "error" and str(messages[-1][1]) == "nobody there"
    job.close()  # idempotent


def test_the_state_dir_is_systemds_or_the_provisioning_default(monkeypatch):
    from kiosk.main import state_dir

    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/checkpoint-kiosk-test:/other")
    assert state_dir() == Path("/var/lib/checkpoint-kiosk-test")
    monkeypatch.delenv("STATE_DIRECTORY")
    assert state_dir() == prov.STATE_DIR
