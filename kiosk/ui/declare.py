"""The officer's declaration form: a person with no code or no document, typed in on the kiosk.

Reached from the officer panel ("Declare a person").  Pages of gloves-sized rows (name, birth
year, sex, phone, document number; where from, where to; the province's yes/no health
questions); a tap on a text field opens the Vietnamese keyboard (:class:`Keyboard`, letters
then marks: ``kiosk.ui.vietnamese``), a tap on a number field the keypad.  "Save" checks every
field (``kiosk.domain.declaration.check``): a refused one is named in the title bar, framed in
red and its page shown; a good form goes to the scan loop (``ScanLoop.declare``), which
decides, records (source ``declared``, the officer's id) and signals like a scan; the result
shows and returns to the panel.  A form left alone for ``Timeouts.declare`` seconds is
discarded: nothing is recorded, the kiosk goes back to the citizens' screen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pygame

from kiosk.domain.declaration import FieldError, check
from kiosk.domain.watchlist import local_date
from kiosk.errors import KioskError
from kiosk.ui import vietnamese as vn
from kiosk.ui.i18n import _
from kiosk.ui.machine import BG, Screen
from kiosk.ui.screens import BAD, MUTED, WARN, draw_buttons, title_bar
from kiosk.ui.text import blit_text
from kiosk.ui.widgets import ACCENT, BUTTON, DANGER, Button, hit, keypad_buttons

if TYPE_CHECKING:
    from kiosk.ui.app import KioskApp

log = logging.getLogger(__name__)

FIELD_BG = (255, 255, 255)
FIELD_TEXT = (10, 10, 10)
CHOSEN = (22, 122, 52)
MARK = (70, 60, 110)
DELETE = (90, 70, 60)

# The fields, how each is typed, and its label.
TEXT, PLACE, DIGITS, CODE, CHOICE = "text", "place", "digits", "code", "choice"
FIELDS: dict[str, tuple[str, str, int]] = {  # name: (input, label, max length)
    "name": (TEXT, _("Full name"), 80),
    "birth_year": (DIGITS, _("Birth year"), 4),
    "sex": (CHOICE, _("Sex"), 0),
    "phone": (DIGITS, _("Phone"), 11),
    "document": (CODE, _("CCCD / CMND / passport (if any)"), 16),
    "origin": (PLACE, _("Coming from (commune, district)"), 80),
    "destination": (PLACE, _("Going to (commune, district)"), 80),
}
PERSON_PAGE = ("name", "birth_year", "sex", "phone", "document")
ROWS_PER_PAGE = 5  # at 800x480 each row is then about 55 px (10 mm) high
SEXES = {"male": _("Male"), "female": _("Female")}
YES_NO = {True: _("Yes"), False: _("No")}
# What the screen says about a refused field (the codes of kiosk.domain.declaration.PROBLEMS).
PROBLEMS: dict[str, str] = {
    "empty": _("must be filled in"),
    "unsafe": _("holds characters that are not letters; type it again"),
    "too_long": _("is too long"),
    "not_letters": _("may hold letters only"),
    "not_year": _("must be a year of four digits"),
    "future": _("is in the future"),
    "too_old": _("is before 1900"),
    "not_phone": _("is not a Vietnamese phone number (10 digits from 03, 05, 07, 08, 09)"),
    "not_document": _("is not a CCCD (12 digits), CMND (9 digits) or passport number"),
    "not_chosen": _("choose one"),
    "unanswered": _("answer yes or no"),
}

# --- the keyboard ---------------------------------------------------------------------------

# Landscape: QWERTY, the layout officers know from their phones (10 keys across: 14 mm each
# on a 7" 800x480 panel).  Portrait: the Vietnamese alphabet in order, 7 keys across (11 mm).
QWERTY = ("qwertyuiop", "asdfghjklđ", "zxcvbnm")
ALPHABET = ("abcdđeg", "hiklmno", "pqrstuv", "xyfjwz")
DIGIT_ROWS = {False: ("1234567890",), True: ("12345", "67890")}


@dataclass(frozen=True)
class Key:
    label: str
    action: str
    weight: float = 1.0
    colour: tuple[int, int, int] = BUTTON


Row = tuple[bool, list[Key]]  # (stretched to the full width, its keys)


def keyboard_rows(mode: str, portrait: bool) -> list[Row]:
    """The keys, row by row: digits (documents), letters, the marks (text only), then
    space / delete / done.  Letter and digit rows share one grid (keys line up); the marks
    and the last row are stretched across."""
    rows: list[Row] = []
    if mode in (CODE, PLACE):  # "Phường 12", "C1234567"
        rows += [(False, [Key(d, "key:" + d) for d in row]) for row in DIGIT_ROWS[portrait]]
    letters = ALPHABET if portrait else QWERTY
    for row in letters:
        if mode == CODE:  # a passport number is in Latin capitals
            rows.append((False, [Key(c.upper(), "key:" + c) for c in row if c != "đ"]))
        else:
            rows.append((False, [Key(c, "key:" + c) for c in row]))
    rows[-1][1].append(Key(_("Delete"), "back", 1.0 if portrait else 3.0, DELETE))
    if mode in (TEXT, PLACE):
        rows.append((True, [Key(vn.MARK_LABELS[m], "mark:" + m, colour=MARK)
                            for m in vn.MARKS]))
        rows.append((True, [Key("-", "key:-"), Key(",", "key:,"),
                            Key(_("Space"), "space", 3.0), Key(_("Done"), "done", 3.0, ACCENT)]))
    else:
        rows.append((True, [Key(_("Done"), "done", 1.0, ACCENT)]))
    return rows


def key_buttons(area: pygame.Rect, rows: list[Row], gap: int,
                translate: Any = lambda s: s) -> list[Button]:
    """The keys laid out in ``area``: rows of equal height; grid rows in columns as wide as
    the widest grid row allows (centred), stretched rows across the whole width."""
    n = len(rows)
    height = (area.height - gap * (n - 1)) // n
    columns = max(sum(k.weight for k in keys) for stretch, keys in rows if not stretch)
    grid_unit = (area.width - gap * (columns - 1)) / columns
    out = []
    for r, (stretch, keys) in enumerate(rows):
        total = sum(k.weight for k in keys)
        unit = (area.width - gap * (len(keys) - 1)) / total if stretch else grid_unit
        widths = [k.weight * unit + (0 if stretch else gap * (k.weight - 1)) for k in keys]
        x = area.left + (area.width - sum(widths) - gap * (len(keys) - 1)) / 2
        y = area.top + r * (height + gap)
        for key, w in zip(keys, widths, strict=True):
            rect = pygame.Rect(round(x), y, round(w), height)
            label = translate(key.label) if len(key.label) > 1 else key.label
            out.append(Button(rect, label, key.action, colour=key.colour))
            x += w + gap
    return out


# --- the form -------------------------------------------------------------------------------


class Declare(Screen):
    """The declaration form and its keyboards (one screen: the form's values live here and
    are dropped when it is left)."""

    name = "declare"
    audience = "officer"

    def enter(self, app: KioskApp) -> None:
        self.values: dict[str, Any] = {"answers": {}}
        self.page = 0
        self.editing: str | None = None
        self.draft = ""
        self.problem: tuple[str, str] | None = None  # (field, code)
        self.notice: str | None = None
        policy = getattr(app.loop.checker, "policy", None)
        self.questions = tuple(getattr(policy, "health_questions", ()) or ())

    def deadline(self, app: KioskApp) -> float | None:
        return app.last_activity + app.timeouts.declare

    def expired(self, app: KioskApp) -> None:
        log.info("declaration form discarded after inactivity; nothing recorded")
        app.home()

    # -- pages ----------------------------------------------------------------------------

    def pages(self) -> list[tuple[str, ...]]:
        rest = ["origin", "destination", *("question:" + q.id for q in self.questions)]
        return [PERSON_PAGE] + [tuple(rest[i:i + ROWS_PER_PAGE - 1])
                                for i in range(0, len(rest), ROWS_PER_PAGE - 1)]

    def page_of(self, field: str) -> int:
        return next((i for i, page in enumerate(self.pages()) if field in page), 0)

    def label(self, app: KioskApp, field: str) -> str:
        if field.startswith("question:"):
            qid = field.split(":", 1)[1]
            q = next(q for q in self.questions if q.id == qid)
            return str(q.vi if app.t.language == "vi" else q.en)
        return app.t(FIELDS[field][1])

    def body(self, app: KioskApp) -> pygame.Rect:
        lay = app.layout
        top = int(lay.unit * 2.2)
        return pygame.Rect(lay.pad, top + lay.pad, lay.width - 2 * lay.pad,
                           lay.body.bottom - top - 2 * lay.pad)

    def form_buttons(self, app: KioskApp) -> list[Button]:
        t = app.t
        lay = app.layout
        page = self.pages()[self.page]
        rows = lay.rows(self.body(app), [1.0] * ROWS_PER_PAGE + [1.0],
                        gap=max(4, lay.pad // 2))
        out: list[Button] = []
        for field, row in zip(page, rows, strict=False):
            label_area, value_area = lay.columns(row, [1.0, 1.3] if lay.portrait else [1.0, 1.6])
            if field == "sex" or field.startswith("question:"):
                choices: dict[Any, str] = SEXES if field == "sex" else YES_NO
                current = (self.values.get("sex") if field == "sex"
                           else self.values["answers"].get(field.split(":", 1)[1]))
                for (value, text), cell in zip(choices.items(),
                                               lay.columns(value_area, [1.0, 1.0]), strict=True):
                    out.append(Button(cell, t(text), f"choose:{field}:{value}",
                                      colour=CHOSEN if current == value else BUTTON))
            else:
                out.append(Button(value_area, self.shown(field), "edit:" + field,
                                  colour=FIELD_BG, text_colour=FIELD_TEXT))
        nav = rows[-1]
        left, right = lay.columns(nav, [1.0, 1.0])
        last = self.page == len(self.pages()) - 1
        out.append(Button(left, t("Cancel") if self.page == 0 else t("Back"),
                          "cancel" if self.page == 0 else "back", colour=DANGER if
                          self.page == 0 else BUTTON))
        out.append(Button(right, t("Save") if last else t("Next"), "save" if last else "next",
                          colour=CHOSEN if last else ACCENT))
        return out

    def buttons(self, app: KioskApp) -> list[Button]:
        """The buttons on screen now: the keyboard's while a field is typed, else the form's."""
        return self.editor_buttons(app) if self.editing is not None else self.form_buttons(app)

    def shown(self, field: str) -> str:
        value = str(self.values.get(field, ""))
        return value or " "

    # -- the editor (keyboard or keypad) ----------------------------------------------------

    def editor_areas(self, app: KioskApp) -> tuple[pygame.Rect, pygame.Rect]:
        """(the field being typed, the keys): no title bar, so the keys get the height."""
        lay = app.layout
        area = pygame.Rect(lay.pad, lay.pad, lay.width - 2 * lay.pad,
                           lay.body.bottom - 2 * lay.pad)
        field_h = max(int(lay.unit * 3.2), 60)
        field = pygame.Rect(area.left, area.top, area.width, field_h)
        keys = pygame.Rect(area.left, field.bottom + lay.pad, area.width,
                           area.bottom - field.bottom - lay.pad)
        return field, keys

    def editor_buttons(self, app: KioskApp) -> list[Button]:
        assert self.editing is not None
        kind = FIELDS[self.editing][0]
        _field, keys = self.editor_areas(app)
        lay = app.layout
        gap = max(4, lay.pad // 2)
        if kind == DIGITS:
            pad = keys.inflate(-keys.width // 2 if not lay.portrait else -keys.width // 8, 0)
            return keypad_buttons(pad, gap, app.t("Done"), app.t("Delete"))
        return key_buttons(keys, keyboard_rows(kind, lay.portrait), gap, app.t)

    def open_editor(self, field: str) -> None:
        self.editing = field
        self.draft = str(self.values.get(field, ""))

    def close_editor(self) -> None:
        assert self.editing is not None
        self.values[self.editing] = self.draft.strip()
        if self.problem is not None and self.problem[0] == self.editing:
            self.problem = None
        self.editing = None

    def type(self, action: str) -> None:
        """One key of the editor."""
        assert self.editing is not None
        kind, _label, limit = FIELDS[self.editing]
        if action in ("back",):
            self.draft = vn.backspace(self.draft)
        elif action in ("ok", "done"):
            self.close_editor()
        elif action == "space":
            self.draft = vn.space(self.draft)
        elif action.startswith("mark:"):
            self.draft = vn.apply_mark(self.draft, action.split(":", 1)[1])
        elif len(self.draft) >= limit:
            return
        elif action.startswith("key:"):
            char = action.split(":", 1)[1]
            if kind == CODE:
                self.draft += char.upper()
            elif char.isalpha():
                self.draft = vn.type_letter(self.draft, char)
            else:
                self.draft += char
        elif action.isdigit() and len(action) == 1:  # the keypad's digits
            self.draft += action

    # -- events ---------------------------------------------------------------------------

    # Complexity over 10 on purpose: an event dispatch, one flat branch per form action.
    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:  # noqa: C901
        if self.editing is not None:
            self.handle_editor(app, event)
            return
        action = None
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            action = hit(self.form_buttons(app), event.pos)
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
            action = "cancel"
        if action is None:
            return
        self.notice = None
        if action.startswith("edit:"):
            self.open_editor(action.split(":", 1)[1])
        elif action.startswith("choose:"):
            self.choose(*action[len("choose:"):].rsplit(":", 1))
        elif action == "next":
            self.page = min(self.page + 1, len(self.pages()) - 1)
        elif action == "back":
            self.page = max(0, self.page - 1)
        elif action == "cancel":
            log.info("declaration form cancelled; nothing recorded")
            app.go("officer")
        elif action == "save":
            self.save(app)

    def choose(self, field: str, value: str) -> None:
        """A tap on one of two choices: sex, or a question's yes / no."""
        if field == "sex":
            self.values["sex"] = value
        else:
            self.values["answers"][field.split(":", 1)[1]] = value == "True"
        if self.problem is not None and self.problem[0] == field:
            self.problem = None

    def handle_editor(self, app: KioskApp, event: pygame.event.Event) -> None:
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            action = hit(self.editor_buttons(app), event.pos)
            if action is not None:
                self.type(action)
        elif event.type == pygame.KEYDOWN:
            # A USB keyboard works too: Enter/Escape close, Backspace deletes; the characters
            # come as TEXTINPUT (below), taken as they are and checked on Save.
            if event.key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_ESCAPE):
                self.close_editor()
            elif event.key == pygame.K_BACKSPACE:
                self.draft = vn.backspace(self.draft)
        elif event.type == pygame.TEXTINPUT:
            limit = FIELDS[self.editing][2] if self.editing else 0
            self.draft = (self.draft + event.text)[:limit]

    def save(self, app: KioskApp) -> None:
        try:
            declaration = check(self.values, questions=tuple(q.id for q in self.questions),
                                today=local_date(app.now()), officer=app.officer_id)
        except FieldError as e:
            log.info("declaration refused: field %s (%s)", e.field, e.code)
            self.problem = (e.field, e.code)
            self.page = self.page_of(e.field)
            return
        try:
            result = app.loop.declare(declaration)
        except (KioskError, ValueError) as e:
            log.warning("declaration not recorded: %s", type(e).__name__)
            self.notice = app.t("The declaration could not be recorded.")
            return
        log.info("declared person recorded")
        app.show_result(result, back_to="officer")

    # -- drawing --------------------------------------------------------------------------

    def problem_text(self, app: KioskApp) -> str | None:
        if self.problem is None:
            return None
        field, code = self.problem
        return f"{self.label(app, field)}: {app.t(PROBLEMS.get(code, code))}"

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        if self.editing is not None:
            self.draw_editor(app, surface)
            return
        t = app.t
        lay = app.layout
        problem = self.problem_text(app)
        if problem:
            title_bar(app, surface, problem, BAD)
        elif self.notice:
            title_bar(app, surface, self.notice, WARN)
        else:
            pages = len(self.pages())
            title_bar(app, surface, t("Declare a person") + (f"  {self.page + 1}/{pages}"
                                                              if pages > 1 else ""))
        buttons = self.form_buttons(app)
        page = self.pages()[self.page]
        rows = lay.rows(self.body(app), [1.0] * ROWS_PER_PAGE + [1.0], gap=max(4, lay.pad // 2))
        size = int(lay.unit * 0.95)
        for field, row in zip(page, rows, strict=False):
            label_area = lay.columns(row, [1.0, 1.3] if lay.portrait else [1.0, 1.6])[0]
            if self.problem is not None and self.problem[0] == field:
                pygame.draw.rect(surface, BAD, row.inflate(6, 4), width=3, border_radius=6)
            blit_text(app.fonts, surface, self.label(app, field), size,
                      BAD if self.problem and self.problem[0] == field else MUTED,
                      label_area.inflate(-lay.pad, 0), align="left", wrap=True, min_size=10)
        draw_buttons(app, surface, buttons)

    def draw_editor(self, app: KioskApp, surface: pygame.Surface) -> None:
        assert self.editing is not None
        lay = app.layout
        field, _keys = self.editor_areas(app)
        label_h = int(field.height * 0.34)
        blit_text(app.fonts, surface, self.label(app, self.editing), int(label_h * 0.9), MUTED,
                  pygame.Rect(field.left, field.top, field.width, label_h), align="left")
        box = pygame.Rect(field.left, field.top + label_h, field.width, field.height - label_h)
        pygame.draw.rect(surface, FIELD_BG, box, border_radius=lay.pad)
        text = self.draft + "|"
        blit_text(app.fonts, surface, text, int(box.height * 0.75), FIELD_TEXT,
                  box.inflate(-lay.pad * 2, 0), bold=True, align="left", min_size=10)
        draw_buttons(app, surface, self.editor_buttons(app))
