"""Codes the camera reads while an officer screen is open (issue 9, defect 8).

Decision (docs/ui.md): such a code is decided, recorded and signalled as usual (the queue keeps
moving) and shown as a compact notice on the officer's screen, which keeps the focus: nothing
typed is lost.  The officer's taps and keys are real pygame events posted to SDL's queue and
handled by ``kiosk.ui.app.run_frame`` (one turn of the main loop); the camera is the real
decoder over sample frames feeding the real ``ScanLoop``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pygame
import pytest
from test_ui_app import PIN, Clock, make_app
from test_ui_loop import kit  # noqa: F401 - the fixture

from kiosk.config import UiSettings
from kiosk.domain.model import Outcome
from kiosk.ops import provision as prov
from kiosk.ui.app import KioskApp, run_frame
from kiosk.ui.appliance import Appliance
from kiosk.ui.artwork import COLOURS, NOT_PERSON_COLOUR
from kiosk.ui.machine import Timeouts

T = Timeouts()  # the durations the screens run on

# A display for fonts and surfaces (tests/conftest.py), opened once per module.
pytestmark = pytest.mark.usefixtures("pygame_display")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(autouse=True)
def empty_event_queue():
    pygame.event.clear()
    yield
    pygame.event.clear()


# --- the officer's hands: events posted to SDL, handled by the main loop's frame ---------------


def pump(app, frames: int = 1) -> pygame.Surface:
    canvas = pygame.Surface((app.layout.width, app.layout.height))
    for _ in range(frames):
        run_frame(app, pygame.display.get_surface(), canvas)
    return canvas


def post_key(k: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode="", scancode=0))


def post_digits(digits: str) -> None:
    for d in digits:
        post_key(getattr(pygame, f"K_{d}"))


def post_tap(pos: tuple[int, int]) -> None:
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=pos, button=1))


def tap(app, action: str) -> None:
    """Tap the drawn button ``action`` on the current screen, then run a frame."""
    buttons = {b.action: b for b in app.screen.buttons(app)}
    assert action in buttons, f"no {action!r} button on {app.state}: {sorted(buttons)}"
    post_tap(buttons[action].rect.center)
    pump(app)


def open_panel(app) -> None:
    post_key(pygame.K_F2)
    pump(app)
    assert app.state == "pin"
    post_digits(PIN)
    post_key(pygame.K_RETURN)
    pump(app)
    assert app.state == "officer"


def notice(app):
    """The result shown as a notice now (None: none)."""
    return getattr(app, "notice_shown", None)


def notice_colour(surface: pygame.Surface, app) -> tuple[int, int, int]:
    """The colour inside the top bar's right end, where the notice has no text."""
    bar_h = int(app.layout.unit * 2.2)
    return tuple(surface.get_at((app.layout.width - 6, bar_h // 2)))[:3]


def assert_notice(app, surface, outcome: Outcome, checkin_id: str | None = None) -> None:
    shown = notice(app)
    assert shown is not None, f"no notice on {app.state}"
    assert shown.decision.outcome is outcome
    if checkin_id is not None:
        assert shown.checkin_id == checkin_id
    assert notice_colour(surface, app) == COLOURS[outcome]


def last_row(kit):  # noqa: F811
    rows = kit.rows()
    assert rows, "the code was not recorded"
    return rows[-1]


def save(surface: pygame.Surface, folder: Path, name: str) -> None:
    pygame.image.save(surface, str(folder / f"{name}.png"))


# --- each officer screen -------------------------------------------------------------------------


def test_pin_pad_keeps_the_digits_typed_while_a_code_is_decided(kit, clock, tmp_path):  # noqa: F811
    app = make_app(kit, clock)
    post_key(pygame.K_F2)
    pump(app)
    assert app.state == "pin"
    post_digits(PIN[:2])
    pump(app)
    kit.scan("cccd")  # the next citizen holds up a card meanwhile
    surface = pump(app)
    assert app.state == "pin" and app.screen.entry.value == PIN[:2]
    row = last_row(kit)
    assert row["decision"] == "pass" and kit.loop.lights()["green"]  # the queue keeps moving
    assert_notice(app, surface, Outcome.PASS, row["id"])
    save(surface, tmp_path, "notice-pin")
    post_digits(PIN[2:])
    post_key(pygame.K_RETURN)
    pump(app)
    assert app.state == "officer"  # the PIN typed across the code still opens the panel
    assert app.screen.recent[0]["id"] == row["id"]


def test_officer_panel_stays_and_lists_a_code_read_meanwhile(kit, clock, tmp_path):  # noqa: F811
    app = make_app(kit, clock)
    open_panel(app)
    kit.scan("cccd_mismatch")
    surface = pump(app)
    assert app.state == "officer"
    row = last_row(kit)
    assert_notice(app, surface, Outcome.CHECK, row["id"])
    assert app.screen.recent[0]["id"] == row["id"]  # "Last check-ins" shows it at once
    assert app.counts["total"] == 1
    save(surface, tmp_path, "notice-officer")
    clock.advance(1.0)
    kit.scan("watchlisted", seed=2)
    surface = pump(app)
    assert app.state == "officer" and kit.loop.lights()["red"]
    assert_notice(app, surface, Outcome.STOP)
    assert [r["id"] for r in app.screen.recent[:2]] == [last_row(kit)["id"], row["id"]]
    tap(app, "close")
    assert app.state == "scanning" and notice(app) is None  # home, nothing left over
    assert app.counts["total"] == 2


def test_manual_entry_keeps_its_digits_and_its_result_returns_to_the_panel(kit, clock,  # noqa: F811
                                                                           tmp_path):
    app = make_app(kit, clock)
    open_panel(app)
    tap(app, "manual")
    assert app.state == "manual"
    post_digits("001185")
    pump(app)
    kit.scan("venue")  # a poster: nothing recorded, still told to the officer
    surface = pump(app)
    assert app.state == "manual" and app.screen.entry.value == "001185"
    assert notice(app) is not None and kit.rows() == []
    assert notice_colour(surface, app) == NOT_PERSON_COLOUR
    save(surface, tmp_path, "notice-manual")
    post_digits("012345")
    post_key(pygame.K_KP_ENTER)
    pump(app)
    assert app.state == "result" and app.screen.result.source == "manual"
    manual = app.screen.result
    # The officer's own result is on screen for the person in front: a code read now is a
    # notice over it, and the panel still comes back afterwards.
    clock.advance(0.5)
    kit.scan("watchlisted", seed=3)
    surface = pump(app)
    assert app.state == "result" and app.screen.result is manual
    assert_notice(app, surface, Outcome.STOP, last_row(kit)["id"])
    clock.advance(app.settings.result_seconds + 0.1)
    pump(app)
    assert app.state == "officer"
    assert len(kit.rows()) == 2


def test_override_changes_the_decision_it_was_opened_for(kit, clock, tmp_path):  # noqa: F811
    app = make_app(kit, clock)
    kit.scan("cccd_mismatch")
    pump(app)
    original = app.screen.result
    assert original.decision.outcome is Outcome.CHECK
    open_panel(app)
    tap(app, "override")
    assert app.state == "override"
    tap(app, "outcome:pass")
    tap(app, "reason:officer_documents_checked")
    kit.scan("cccd", seed=4)  # the next person, while the officer decides about the first
    surface = pump(app)
    assert app.state == "override"
    newcomer = last_row(kit)
    assert_notice(app, surface, Outcome.PASS, newcomer["id"])
    assert (app.screen.outcome, app.screen.reason) == (Outcome.PASS,
                                                       "officer_documents_checked")
    save(surface, tmp_path, "notice-override")
    tap(app, "confirm")
    assert app.state == "result" and app.screen.result.source == "override"
    row = kit.row(app.screen.result.checkin_id)
    assert row["override_of"] == original.checkin_id != newcomer["id"]


def test_provisioning_takes_codes_while_waiting_and_decides_them_after_a_failure(
        kit, clock, etc, tmp_path):  # noqa: F811
    appliance = Appliance(config_path=etc / "kiosk.toml", state_dir=tmp_path / "state")
    (tmp_path / "state").mkdir()
    app = KioskApp(kit.loop, UiSettings.checked(officer_pin=PIN), (800, 480), clock=clock,
                   appliance=appliance)
    clock.advance(1.5)
    pump(app)
    open_panel(app)
    tap(app, "provision")
    kit.scan("cccd")  # while waiting for the provisioning QR: the screen's, not a check-in
    pump(app)
    assert app.screen.phase == "waiting" and kit.rows() == [] and notice(app) is None
    damaged = prov.QR_PREFIX + '{"server_url": "ftp://x", "enrolment_token": "e-1"}'
    from test_ui_appliance import qr_frame

    assert kit.feed.show(qr_frame(damaged)) == 1
    pump(app)
    assert app.screen.phase == "failed"
    assert kit.feed.show(qr_frame(damaged)) == 1  # still held up: the screen's, ignored
    pump(app)
    assert kit.rows() == [] and notice(app) is None
    kit.scan("cccd", seed=5)  # the queue moves on while the officer reads the error
    surface = pump(app)
    assert app.state == "provision" and app.screen.phase == "failed"
    assert_notice(app, surface, Outcome.PASS, last_row(kit)["id"])
    save(surface, tmp_path, "notice-provision")
    tap(app, "back")
    assert app.state == "officer" and app.screen.recent[0]["id"] == last_row(kit)["id"]


def test_self_test_takes_codes_while_it_runs_and_decides_them_after(kit, clock, tmp_path):  # noqa: F811
    from kiosk.ops.selftest import TEST_CARD, Check, SelfTestReport

    answered = threading.Event()

    def runner(progress, confirm):
        progress("lights and buzzer")
        ok = confirm("Is the red light on?")
        answered.set()
        return SelfTestReport((Check("lights and buzzer", "pass" if ok else "fail", ""),),
                              at="2026-11-22T07:05:00+00:00")

    app = KioskApp(kit.loop, UiSettings.checked(officer_pin=PIN), (800, 480), clock=clock,
                   appliance=Appliance(selftest=runner))
    clock.advance(1.5)
    pump(app)
    open_panel(app)
    tap(app, "selftest")
    import time

    deadline = time.monotonic() + 10
    while app.screen.question is None:
        assert time.monotonic() < deadline
        pump(app)
    kit.scan("cccd")  # during the test the lights are the test's: not a check-in
    pump(app)
    assert kit.rows() == [] and notice(app) is None
    tap(app, "yes")
    assert answered.wait(10)
    while app.screen.report is None:
        assert time.monotonic() < deadline
        pump(app)
    from test_ui_app import code_frame

    assert kit.feed.show(code_frame(TEST_CARD)) == 1  # the card still held up: the test's
    pump(app)
    assert notice(app) is None
    kit.scan("cccd_mismatch", seed=6)
    surface = pump(app)
    assert app.state == "selftest" and app.screen.report is not None
    assert_notice(app, surface, Outcome.CHECK, last_row(kit)["id"])
    save(surface, tmp_path, "notice-selftest")
    tap(app, "back")
    assert app.state == "officer"


def test_an_abandoned_panel_still_closes_while_the_queue_moves(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    open_panel(app)
    for name in ("cccd", "pc_covid", "cccd_mismatch"):
        clock.advance(T.officer * 0.3)
        kit.scan(name)
        pump(app)
        assert app.state == "officer"
    clock.advance(T.officer * 0.15)
    kit.scan("watchlisted")
    pump(app)
    assert app.state == "scanning"  # codes read are not the officer's input
    assert len(kit.rows()) == 4


def test_the_start_up_provisioning_result_is_not_lost_to_a_code(kit, clock, tmp_path):  # noqa: F811
    from kiosk.ops.provision import Result, save_result

    state = tmp_path / "state"
    state.mkdir()
    save_result(Result(ok=True, message="enrolled", device_id="kiosk-1", checkpoint_id="HN-1",
                       source="file /media/usb/checkpoint-kiosk-provision.toml"), state)
    app = KioskApp(kit.loop, UiSettings.checked(officer_pin=PIN), (800, 480), clock=clock,
                   appliance=Appliance(state_dir=state))
    clock.advance(1.5)
    pump(app)
    assert app.state == "provisioned"
    kit.scan("cccd")
    surface = pump(app)
    assert app.state == "provisioned" and app.screen.result.checkpoint_id == "HN-1"
    assert_notice(app, surface, Outcome.PASS, last_row(kit)["id"])
    save(surface, tmp_path, "notice-provisioned")
    post_tap(app.layout.banner.center)
    pump(app)
    assert app.state == "scanning"


def test_change_last_decision_targets_the_person_the_officer_came_for(kit, clock):  # noqa: F811
    """Found by the day scenario's long run: a card read while the officer typed the PIN
    became "the last decision", and the override changed that stranger's decision.  The
    officer came for the person decided before the session began; codes read during it are
    notices and join the recent list, and become "last" once the officer has left."""
    app = make_app(kit, clock)
    kit.scan("cccd_mismatch")  # the person the officer comes for: check
    pump(app)
    assert app.state == "result"
    waiting = last_row(kit)
    assert waiting["decision"] == "check"
    clock.advance(app.settings.result_seconds + 0.1)
    pump(app)
    post_key(pygame.K_F2)
    pump(app)
    assert app.state == "pin"
    clock.advance(1.0)
    kit.scan("cccd", seed=4)  # the next citizen, meanwhile: pass, a notice
    pump(app)
    stranger = last_row(kit)
    assert stranger["id"] != waiting["id"]
    post_digits(PIN)
    post_key(pygame.K_RETURN)
    pump(app)
    assert app.state == "officer"
    tap(app, "override")
    assert app.state == "override"
    assert app.screen.target.checkin_id == waiting["id"]
    # Once the officer has left, the stranger's decision is the last one again.
    while app.state != "scanning":
        post_key(pygame.K_ESCAPE)
        pump(app)
    assert app.last_recorded.checkin_id == stranger["id"]
