"""Issue 13 on the screen: a person declared by an officer (item 1), the venue QR and the
hotline on the idle screen (item 4), named officers and the PIN lock-out (item 5), and what
the status document found on the result screen.

Real pygame events on the dummy driver over the real scan loop and store (``test_ui_loop``),
a controllable clock; screenshots compared with references at 800×480 and portrait.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pygame
import pytest
import zxingcpp
from test_ui_app import PIN, Clock, T, frame, tap, tap_button
from test_ui_loop import WATCHLISTED_KEY, kit  # noqa: F401 - the fixture
from test_ui_screens import ICT, WALL, check_against_reference, health

from kiosk.config import Config, UiSettings
from kiosk.domain.declaration import Declaration
from kiosk.domain.model import Decision, Outcome
from kiosk.domain.officers import OFFICER_KEY, SHARED_PIN, build_officers
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.watchlist import Watchlist
from kiosk.errors import ConfigError
from kiosk.runtime.events import Declared, ScanResult
from kiosk.ui.app import KioskApp
from kiosk.ui.declare import key_buttons, keyboard_rows
from offline_queue.documents import Document
from offline_queue.outbox import Outbox

pytestmark = pytest.mark.usefixtures("pygame_display")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def out_dir(test_output):
    path = test_output / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path

VENUE = "https://tokhaiyte.vn/?page=venue&id=HN-0142"
QUESTIONS = [
    {"id": "fever", "vi": "Có sốt, ho, khó thở không?", "en": "Fever, cough or short of breath?"},
    {"id": "contact", "vi": "Có tiếp xúc người nhiễm trong 14 ngày?",
     "en": "Close contact with a case in 14 days?"},
]
OFFICERS = [("hn-017", "Nguyễn Văn An", "officer", "135790"),
            ("hn-021", "Lê Thị Bình", "supervisor", "864200")]
# A 7" 800x480 panel shows 154.08 x 85.92 mm: 5.19 px/mm across, 5.59 px/mm down
# (portrait: the other way round).  Gloves need keys of 9 mm at least.
PANEL_MM = (154.08, 85.92)
MIN_KEY_MM = 9.0


def with_questions(kit, profile: str = "hospital", **extra):  # noqa: F811
    """The loop's policy with the province's health questions (a watchlist as in the kit)."""
    now = datetime.now(UTC)
    probe = Watchlist(salt=b"ui-tests", entries={}, issued_at=now, expires_at=now)
    watchlist = Watchlist(salt=b"ui-tests", entries={probe.digest(WATCHLISTED_KEY):
                                                      date(2099, 1, 1)},
                          issued_at=now - timedelta(hours=1), expires_at=now + timedelta(days=1))
    kit.loop.checker = Checker(policy=Policy.load(profile, {"health_questions": QUESTIONS,
                                                            **extra}), watchlist=watchlist)


def publish_officers(kit, rows=OFFICERS):  # noqa: F811
    """The officer list as the sync worker stores it."""
    body = json.dumps(build_officers(rows)).encode()
    at = datetime.now(UTC)
    with Outbox(kit.db_path) as outbox:
        outbox.apply_documents([Document("officers", body, f"officers-{at:%H%M%S%f}", at, None)],
                               [], at)


def make_app(kit, clock, size=(800, 480), **config):  # noqa: F811
    config.setdefault("officer_pin", PIN)
    app = KioskApp(kit.loop, UiSettings.checked(**config), size, clock=clock, tz=ICT)
    clock.advance(1.5)
    app.update()
    assert app.state == "scanning"
    return app


def open_panel(app, clock, pin=PIN):
    app.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=app.layout.status.center,
                                        button=1))
    clock.advance(T.long_press + 0.1)
    frame(app)
    assert app.state == "pin"
    for d in pin:
        tap_button(app, d)
    tap_button(app, "ok")


def type_keys(app, spec: str) -> None:
    """Type on the open keyboard: letters as their keys, ``+mark`` for a mark key (``+mu``,
    ``+nga``), ``_`` for the space bar, then Done."""
    for token in spec.split():
        if token.startswith("+"):
            tap_button(app, "mark:" + token[1:])
        elif token == "_":
            tap_button(app, "space")
        else:
            for char in token:
                tap_button(app, char if app.screen.editing in ("birth_year", "phone")
                           else "key:" + char.lower())
    tap_button(app, "ok" if app.screen.editing in ("birth_year", "phone") else "done")


def fill_form(app, *, name="nguyen +mu +nga _ thi +nang _ hong +mu +huyen",
              birth_year="1958", phone="0912345678", document="001158012345",
              origin="tan +mu _ lap +mu +nang _ đan _ phuong +moc +nang",
              destination="ba _ dinh +huyen _ ha _ noi +mu +nang", answers=(False, False)):
    tap_button(app, "edit:name")
    type_keys(app, name)
    tap_button(app, "edit:birth_year")
    type_keys(app, birth_year)
    tap_button(app, "choose:sex:female")
    tap_button(app, "edit:phone")
    type_keys(app, phone)
    if document:
        tap_button(app, "edit:document")
        type_keys(app, document)
    tap_button(app, "next")
    tap_button(app, "edit:origin")
    type_keys(app, origin)
    tap_button(app, "edit:destination")
    type_keys(app, destination)
    for q, answer in zip(app.screen.questions, answers, strict=False):
        tap_button(app, f"choose:question:{q.id}:{answer}")


# --- item 1: declared by an officer ---------------------------------------------------------


def test_an_officer_declares_a_person_by_taps_and_it_is_recorded(kit, clock):  # noqa: F811
    with_questions(kit)
    publish_officers(kit)
    app = make_app(kit, clock)
    before = app.loop.counts_today()["total"]
    open_panel(app, clock, pin="135790")
    assert (app.state, app.officer_id) == ("officer", "hn-017")
    tap_button(app, "declare")
    assert app.state == "declare"
    fill_form(app)
    assert app.screen.values["name"] == "Nguyễn Thị Hồng"
    assert app.screen.values["origin"] == "Tân Lập Đan Phượng"
    tap_button(app, "save")
    assert app.state == "result"
    result = app.last_result
    assert (result.source, result.decision.outcome) == ("declared", Outcome.PASS)
    row = kit.row(result.checkin_id)
    display = json.loads(row["display"])
    assert row["source"] == "declared" and row["kind"] == "cccd"
    # The number is never on disk in clear: sealed to the central's key, or held in RAM
    # until the key arrives (docs/privacy.md); the central opens it.
    assert row["person_key"] is None and row["identity"] in ("sealed", "waiting")
    assert display == {"name": "Nguyễn T*** H*", "id": "********2345", "birth_year": "1958"}
    assert row["officer"] == "hn-017"  # a field of its own (it was display["officer"])
    assert "Cán bộ khai báo hộ" in " ".join(app.screen.lines(app))
    assert app.loop.counts_today()["total"] == before + 1  # today's figures count it
    frame(app)
    tap(app, app.layout.body.center)
    assert app.state == "officer"  # the officer's own action returns to the panel


def test_a_yes_to_a_health_question_sends_the_person_to_check(kit, clock):  # noqa: F811
    with_questions(kit)
    app = make_app(kit, clock)
    open_panel(app, clock)
    tap_button(app, "declare")
    fill_form(app, answers=(True, False))
    tap_button(app, "save")
    result = app.last_result
    assert (result.decision.outcome, result.decision.reasons) == (Outcome.CHECK,
                                                                   ("health_answer_yes",))
    # Opened with the configured PIN: no officer list, the record says so.
    assert kit.row(result.checkin_id)["officer"] == SHARED_PIN


def test_a_person_with_no_document_gets_what_the_border_policy_says(kit):  # noqa: F811
    """No number: nothing to find in the status document, so the border's rules give check
    (never a silent pass), and the record carries no identity."""
    with_questions(kit, "border", watchlist=False)
    person = Declaration("Hà Văn Tư", 1949, "male", origin="Xã Yên Bài", destination="Hà Nội",
                         answers=(("fever", False), ("contact", False)), officer="hn-021")
    kit.loop.events.put(Declared(person))  # the typed input, as any thread may post it
    (result,) = [r for r in kit.loop.step() if isinstance(r, ScanResult)]
    assert result.decision.outcome is Outcome.CHECK
    assert "status_missing" in result.decision.reasons
    row = kit.row(result.checkin_id)
    assert row["person_key"] is None and row["source"] == "declared"
    assert json.loads(row["display"]) == {"name": "Hà V*** T*", "birth_year": "1949"}
    assert row["officer"] == "hn-021"


@pytest.mark.parametrize(("field", "typed", "message"), [
    ("birth_year", "2031", "Năm sinh: ở tương lai"),
    ("phone", "0123456", "Điện thoại: không phải số điện thoại Việt Nam"),
    ("name", "\x07\x1b[2J", "Họ và tên: có ký tự không phải chữ"),
])
def test_bad_input_is_refused_with_the_field_named(kit, clock, field, typed, message):  # noqa: F811
    app = make_app(kit, clock)
    open_panel(app, clock)
    tap_button(app, "declare")
    fill_form(app)
    rows = len(kit.rows())
    tap_button(app, "back")
    if app.screen.page != app.screen.page_of(field):
        tap_button(app, "next")
    tap_button(app, "edit:" + field)
    app.screen.draft = ""
    # A USB keyboard's text (the on-screen keys cannot make a control character).
    app.handle_event(pygame.event.Event(pygame.TEXTINPUT, text=typed))
    app.handle_event(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RETURN, mod=0, unicode=""))
    tap_button(app, "next")
    tap_button(app, "save")
    assert app.state == "declare"
    assert app.screen.problem_text(app).startswith(message)
    assert app.screen.page == app.screen.page_of(field)  # the page that holds it is shown
    assert len(kit.rows()) == rows  # nothing recorded
    frame(app)  # and it draws


def test_a_form_left_half_filled_is_discarded_with_nothing_recorded(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    open_panel(app, clock)
    tap_button(app, "declare")
    tap_button(app, "edit:name")
    type_keys(app, "tran")
    rows = len(kit.rows())
    clock.advance(T.declare - 1)
    frame(app)
    assert app.state == "declare"
    clock.advance(2)
    frame(app)
    assert app.state == "scanning" and app.officer_id == ""
    assert len(kit.rows()) == rows
    open_panel(app, clock)
    tap_button(app, "declare")
    assert app.screen.values == {"answers": {}}  # a new, empty form


def test_cancel_discards_the_form(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    open_panel(app, clock)
    tap_button(app, "declare")
    fill_form(app)
    tap_button(app, "back")
    tap_button(app, "cancel")
    assert app.state == "officer"
    assert kit.rows() == []


@pytest.mark.parametrize("size", [(800, 480), (480, 800)])
def test_every_key_and_form_button_is_gloves_sized(kit, clock, size):  # noqa: F811
    with_questions(kit)
    app = make_app(kit, clock, size)
    portrait = size[1] > size[0]
    px_per_mm = ((size[0] / PANEL_MM[1], size[1] / PANEL_MM[0]) if portrait
                 else (size[0] / PANEL_MM[0], size[1] / PANEL_MM[1]))
    open_panel(app, clock)
    tap_button(app, "declare")
    screen = app.screen
    checked = 0
    for page in range(len(screen.pages())):
        screen.page = page
        for b in screen.buttons(app):
            checked += 1
            assert b.rect.width / px_per_mm[0] >= MIN_KEY_MM, (page, b.action, b.rect)
            assert b.rect.height / px_per_mm[1] >= MIN_KEY_MM, (page, b.action, b.rect)
    for field in ("name", "origin", "document", "phone"):
        screen.open_editor(field)
        for b in screen.buttons(app):
            checked += 1
            assert b.rect.width / px_per_mm[0] >= MIN_KEY_MM, (field, b.action, b.rect)
            assert b.rect.height / px_per_mm[1] >= MIN_KEY_MM, (field, b.action, b.rect)
        screen.close_editor()
    assert checked > 150


def test_the_keyboard_has_no_key_twice_and_every_letter():
    for mode in ("text", "place", "code"):
        for portrait in (False, True):
            buttons = key_buttons(pygame.Rect(0, 0, 800, 400), keyboard_rows(mode, portrait), 4)
            actions = [b.action for b in buttons]
            assert len(actions) == len(set(actions)), (mode, portrait)
            letters = {a[4:] for a in actions if a.startswith("key:") and a[4:].isalpha()}
            assert set("abcdefghijklmnopqrstuvwxyz") <= letters
            assert ("đ" in letters) == (mode != "code")
            assert ("mark:nga" in actions) == (mode != "code")


# --- item 5: named officers and the PIN -----------------------------------------------------


def test_the_pin_names_the_officer_and_the_override_records_them(kit, clock):  # noqa: F811
    publish_officers(kit)
    app = make_app(kit, clock)
    assert kit.scan("cccd") == 1
    frame(app)
    clock.advance(app.settings.result_seconds + 0.1)
    frame(app)
    open_panel(app, clock, pin=PIN)  # the configured PIN no longer opens: a list is in force
    assert app.state == "pin"
    for d in "864200":
        tap_button(app, d)
    tap_button(app, "ok")
    assert (app.state, app.officer_id, app.officer_name) == ("officer", "hn-021", "Lê Thị Bình")
    tap_button(app, "override")
    tap_button(app, "outcome:stop")
    tap_button(app, "reason:officer_refused")
    tap_button(app, "confirm")
    row = kit.row(app.last_result.checkin_id)
    assert row["source"] == "scan" and row["override_reason"] == "officer_refused"
    assert row["officer"] == "hn-021"
    tap(app, app.layout.body.center)
    tap_button(app, "close")
    assert app.officer_id == ""  # forgotten once the kiosk is back with the citizens


def test_without_a_list_the_config_pin_and_the_key_open_the_panel(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    open_panel(app, clock)
    assert (app.state, app.officer_id) == ("officer", SHARED_PIN)
    tap_button(app, "close")
    kit.loop.post_button("officer")
    frame(app)
    assert (app.state, app.officer_id) == ("officer", OFFICER_KEY)


def test_a_bad_officer_list_is_not_applied_and_the_config_pin_stays(kit, clock, caplog):  # noqa: F811
    at = datetime.now(UTC)
    with Outbox(kit.db_path) as outbox:
        outbox.apply_documents([Document("officers", b'{"version": 1, "officers": []}', "bad",
                                         at, None)], [], at)
    app = make_app(kit, clock)
    open_panel(app, clock)
    assert (app.state, app.officer_id) == ("officer", SHARED_PIN)
    assert "officer list is not applied" in caplog.text


def test_wrong_pins_lock_the_pad_with_a_visible_countdown(kit, clock):  # noqa: F811
    publish_officers(kit)
    app = make_app(kit, clock)
    open_panel(app, clock, pin="000000")
    for _ in range(T.pin_attempts - 1):
        assert app.state == "pin"
        for d in "111111":
            tap_button(app, d)
        tap_button(app, "ok")
    frame(app)
    assert app.screen.message == "Nhập sai quá nhiều lần. Thử lại sau 60 giây."
    assert not any(b.enabled for b in app.screen.buttons(app) if b.action != "cancel")
    clock.advance(25)
    frame(app)
    assert app.screen.message.endswith("sau 35 giây.")
    assert app.state == "pin"  # the pad stays while the countdown runs
    clock.advance(35)
    frame(app)
    assert app.screen.message is None
    for d in "135790":
        tap_button(app, d)
    tap_button(app, "ok")
    assert (app.state, app.officer_id) == ("officer", "hn-017")


# --- item 4: the venue QR and the hotline ---------------------------------------------------


@pytest.mark.parametrize("size", [(800, 480), (480, 800)])
def test_the_idle_screen_shows_the_checkpoints_venue_qr_and_it_scans(kit, clock, size):  # noqa: F811
    app = make_app(kit, clock, size, venue_qr=VENUE)
    app.go("idle")
    surface = frame(app)
    grey = pygame.surfarray.array3d(surface).transpose(1, 0, 2).mean(axis=2).astype(np.uint8)
    found = [r.text for r in zxingcpp.read_barcodes(grey)]
    assert VENUE in found


@pytest.mark.parametrize("bad", ["http://tokhaiyte.vn/?id=1", "https://example.com/venue",
                                 "WIFI:S:x;;", "https://tokhaiyte.vn/ x", "https://tokhaiyte.vn/"
                                 + "a" * 600])
def test_a_venue_qr_that_is_no_declaration_venue_is_refused(bad):
    with pytest.raises(ConfigError, match="ui.venue_qr"):
        UiSettings.checked(venue_qr=bad)
    cfg = Config().replace(ui={"venue_qr": bad})
    from kiosk.config import value_problems

    assert any("ui.venue_qr" in str(p) for p in value_problems(cfg))


# --- the result screen: what the status document found --------------------------------------


def test_the_result_shows_the_masked_facts_found(kit, clock):  # noqa: F811
    app = make_app(kit, clock)
    assert kit.scan("cccd") == 1
    frame(app)
    shown = app.last_result
    found = {"declared_on": "2026-11-21", "doses": 2, "last_dose_month": "2022-03",
             "negative_test": "pcr 2026-11-22", "recovered_month": "2022-01"}
    app.show_result(ScanResult(shown.at, shown.credential,
                               Decision(Outcome.PASS, (), found=found), shown.checkin_id,
                               shown.direction, shown.source))
    lines = app.screen.lines(app)
    assert ("Đã khai báo 21/11/2026  ·  2 mũi vắc-xin  ·  mũi cuối 03/2022  ·  "
            "Xét nghiệm âm tính PCR 22/11/2026  ·  Khỏi bệnh 01/2022") in lines
    app.show_result(ScanResult(shown.at, shown.credential,
                               Decision(Outcome.CHECK, ("declaration_missing",), found={}),
                               shown.checkin_id, shown.direction, shown.source))
    assert "Không có trong danh sách tình trạng" in app.screen.lines(app)


# --- screenshots ----------------------------------------------------------------------------


class Fixed:
    def __call__(self) -> float:
        return 5000.0


def shot(kit, size, setup, language="vi"):  # noqa: F811
    app = KioskApp(kit.loop, UiSettings.checked(language=language, officer_pin=PIN,
                                                venue_qr=VENUE),
                   size, show_lights=True, clock=Fixed(), now=lambda: WALL, tz=ICT)
    app.health = health()
    setup(app)
    surface = pygame.Surface(size)
    app.draw(surface)
    return surface


def _form(app, page=0, editing=None, draft=None, problem=None):
    app.go("declare")
    s = app.screen
    s.values.update(name="Nguyễn Thị Hồng Ngọc", birth_year="1958", sex="female",
                    phone="0912345678", origin="Tân Lập, Đan Phượng", destination="Ba Đình")
    s.values["answers"]["fever"] = False
    s.page = page
    if problem:
        s.values["birth_year"] = "2031"
        s.save(app)
    if editing:
        s.open_editor(editing)
        if draft is not None:
            s.draft = draft


SHOTS = {
    "declare-person": lambda app: _form(app),
    "declare-trip": lambda app: _form(app, page=1),
    "declare-keyboard": lambda app: _form(app, editing="name"),
    "declare-place": lambda app: _form(app, editing="origin", draft="Phường 12, Q"),
    "declare-document": lambda app: _form(app, editing="document", draft="C123"),
    "declare-digits": lambda app: _form(app, editing="phone"),
    "declare-refused": lambda app: _form(app, problem=True),
}


@pytest.mark.parametrize("size", [(800, 480), (480, 800)])
def test_declaration_screens_match_their_references(kit, size, out_dir):  # noqa: F811
    with_questions(kit)
    for name, setup in SHOTS.items():
        check_against_reference(shot(kit, size, setup), f"{name}-{size[0]}x{size[1]}", out_dir)
    check_against_reference(shot(kit, size, SHOTS["declare-trip"], "en"),
                            f"en-declare-trip-{size[0]}x{size[1]}", out_dir)
