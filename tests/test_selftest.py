"""The self-test against a real central server, a replayed camera and MockFactory pins."""

from __future__ import annotations

import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import config as config_mod
from kiosk.ops import provision as prov
from kiosk.ops.selftest import FAIL, PASS, WARN, run_selftest
from kiosk.ops.selftest import test_card_image as card_image
from offline_queue.central import db as central_db
from offline_queue.central.server import CentralServer

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def central(tmp_path_factory):
    path = tmp_path_factory.mktemp("central") / "central.db"
    with CentralServer(path) as server:
        conn = central_db.connect(path)
        server.token = central_db.create_enrolment_token(conn, checkpoint_id="LS-1", name="x")
        conn.close()
        yield server


@pytest.fixture(scope="module")
def kiosk(central, tmp_path_factory):
    folder = tmp_path_factory.mktemp("kiosk")
    frames = folder / "frames"
    frames.mkdir()
    from PIL import Image

    card = card_image(module_px=4)
    scene = Image.new("L", (640, 480), 120)
    scene.paste(card, (200, 100))
    for i in range(4):
        scene.save(frames / f"{i:03d}.png")
    config = folder / "kiosk.toml"
    config.write_text(
        f'[camera]\nspec = "replay:{frames},fps=10,loop"\n[signals]\npin_factory = "mock"\n'
        f'[store]\npath = "{folder / "k.db"}"\n[policy]\nprofile = "hospital"\n',
        encoding="utf-8")
    prov.provision(prov.Request(central.url, central.token), config_path=config)
    return config


def test_a_provisioned_kiosk_passes_all_but_the_unsynced_lists(kiosk, tmp_path):
    cfg = config_mod.load(kiosk, environ={})
    asked = []
    report = run_selftest(cfg, confirm=lambda q: asked.append(q) or True, card_seconds=5,
                          camera_seconds=3, synced_flag=tmp_path / "absent")
    results = {c.name: (c.result, c.detail) for c in report.checks}
    assert results["camera"][0] == PASS
    assert results["test card"] == (PASS, "test card read through the camera")
    assert results["lights and buzzer"] == (PASS, "confirmed red, amber, green, buzzer")
    assert asked == ["Is the red light on?", "Is the amber light on?", "Is the green light on?",
                     "Is the buzzer sounding?"]
    # Provisioning made the queue (it holds the central's sealing key from the enrolment).
    assert results["database"][0] == PASS
    assert results["disk"][0] == PASS
    assert results["server"] == (PASS, f"{cfg.sync.server_url} reachable, device token accepted")
    assert results["clock"][0] == WARN  # not NTP-synced here, but agrees with the server
    assert results["trust list and watchlist"][0] == FAIL  # never synced
    assert not report.ok
    assert "SELF-TEST FAILED" in report.human()


def test_a_light_the_technician_does_not_see_fails(kiosk, tmp_path):
    cfg = config_mod.load(kiosk, environ={})
    report = run_selftest(cfg, confirm=lambda q: "amber" not in q, camera_seconds=1)
    (lights,) = [c for c in report.checks if c.name == "lights and buzzer"]
    assert (lights.result, lights.detail) == (FAIL, "not confirmed: amber")


def test_revoked_token_and_dead_camera_fail_with_reasons(kiosk, central, tmp_path):
    cfg = config_mod.load(kiosk, environ={})
    token_file = tmp_path / "token"
    token_file.write_text("dev-revoked\n")
    cfg = cfg.replace(sync={"token_file": str(token_file)},
                      camera={"spec": f"replay:{tmp_path / 'nothing'}"})
    report = run_selftest(cfg, camera_seconds=1)
    results = {c.name: (c.result, c.detail) for c in report.checks}
    assert results["server"][0] == FAIL and "refused the device token (401)" in results["server"][1]
    assert results["camera"][0] == FAIL and "does not exist" in results["camera"][1]
    assert results["lights and buzzer"][0] == WARN  # nobody to confirm
    assert "dev-revoked" not in json.dumps(report.as_dict())


def test_cli_json_and_exit_status(kiosk):
    proc = subprocess.run([sys.executable, "-m", "kiosk", "selftest", "--json", "--config",
                           str(kiosk), "--camera-seconds", "2"], cwd=REPO,
                          capture_output=True, text=True, timeout=90)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["ok"] is False
    assert [c["name"] for c in report["checks"]] == [
        "camera", "test card", "lights and buzzer", "database", "disk", "server", "clock",
        "trust list and watchlist"]


