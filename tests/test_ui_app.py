"""Event-driven tests of the kiosk screen over the real scan loop (``test_ui_loop.kit``).

Real pygame events (taps at the drawn buttons' centres, key presses) on the dummy video
driver; a controllable clock stands in for waiting.  Each test checks both the screen the
app shows and the record the loop wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta, timezone

import pygame
import pytest
from gpiozero.pins.mock import MockFactory
from test_ui_loop import kit  # noqa: F401 - the fixture

from hardware.signals import Buttons, Pattern
from kiosk.config import UiSettings
from kiosk.domain.model import Outcome
from kiosk.domain.officers import hash_pin, pin_matches
from kiosk.errors import ConfigError
from kiosk.ui import run_ui
from kiosk.ui.app import KioskApp, main_loop
from kiosk.ui.machine import Timeouts

T = Timeouts()  # the durations the screens run on

PIN = "2468"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


# A display for fonts and surfaces (tests/conftest.py), opened once per module.
pytestmark = pytest.mark.usefixtures("pygame_display")


@pytest.fixture
def clock():
    return Clock()


def make_app(kit, clock, size=(800, 480), **config):  # noqa: F811
    config.setdefault("officer_pin", PIN)
    config["officer_pin"] = config["officer_pin"] or ""  # None in a test: no PIN configured
    app = KioskApp(kit.loop, UiSettings.checked(**config), size, clock=clock,
                   tz=timezone(timedelta(hours=7)))
    clock.advance(1.5)  # past the splash
    app.update()
    assert app.state == "scanning"
    return app


def frame(app):
    """One turn of the main loop, drawn to an off-screen surface (draw errors fail the test)."""
    app.update()
    surface = pygame.Surface((app.layout.width, app.layout.height))
    app.draw(surface)
    return surface


def tap(app, pos):
    app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))
    app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=pos, button=1))


def tap_button(app, action):
    """Tap the centre of the drawn button whose action is ``action``."""
    buttons = {b.action: b for b in app.screen.buttons(app)}
    assert action in buttons, f"no {action!r} button on {app.state}: {sorted(buttons)}"
    assert buttons[action].enabled, f"button {action!r} is disabled"
    tap(app, buttons[action].rect.center)


def key(app, k):
    app.handle_event(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode=""))


def type_digits(app, digits, keypad=False):
    for d in digits:
        key(app, getattr(pygame, f"K_KP{d}" if keypad else f"K_{d}"))


def open_panel_with_pin(app, clock):
    status = app.layout.status
    app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=status.center, button=1))
    clock.advance(T.long_press + 0.1)
    frame(app)
    assert app.state == "pin"
    for d in PIN:
        tap_button(app, d)
    tap_button(app, "ok")
    assert app.state == "officer"


# --- scanning and results ---------------------------------------------------------------------


def test_a_scan_shows_its_result_then_scanning_again(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    kit.scan("cccd")
    frame(app)
    assert app.state == "result"
    result = app.screen.result
    assert result.decision.outcome is Outcome.PASS
    assert kit.row(result.checkin_id)["decision"] == "pass"
    clock.advance(app.settings.result_seconds - 0.1)
    frame(app)
    assert app.state == "result"
    clock.advance(0.2)
    frame(app)
    assert app.state == "scanning"
    assert app.counts["total"] == 1


def test_the_next_code_replaces_the_result_at_once(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    kit.scan("cccd")
    frame(app)
    clock.advance(1.0)
    kit.scan("watchlisted")
    frame(app)
    assert app.state == "result"
    assert app.screen.result.decision.outcome is Outcome.STOP
    assert app.screen.result.decision.reasons == ("watchlist",)
    assert kit.loop.lights()["red"] and not kit.loop.lights()["green"]
    assert len(kit.rows()) == 2


def test_a_tap_dismisses_the_result(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    kit.scan("venue")
    frame(app)
    assert app.state == "result" and app.screen.result.checkin_id is None
    tap(app, app.layout.banner.center)
    assert app.state == "scanning"
    assert kit.rows() == []  # a venue poster is not a person: nothing recorded


def test_idle_after_inactivity_then_back_on_touch_and_on_a_scan(kit, clock):  # noqa: F811
    app = make_app(kit, clock, idle_seconds=30)
    clock.advance(29)
    frame(app)
    assert app.state == "scanning"
    clock.advance(2)
    frame(app)
    assert app.state == "idle"
    tap(app, (10, 10))
    assert app.state == "scanning"
    clock.advance(31)
    frame(app)
    assert app.state == "idle"
    kit.scan("cccd")
    frame(app)
    assert app.state == "result"  # codes are still read in attract mode


# --- officer panel ------------------------------------------------------------------------------


def test_pin_opens_the_officer_panel_and_wrong_pins_lock_it(kit, clock, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    app = make_app(kit, clock)
    app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=app.layout.status.center,
                                        button=1))
    clock.advance(1.0)
    app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=app.layout.status.center,
                                        button=1))
    clock.advance(T.long_press)
    frame(app)
    assert app.state == "scanning"  # a short tap is not a long press
    key(app, pygame.K_KP_MULTIPLY)  # the USB keypad's '*' asks for the PIN too
    assert app.state == "pin"
    for _ in range(T.pin_attempts):
        type_digits(app, "1111", keypad=True)
        key(app, pygame.K_KP_ENTER)
        assert app.state == "pin"
    type_digits(app, PIN)
    key(app, pygame.K_RETURN)
    assert app.state == "pin", "the right PIN must not work while locked"
    assert "60" in app.screen.message or "59" in app.screen.message
    clock.advance(T.pin_lockout)
    type_digits(app, PIN)
    key(app, pygame.K_RETURN)
    assert app.state == "officer"
    assert PIN not in caplog.text and "1111" not in caplog.text  # never logged


def test_without_a_pin_a_citizen_cannot_reach_the_panel(kit, clock):  # noqa: F811
    app = make_app(kit, clock, officer_pin=None)
    app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=app.layout.status.center,
                                        button=1))
    clock.advance(T.long_press + 1)
    frame(app)
    key(app, pygame.K_KP_MULTIPLY)
    for k in (pygame.K_ESCAPE, pygame.K_F4, pygame.K_q, pygame.K_RETURN):
        key(app, k)
    app.handle_event(pygame.event.Event(pygame.QUIT))
    frame(app)
    assert app.state == "scanning" and app.running  # fullscreen: QUIT is ignored


def test_the_officer_key_opens_the_panel_through_the_loop(kit, clock):  # noqa: F811
    app = make_app(kit, clock, officer_pin=None)
    factory = MockFactory()
    with Buttons({"officer": 5, "direction": 6}, on_press=kit.loop.post_button,
                 pin_factory=factory):
        factory.pin(6).drive_low()
        factory.pin(6).drive_high()
        factory.pin(5).drive_low()
        deadline = time.monotonic() + 2
        while kit.loop.events.qsize() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        frame(app)
    assert app.state == "officer"
    assert kit.loop.direction == "out"  # the direction key is the loop's to act on


def test_manual_cccd_entry_records_and_shows_the_result(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    open_panel_with_pin(app, clock)
    tap_button(app, "manual")
    assert app.state == "manual"
    type_digits(app, "00118501234", keypad=True)
    key(app, pygame.K_KP_ENTER)
    assert app.state == "manual" and app.screen.message  # 11 digits: refused on screen
    assert kit.rows() == []
    type_digits(app, "5")
    tap_button(app, "ok")
    assert app.state == "result"
    result = app.screen.result
    assert result.source == "manual"
    row = kit.row(result.checkin_id)
    assert (row["source"], row["kind"]) == ("manual", "cccd")
    assert "001185012345" not in row["display"]
    clock.advance(app.settings.result_seconds + 0.1)
    frame(app)
    assert app.state == "officer"  # back to the panel for the next person


def test_direction_switch_changes_the_next_record(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    open_panel_with_pin(app, clock)
    tap_button(app, "direction")
    assert kit.loop.direction == "out"
    tap_button(app, "close")
    assert app.state == "scanning"
    kit.scan("cccd")
    frame(app)
    assert kit.row(app.screen.result.checkin_id)["direction"] == "out"
    assert app.screen.result.direction == "out"


def test_override_records_the_reason_and_shows_the_new_decision(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    kit.scan("cccd_mismatch")
    frame(app)
    original = app.screen.result
    assert original.decision.outcome is Outcome.CHECK
    open_panel_with_pin(app, clock)
    tap_button(app, "override")
    assert app.state == "override"
    buttons = {b.action: b for b in app.screen.buttons(app)}
    assert not buttons["confirm"].enabled  # nothing chosen yet
    tap_button(app, "outcome:pass")
    tap_button(app, "reason:officer_documents_checked")
    tap_button(app, "confirm")
    assert app.state == "result"
    assert app.screen.result.source == "override"
    assert app.screen.result.decision.outcome is Outcome.PASS
    row = kit.row(app.screen.result.checkin_id)
    assert (row["override_of"], row["original_decision"], row["override_reason"],
            row["decision"]) == (original.checkin_id, "check", "officer_documents_checked",
                                 "pass")
    assert kit.loop.lights()["green"]


def test_a_poster_scanned_after_a_person_does_not_hide_their_decision(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    kit.scan("cccd_mismatch")
    frame(app)
    person = app.screen.result
    kit.scan("venue")
    frame(app)
    assert app.screen.result.checkin_id is None  # the poster was shown, not recorded
    open_panel_with_pin(app, clock)
    tap_button(app, "override")
    assert app.state == "override"
    tap_button(app, "outcome:pass")
    tap_button(app, "reason:officer_documents_checked")
    tap_button(app, "confirm")
    assert kit.row(app.screen.result.checkin_id)["override_of"] == person.checkin_id


def test_language_switch_in_the_panel(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    assert app.t("STOP") == "DỪNG LẠI"
    open_panel_with_pin(app, clock)
    tap_button(app, "language")
    assert app.t.language == "en" and app.t("STOP") == "STOP"
    tap_button(app, "close")
    kit.scan("cccd_mismatch")
    frame(app)
    assert app.t.reason(app.screen.result.decision.reasons[0]).isascii()


def test_the_panel_closes_itself_when_left_open(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    open_panel_with_pin(app, clock)
    clock.advance(T.officer + 1)
    frame(app)
    assert app.state == "scanning"


# --- faults -------------------------------------------------------------------------------------


def test_camera_loss_shows_the_fault_screen_and_the_lights_show_fault(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    kit.feed.ok, kit.feed.message = False, "camera stopped delivering frames"
    frame(app)
    assert app.state == "fault"
    assert kit.signals.pattern is Pattern.FAULT
    assert "camera stopped" in app.screen.technical(app)
    kit.feed.ok, kit.feed.message = True, None
    frame(app)
    assert app.state == "scanning"


def test_disk_low_and_reprovision_are_faults_that_still_let_codes_through(kit, clock,  # noqa: F811
                                                                         tmp_path):
    from offline_queue.disk import DiskWatch

    app = make_app(kit, clock)
    # A real free-space check, with a warning level no disk reaches: the disk is "nearly full".
    kit.loop._disk = DiskWatch(tmp_path, low_below=2**62, monotonic=clock)
    frame(app)
    assert app.state == "fault"
    kit.scan("cccd")
    frame(app)
    assert app.state == "result"  # the record is still durable: show it
    clock.advance(app.settings.result_seconds + 0.1)
    frame(app)
    assert app.state == "fault"


def test_an_exception_shows_the_fault_screen_once_logged_and_recovers(kit, clock, caplog):  # noqa: F811
    app = make_app(kit, clock, fullscreen=False)
    display = pygame.display.set_mode((800, 480))
    failures = {"left": 3}
    real_step = kit.loop.step

    def flaky_step(*a, **kw):
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("decoder thread vanished")
        return real_step(*a, **kw)

    kit.loop.step = flaky_step
    ticks, states = [], []
    stop = threading.Event()

    def on_tick():
        ticks.append(app.state)
        if len(ticks) >= 3:
            stop.set()

    app.draw = _recording(app.draw, states, app)
    with caplog.at_level(logging.ERROR):
        main_loop(app, display, display, False, stop, on_tick)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == \
        ["screen error; showing the fault screen"]
    assert states[:3] == ["fault"] * 3
    assert app.internal_error is None and ticks  # frames completed again: watchdog fed
    assert "Traceback" not in "".join(states)


def _recording(draw, states, app):
    def wrapped(surface):
        states.append(app.state)
        return draw(surface)
    return wrapped


def test_run_ui_opens_a_window_rotated_for_portrait_and_stops(kit):  # noqa: F811
    stop = threading.Event()
    ticks = []

    def on_tick():
        ticks.append(time.monotonic())
        if len(ticks) == 2:
            kit.scan("cccd")
        if len(ticks) >= 10:
            stop.set()

    run_ui(kit.loop, settings=UiSettings.checked(fullscreen=False, width=800, height=480,
                                                 portrait=True, fps=60),
           show_lights=True, stop=stop, on_tick=on_tick)
    assert len(ticks) >= 10
    assert len(kit.rows()) == 1
    pygame.display.init()  # run_ui closed the display; the module fixture expects it open
    pygame.display.set_mode((64, 64))


def test_portrait_touch_maps_to_the_rotated_canvas():
    from kiosk.ui.app import _rotate_pos

    canvas = pygame.Surface((480, 800))
    canvas.fill((0, 0, 0))
    canvas.set_at((100, 700), (255, 0, 0))
    shown = pygame.transform.rotate(canvas, -90)
    assert shown.get_size() == (800, 480)
    (y, x) = [(y, x) for y in range(480) for x in range(800)
              if shown.get_at((x, y))[:3] == (255, 0, 0)][0]
    event = _rotate_pos(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1),
                        (480, 800))
    assert event.pos == (100, 700)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"language": "fr"}, {"width": -1}, {"result_seconds": 0}, {"fps": 0},
    {"officer_pin": "12"}, {"officer_pin": "abcd"}, {"officer_pin": "pbkdf2_sha256$x"},
])
def test_bad_ui_config_names_the_key(bad):
    with pytest.raises(ConfigError, match=r"ui\." + next(iter(bad))):
        UiSettings.checked(**bad)


def test_pin_hash_and_repr_keep_the_pin_secret():
    stored = hash_pin("8642", salt=b"0" * 16, rounds=1000)
    assert pin_matches(stored, "8642") and not pin_matches(stored, "8641")
    assert pin_matches("8642", "8642") and not pin_matches("8642", "864")
    config = UiSettings.checked(officer_pin=stored)
    assert "8642" not in repr(config) and stored not in repr(config)


# --- codes that are not a person's (issue 5) ------------------------------------------------------

WIFI = "WIFI:S:Benh vien Bach Mai;T:WPA;P:khach-2026;;"


def code_frame(payload: str):
    """The camera's view of any QR payload held up in front of the kiosk."""
    import random

    import numpy as np

    from kiosk.testing.samples import background, qr_image

    img = background(random.Random(5))
    code = qr_image(payload, module_px=3)
    img.paste(code, ((640 - code.size[0]) // 2, (480 - code.size[1]) // 2))
    return np.asarray(img, dtype=np.uint8).copy()


def banner_colour(app):
    surface = frame(app)
    banner = app.layout.banner
    return tuple(surface.get_at((banner.centerx, banner.top + 2)))[:3]


@pytest.mark.parametrize(("payload", "kind", "word", "label"), [
    (None, "venue", "KHÔNG PHẢI MÃ CÁ NHÂN", "Mã QR địa điểm"),  # the demo's venue poster
    (WIFI, "venue", "KHÔNG PHẢI MÃ CÁ NHÂN", "Mã QR khác"),
    ("https://example.com/menu", "venue", "KHÔNG PHẢI MÃ CÁ NHÂN", "Mã QR khác"),
    ("PHIEU-KHAM-0042/2026 quay 3", "unknown", "KHÔNG NHẬN RA MÃ", None),
])
def test_a_code_that_is_not_a_persons_gets_its_own_neutral_result(kit, clock, payload, kind,  # noqa: F811
                                                                   word, label):
    from kiosk.ui.artwork import COLOURS, NOT_PERSON_COLOUR
    from kiosk.ui.screens import not_a_person

    app = make_app(kit, clock)
    if payload is None:
        assert kit.scan("venue") == 1
    else:
        assert kit.feed.show(code_frame(payload)) == 1
    assert banner_colour(app) == NOT_PERSON_COLOUR
    assert NOT_PERSON_COLOUR not in COLOURS.values()
    assert app.state == "result"
    result = app.screen.result
    assert not_a_person(result) == kind and result.checkin_id is None
    _colour, _text, icon_file, word_id = app.screen.look()
    assert app.t(word_id) == word and icon_file.endswith("icon-not-person.png")
    lines = app.screen.lines(app)
    assert lines[0] == "Vui lòng đưa mã QR cá nhân"
    assert lines[1:] == ([label] if label else [])
    # The loop's signal is unchanged: amber with two beeps; nothing is recorded.
    lights = kit.loop.lights()
    assert lights["amber"] and not lights["green"] and not lights["red"]
    assert kit.signals.pattern is Pattern.CHECK
    assert kit.rows() == []


def test_a_persons_amber_result_keeps_wait_for_check(kit, clock):  # noqa: F811
    from kiosk.ui.artwork import COLOURS
    from kiosk.ui.screens import not_a_person

    app = make_app(kit, clock, language="en")
    kit.scan("cccd_mismatch")
    assert banner_colour(app) == COLOURS[Outcome.CHECK]
    assert not_a_person(app.screen.result) is None
    assert app.t(app.screen.look()[3]) == "WAIT FOR CHECK"
    assert "Chip ID card (CCCD)  ·  ENTRY" in app.screen.lines(app)


def test_only_not_a_person_reasons_make_the_neutral_result():
    """An unrecorded unknown code whose decision failed still asks for the officer."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from kiosk.domain.credentials import recognise
    from kiosk.domain.model import Decision
    from kiosk.runtime.events import ScanResult
    from kiosk.ui.screens import not_a_person

    unknown = ScanResult(datetime.now(UTC), recognise("hello"),
                         Decision(Outcome.CHECK, ("unrecognised",)), None, "in", "scan")
    assert not_a_person(unknown) == "unknown"
    assert not_a_person(replace(unknown, decision=Decision(
        Outcome.CHECK, ("unrecognised", "internal_error")))) is None
    assert not_a_person(replace(unknown, decision=Decision(Outcome.CHECK, ()))) is None
    assert not_a_person(replace(unknown, source="manual")) is None
    assert not_a_person(replace(unknown, credential=recognise("https://e.coronawarn.app?v=1"),
                                decision=Decision(Outcome.CHECK, ("not_a_person",)))) == "venue"


def test_kind_labels_tell_venue_posters_from_other_codes():
    from kiosk.domain.credentials import recognise
    from kiosk.ui.screens import kind_label

    venues = ["https://tokhaiyte.vn/?page=Declaration&venue=1", "https://e.coronawarn.app?v=1#x",
              "NZCOVIDTRACER:eyJnbG4iOiI5In0="]
    others = [WIFI, "http://example.com/menu", "MECARD:N:An;TEL:0901234567;;", "TEL:0901234567"]
    assert {kind_label(recognise(p)) for p in venues} == {"Venue QR code"}
    assert {kind_label(recognise(p)) for p in others} == {"Other QR code"}
    assert kind_label(recognise("hello")) == "Unrecognised code"
    assert kind_label(recognise("001185012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|"
                                "Hà Nội|01012021")) == "Chip ID card (CCCD)"


# --- the officer panel: overridden rows, disabled entries, button sizes ---------------------------


def test_an_overridden_row_is_marked_beside_its_override(kit, clock):  # noqa: F811
    from kiosk.ui.artwork import COLOURS
    from kiosk.ui.screens import CHANGED_TAG, RECENT_ROWS, REPLACED, overridden_ids

    app = make_app(kit, clock)
    kit.scan("cccd")
    frame(app)
    kit.scan("cccd_mismatch", seed=2)
    frame(app)
    original = app.screen.result
    open_panel_with_pin(app, clock)
    tap_button(app, "override")
    tap_button(app, "outcome:pass")
    tap_button(app, "reason:officer_documents_checked")
    tap_button(app, "confirm")
    override = app.screen.result
    clock.advance(app.settings.result_seconds + 0.1)
    frame(app)
    assert app.state == "officer"
    ids = [r["id"] for r in app.screen.recent]
    assert ids[:3] == [override.checkin_id, original.checkin_id, ids[2]]
    assert overridden_ids(app.screen.recent) == {original.checkin_id}
    # What is drawn: each row's colour bar (newest first) and the tag on the replaced one.
    surface = frame(app)
    area = app.screen.areas(app)[2]
    head_h = int(app.layout.unit * 1.4)
    rows = app.layout.rows(pygame.Rect(area.left, area.top + head_h, area.width,
                                       area.height - head_h), [1.0] * RECENT_ROWS, gap=2)
    bars = [tuple(surface.get_at((r.left + 1, r.centery)))[:3] for r in rows[:3]]
    assert bars == [COLOURS[Outcome.PASS], REPLACED, COLOURS[Outcome.PASS]]
    assert app.t(CHANGED_TAG) == "đã sửa"
    from kiosk.ui.screens import WARN

    def warn_pixels(row):
        return sum(tuple(surface.get_at((x, y)))[:3] == WARN
                   for x in range(row.left, row.right) for y in range(row.top, row.bottom))

    assert warn_pixels(rows[1]) > 20 and warn_pixels(rows[0]) == warn_pixels(rows[2]) == 0


def test_tapping_a_disabled_entry_says_why(kit, clock):  # noqa: F811
    from kiosk.ui.screens import WARN

    app = make_app(kit, clock)  # no config file, no self-test runner: as in the demo
    open_panel_with_pin(app, clock)
    bar = pygame.Rect(0, 0, app.layout.width, int(app.layout.unit * 2.2))

    def title_is_warning():
        surface = frame(app)
        return any(tuple(surface.get_at((x, y)))[:3] == WARN
                   for x in range(bar.left, bar.right, 2) for y in range(bar.top, bar.bottom))

    assert not title_is_warning()
    buttons = {b.action: b for b in app.screen.buttons(app)}
    for action, text in (("provision", "Không có tệp cấu hình (bản demo)"),
                         ("selftest", "Máy này không có chức năng này"),
                         ("override", "Chưa có lượt ra vào nào để sửa")):
        assert not buttons[action].enabled
        tap(app, buttons[action].rect.center)
        assert app.state == "officer" and app.t(app.screen.notice) == text
        assert title_is_warning()
    clock.advance(T.disabled_notice + 0.1)
    assert not title_is_warning()
    tap(app, buttons["selftest"].rect.center)
    tap_button(app, "direction")  # any other action clears the reason at once
    assert app.screen.notice is None and not title_is_warning()


def test_neighbouring_buttons_have_one_text_size(kit, clock):  # noqa: F811
    from kiosk.ui.screens import draw_buttons

    app = make_app(kit, clock)
    kit.scan("cccd_mismatch")
    frame(app)
    open_panel_with_pin(app, clock)
    tap_button(app, "override")
    tap_button(app, "outcome:stop")  # the selected outcome is drawn larger
    surface = pygame.Surface((800, 480))
    sizes = draw_buttons(app, surface, app.screen.buttons(app))
    assert app.t("Cancel") == "Hủy"  # three letters: it used to be drawn 1.8× as big
    assert sizes["cancel"] == sizes["confirm"]
    assert sizes["outcome:pass"] == sizes["outcome:check"] == sizes["outcome:stop"]
    tap_button(app, "cancel")
    tap_button(app, "manual")
    sizes = draw_buttons(app, surface, app.screen.buttons(app))
    assert sizes["back"] == sizes["ok"] and sizes["1"] > sizes["ok"]  # digits stay big


def test_a_code_that_is_not_a_persons_is_not_announced_as_wait_for_check(kit, clock):  # noqa: F811
    from kiosk.ui.sound import Sound, voice_dir

    def queued() -> int:
        return sum(pygame.mixer.Channel(i).get_queue() is not None
                   for i in range(pygame.mixer.get_num_channels()))

    with Sound(enabled=True, voice=True, voice_dir=voice_dir()) as sound:
        if not sound.available:
            pytest.skip("SDL could not open even the dummy audio driver here")
        app = KioskApp(kit.loop, UiSettings.checked(officer_pin=PIN), (800, 480), clock=clock,
                       sound=sound, tz=timezone(timedelta(hours=7)))
        kit.scan("venue")
        frame(app)
        assert app.state == "result" and pygame.mixer.get_busy() and queued() == 0
        pygame.mixer.stop()
        kit.scan("cccd_mismatch", seed=3)
        frame(app)
        assert app.screen.result.checkin_id is not None and queued() == 1