def test_the_camera_flag_the_picamera2_error_suggests_exists(tmp_path):
    """Off a Pi the camera check says 'use --camera ...': the self-test takes that flag."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        card_image(module_px=4).save(frames / f"{i:03d}.png")
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[store]\npath = "{tmp_path / "k.db"}"\n[signals]\npin_factory = "mock"\n',
                      encoding="utf-8")

    def selftest(*args):
        proc = subprocess.run([sys.executable, "-m", "kiosk", "selftest", "--json", "--config",
                               str(config), "--camera-seconds", "2", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=90)
        assert proc.stdout, proc.stderr
        return {c["name"]: c for c in json.loads(proc.stdout)["checks"]}

    try:
        import picamera2  # noqa: F401
    except ImportError:
        camera = selftest()["camera"]  # the default spec, picamera2, off a Pi
        assert camera["result"] == FAIL and "--camera v4l2:/dev/video0" in camera["detail"]
    other = tmp_path / "other"
    checks = selftest("--camera", f"replay:{frames},fps=10,loop", "--db", str(other / "x.db"))
    assert checks["camera"]["result"] == PASS
    assert f"replay:{frames},fps=10,loop" in checks["camera"]["detail"]
    assert checks["database"]["detail"] == f"write/read ok in {other}; no check-in database yet"


@pytest.mark.skipif(bool(glob.glob("/dev/gpiochip*")), reason="this machine has GPIO chips")
def test_without_gpio_the_lights_check_warns_instead_of_asking_about_simulated_lights(
        tmp_path, monkeypatch):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)  # conftest's
    cfg = config_mod.Config().replace(store={"path": str(tmp_path / "k.db")},
                                      camera={"spec": f"replay:{tmp_path / 'none'}"})
    asked = []
    report = run_selftest(cfg, confirm=lambda q: asked.append(q) or True, camera_seconds=0.5)
    (lights,) = [c for c in report.checks if c.name == "lights and buzzer"]
    assert lights.result == WARN and "no GPIO on this machine" in lights.detail
    assert asked == []


def test_the_report_never_prints_raw_control_characters():
    from kiosk.ops.selftest import Check, SelfTestReport

    # A hostile server's error text ends up in the server check's detail.
    report = SelfTestReport((Check("server", FAIL, "answered \x1b[2J\x9b31m\u202eevil"),))
    for text in (report.human(), report.to_json()):
        assert not any(c in text for c in "\x1b\x9b\u202e")
    assert json.loads(report.to_json())["checks"][0]["detail"].endswith("\u202eevil")


def test_the_camera_check_tells_a_technician_about_a_fixed_lens_and_too_little_light(
        fake_pi, monkeypatch, tmp_path):
    from tests.fakepi import FakePicamera2

    cfg = config_mod.Config().replace(store={"path": str(tmp_path / "k.db")})
    assert cfg.camera.spec == "picamera2"
    report = run_selftest(cfg, camera_seconds=2, synced_flag=tmp_path / "absent")
    camera = next(c for c in report.checks if c.name == "camera")
    assert camera.result == PASS, camera.detail
    assert "shutter 16.7 ms, gain 2.0, autofocus" in camera.detail

    monkeypatch.setattr(FakePicamera2, "controls", ("AeExposureMode",))
    FakePicamera2.metadata.update(ExposureTime=33333, AnalogueGain=8.0)
    report = run_selftest(cfg, camera_seconds=2, synced_flag=tmp_path / "absent")
    camera = next(c for c in report.checks if c.name == "camera")
    assert camera.result == WARN
    assert "fixed focus" in camera.detail and "Camera Module 3" in camera.detail
    assert "shutter is at 33 ms (gain 8.0)" in camera.detail


def test_inside_the_kiosk_the_camera_check_leaves_the_camera_to_its_thread(tmp_path):
    import numpy as np

    cfg = config_mod.Config().replace(store={"path": str(tmp_path / "k.db")})
    frames = iter([np.zeros((48, 64), np.uint8) for _ in range(5)])
    report = run_selftest(cfg, frames=lambda: next(frames, None), camera_seconds=2,
                          synced_flag=tmp_path / "absent")
    camera = next(c for c in report.checks if c.name == "camera")
    assert camera.result == PASS and camera.detail == "3 frames 64x48 from picamera2"


def test_the_reading_lamp_is_asked_about_and_left_on_in_the_running_kiosk():
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    from hardware.signals import Signals
    from kiosk.ops.selftest import _lights

    cfg = config_mod.Config().replace(signals={"lamp": 25, "buzzer": None})
    factory = MockFactory(pin_class=MockPWMPin)
    try:
        asked = []
        with Signals(red=17, amber=27, green=22, lamp=25, pin_factory=factory) as signals:
            result = _lights(cfg, signals, lambda q: asked.append(q) or True)
            assert result == (PASS, "confirmed red, amber, green, lamp")
            assert asked[-1] == "Is the reading lamp (above the camera) on?"
            # The lights asked about go off again; the lamp, on all the time, stays on.
            assert signals.state() == {"red": False, "amber": False, "green": False,
                                       "buzzer": False, "gate": False, "lamp": True}
    finally:
        factory.reset()
