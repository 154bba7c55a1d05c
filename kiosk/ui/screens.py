"""The kiosk's screens, one class each, with enter / handle / update / draw / exit.

Screens read the app (loop, layout, translator, fonts) and change state only through
``app.go`` and the app's named actions, so every transition is visible in one place.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pygame

from kiosk.domain.credentials.venue import is_venue_poster
from kiosk.domain.model import Direction, Kind, Outcome
from kiosk.errors import KioskError
from kiosk.ui.artwork import (
    COLOURS,
    NOT_PERSON_COLOUR,
    NOT_PERSON_TEXT,
    TEXT_ON,
    icon_path,
    not_person_icon_path,
    splash_path,
)
from kiosk.ui.i18n import _
from kiosk.ui.layout import status_line_height
from kiosk.ui.machine import BG, Screen
from kiosk.ui.text import balance, blit_text
from kiosk.ui.widgets import ACCENT, DANGER, KEY_ACTIONS, Button, Entry, hit, keypad_buttons

if TYPE_CHECKING:  # the app imports the screens
    from kiosk.domain.model import Credential
    from kiosk.runtime.events import Health, ScanResult
    from kiosk.ui.app import KioskApp

log = logging.getLogger(__name__)

PANEL = (30, 42, 60)
FG = (255, 255, 255)
MUTED = (175, 190, 208)
OK = (90, 205, 120)
WARN = (250, 185, 40)
BAD = (255, 95, 95)
IN_COLOUR = (30, 110, 200)
OUT_COLOUR = (120, 70, 170)

WORDS: dict[Outcome, str] = {
    Outcome.PASS: _("GO AHEAD"),
    Outcome.CHECK: _("WAIT FOR CHECK"),
    Outcome.STOP: _("STOP"),
}
KIND_LABELS: dict[str, str] = {
    "cccd": _("Chip ID card (CCCD)"),
    "pc_covid": _("Personal COVID QR (PC-Covid, VNeID)"),
    "eu_dcc": _("Vaccination certificate (EU DCC)"),
    "bhyt": _("Health insurance card (BHYT)"),
    "venue": _("Venue QR code"),
    "other": _("Other QR code"),  # a venue-kind code that is no venue's poster: link, Wi-Fi…
    "unknown": _("Unrecognised code"),
}
# A code that is not a person's gets its own result, not "wait for check": nothing was
# recorded and the citizen only has to show another code.
NOT_PERSON_WORDS: dict[str, str] = {
    "venue": _("NOT A PERSONAL CODE"),
    "unknown": _("CODE NOT RECOGNISED"),
}
SHOW_PERSONAL_CODE = _("Please show your personal QR code")
# The policy's reasons for such a code (kiosk.domain.policy) and the parsers' problems with one.
NOT_PERSON_REASONS = frozenset({"not_a_person", "unrecognised", "empty", "payload_too_long",
                                "parser_error"})
DIRECTION_LABELS: dict[str, str] = {Direction.IN: _("ENTRY"), Direction.OUT: _("EXIT")}
SOURCES = {"manual": _("Entered by officer"), "override": _("Decision changed by officer"),
           "declared": _("Declared by officer")}
# What the status document holds about the person (Decision.found, masked), one label each.
FOUND_LABELS: dict[str, str] = {
    "declared_on": _("Declared {value}"),
    "declared_until": _("Declaration valid until {value}"),
    "doses": _("{value} vaccine doses"),
    "last_dose_month": _("last dose {value}"),
    "negative_test": _("Negative test {value}"),
    "recovered_month": _("Recovered {value}"),
}
TEST_TYPE_LABELS = {"pcr": _("PCR"), "rapid_antigen": _("rapid test")}
NOT_FOUND = _("Not in the status list")
# The national COVID-19 hotline of the Ministry of Health, on the idle screen.
HOTLINE = "19001905"
# Override reasons are recorded as codes; the labels are for the officer.
OVERRIDE_REASONS: dict[str, str] = {
    "officer_documents_checked": _("Documents checked by officer"),
    "officer_medical_exemption": _("Medical exemption"),
    "officer_code_misread": _("Code misread by the camera"),
    "officer_refused": _("Refused by officer"),
}
# Why an officer-panel entry is greyed out, shown when it is tapped.
DISABLED_REASONS: dict[str, str] = {
    "override": _("No recorded check-in to change yet"),
    "provision": _("No configuration file (demo)"),  # only the demo runs without one
    "selftest": _("Not available on this kiosk"),
}
RECENT_ROWS = 8
CHANGED_TAG = _("changed")  # on a recent row an officer's override replaced
REPLACED = (70, 78, 92)
REPLACED_TEXT = (140, 150, 165)

_GREY_PALETTE = [(i, i, i) for i in range(256)]


# --- shared drawing -----------------------------------------------------------------------

_images: dict[tuple[str, int], pygame.Surface] = {}


def image(path: str, height: int) -> pygame.Surface:
    """A bundled PNG scaled to ``height`` (cached per size)."""
    key = (path, height)
    surf = _images.get(key)
    if surf is None:
        raw = pygame.image.load(path)
        width = max(1, round(raw.get_width() * height / raw.get_height()))
        surf = pygame.transform.smoothscale(raw.convert_alpha() if pygame.display.get_init()
                                            and pygame.display.get_surface() else raw,
                                            (width, height))
        _images[key] = surf
    return surf


_qr_codes: dict[tuple[str, int], pygame.Surface] = {}


def venue_qr_surface(payload: str, side: int) -> pygame.Surface:
    """``payload`` as a black-on-white QR code at most ``side`` pixels square: whole pixels
    per module (a phone reads sharp edges), a quiet zone of four modules (cached)."""
    key = (payload, side)
    surf = _qr_codes.get(key)
    if surf is None:
        import segno

        matrix = np.array([list(row) for row in segno.make_qr(payload.encode("utf-8"),
                                                              error="m").matrix], dtype=bool)
        modules = np.pad(matrix, 4)
        scale = max(1, side // modules.shape[0])
        grey = np.where(modules, 0, 255).astype(np.uint8)
        grey = np.kron(grey, np.ones((scale, scale), dtype=np.uint8))
        surf = pygame.surfarray.make_surface(np.stack([grey.T] * 3, axis=-1))
        if len(_qr_codes) > 8:
            _qr_codes.clear()
        _qr_codes[key] = surf
    return surf


def icon(outcome: Outcome, height: int) -> pygame.Surface:
    return image(str(icon_path(outcome)), height)


def kind_label(credential: Credential) -> str:
    """The catalogue id naming what kind of code ``credential`` is."""
    kind = str(credential.kind)
    if kind == "venue" and not is_venue_poster(credential):
        return KIND_LABELS["other"]
    return KIND_LABELS.get(kind, KIND_LABELS["unknown"])


def not_a_person(result: ScanResult) -> str | None:
    """``"venue"`` or ``"unknown"`` when a scanned code was not a person's, else None.

    Only when nothing was recorded and every reason says "not a person's code": an internal
    error or a kind the officer must look at keeps the amber "wait for check".
    """
    kind = result.credential.kind
    reasons = set(result.decision.reasons)
    if (result.checkin_id is None and result.source == "scan"
            and kind in (Kind.VENUE, Kind.UNKNOWN) and reasons
            and reasons <= NOT_PERSON_REASONS):
        return str(kind)
    return None


def frame_surface(frame: np.ndarray) -> pygame.Surface:
    """A 2-D uint8 grey frame as an 8-bit surface without copying pixel by pixel."""
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    h, w = frame.shape
    try:
        surf = pygame.image.frombuffer(frame.data, (w, h), "P")  # the array's own memory
    except ValueError:
        # Older pygame (Debian 12 ships 2.1.2) may lack the "P" format here; 1.5× slower.
        surf = pygame.surfarray.make_surface(frame.T)
    surf.set_palette(_GREY_PALETTE)
    return surf


def draw_preview(app: KioskApp, surface: pygame.Surface, rect: pygame.Rect, guide: bool = True
                 ) -> None:
    """The camera picture letterboxed into ``rect`` (mirrored like a mirror) with the guide."""
    pygame.draw.rect(surface, (0, 0, 0), rect)
    frame = app.loop.latest_frame()
    if frame is None:
        blit_text(app.fonts, surface, app.t("Starting the camera…"), app.layout.unit, MUTED,
                  rect.inflate(-rect.width // 8, 0), wrap=True)
        shown = rect
    else:
        src = frame_surface(frame)
        scale = min(rect.width / src.get_width(), rect.height / src.get_height())
        size = (max(1, int(src.get_width() * scale)), max(1, int(src.get_height() * scale)))
        # Nearest-neighbour scale of the 8-bit frame, then flip: ~1 ms at 800×600 (bench/ui.py).
        scaled = pygame.transform.flip(pygame.transform.scale(src, size), True, False)
        shown = scaled.get_rect(center=rect.center)
        surface.blit(scaled, shown)
    if guide:
        draw_guide(app, surface, app.layout.guide_rect(shown, app.camera_crop))


def draw_guide(app: KioskApp, surface: pygame.Surface, r: pygame.Rect) -> None:
    """Corner brackets where the card should be; dark outline keeps them visible on white."""
    arm = max(8, min(r.width, r.height) // 4)
    th = max(3, app.layout.unit // 5)
    for colour, grow in (((0, 0, 0), 2), ((255, 255, 255), 0)):
        for cx, cy, sx, sy in ((r.left, r.top, 1, 1), (r.right, r.top, -1, 1),
                               (r.left, r.bottom, 1, -1), (r.right, r.bottom, -1, -1)):
            h = pygame.Rect(0, 0, arm + grow * 2, th + grow * 2)
            v = pygame.Rect(0, 0, th + grow * 2, arm + grow * 2)
            if sx > 0:
                h.left, v.left = cx - grow, cx - grow
            else:
                h.right, v.right = cx + grow, cx + grow
            if sy > 0:
                h.top, v.top = cy - grow, cy - grow
            else:
                h.bottom, v.bottom = cy + grow, cy + grow
            pygame.draw.rect(surface, colour, h)
            pygame.draw.rect(surface, colour, v)


def local_time(app: KioskApp, when: datetime | str | None, fmt: str = "%H:%M") -> str:
    if when is None:
        return "—"
    if isinstance(when, str):
        try:
            parsed = datetime.fromisoformat(when)
        except ValueError:
            return when  # not a time: shown as it came
        when = parsed
    return when.astimezone(app.tz).strftime(fmt)


def direction_badge(app: KioskApp, surface: pygame.Surface, rect: pygame.Rect) -> None:
    d = app.loop.direction
    pygame.draw.rect(surface, IN_COLOUR if d == "in" else OUT_COLOUR, rect,
                     border_radius=rect.height // 5)
    blit_text(app.fonts, surface, app.t(DIRECTION_LABELS.get(d, d)), int(rect.height * 0.6), FG,
              rect.inflate(-rect.height // 2, 0), bold=True)


def draw_lights(app: KioskApp, surface: pygame.Surface, rect: pygame.Rect) -> None:
    """The demo's picture of the pins the scan loop drives (red, amber, green, buzzer, gate)."""
    states = app.loop.lights()
    r = rect.height // 2 - 2
    x = rect.left + r + 2
    for name, on in (("red", (235, 40, 40)), ("amber", (250, 175, 0)), ("green", (40, 200, 80))):
        lit = states.get(name, False)
        pygame.draw.circle(surface, on if lit else (50, 50, 50), (x, rect.centery), r)
        pygame.draw.circle(surface, (200, 200, 200), (x, rect.centery), r, 1)
        x += 2 * r + 4
    for name, text, width in _light_boxes(app, rect.height):
        lit = states.get(name, False)
        box = pygame.Rect(x, rect.top + 2, width, rect.height - 4)
        pygame.draw.rect(surface, (60, 130, 230) if lit else (50, 50, 50), box, border_radius=3)
        blit_text(app.fonts, surface, text, int(rect.height * 0.5), FG, box.inflate(-4, 0))
        x = box.right + 4


def _light_boxes(app: KioskApp, height: int) -> list[tuple[str, str, int]]:
    """(pin, label, box width) of the buzzer and gate boxes: wide enough for their words."""
    r = height // 2 - 2
    font = app.fonts.font(int(height * 0.5))
    return [(name, text, max(int(r * 3.2), font.size(text)[0] + 8))
            for name, text in (("buzzer", app.t("Buzzer")), ("gate", app.t("Gate")))]


def lights_width(app: KioskApp, height: int) -> int:
    """Width of the demo lights drawn ``height`` pixels tall."""
    r = height // 2 - 2
    return 3 * (2 * r + 4) + sum(w + 4 for _n, _t, w in _light_boxes(app, height)) + 4


StatusItem = tuple[str, str, tuple[int, int, int]]  # full text, short text, colour
STRIP_BG = (8, 12, 20)


def draw_status(app: KioskApp, surface: pygame.Surface) -> int:
    """The officers' strip at the bottom of every screen; returns its text size.

    Items flow over the strip's lines in order (the clock last, on the right), at the largest
    size at which they fit: full texts first, then short ones (dates without the age), so the
    text stays readable when much is wrong at once.
    """
    strip = app.layout.status
    pygame.draw.rect(surface, STRIP_BG, strip)
    pygame.draw.line(surface, (70, 80, 100), strip.topleft, strip.topright)
    lights, lines = status_lines(app)
    if lights is not None:
        draw_lights(app, surface, lights)
    t = app.t
    items = status_items(app)
    direction = t(DIRECTION_LABELS.get(app.loop.direction, app.loop.direction))
    clock_text = f"{direction}  {local_time(app, app.now())}"
    items.append((clock_text, clock_text, FG))
    size, rows = _status_fit(app, items, lines)
    for row, line in zip(rows, lines, strict=False):
        _status_row(app, surface, row, line, size, last=row is rows[-1])
    return size


def status_lines(app: KioskApp) -> tuple[pygame.Rect | None, list[pygame.Rect]]:
    """(the demo lights' place or None, the strip's lines of text)."""
    lay = app.layout
    strip = lay.status
    margin = strip.height - lay.status_lines * status_line_height(lay.unit)
    area = pygame.Rect(strip.left + lay.pad // 2, strip.top + margin // 2,
                       strip.width - lay.pad, strip.height - margin)
    lines = lay.rows(area, [1.0] * lay.status_lines, gap=0)
    if not app.show_lights:
        return None, lines
    if lay.portrait:
        first = lines[0]
        return pygame.Rect(first.left, first.top + 1, lights_width(app, first.height - 2),
                           first.height - 2), lines[1:]
    first = lines[0]
    lights = pygame.Rect(first.left, first.top + 1, lights_width(app, first.height - 2),
                         first.height - 2)
    lines[0] = pygame.Rect(lights.right + lay.pad, first.top,
                           first.width - lights.width - lay.pad, first.height)
    return lights, lines


def _status_gap(app: KioskApp, size: int) -> tuple[int, int]:
    """(dot radius, gap between items) for text of ``size``."""
    return max(3, size // 4), max(8, size // 2)


_strip_fits: dict[tuple[object, ...],
                  tuple[int, list[list[tuple[str, tuple[int, int, int]]]]]] = {}


def _status_fit(app: KioskApp, items: list[StatusItem], lines: list[pygame.Rect]
                ) -> tuple[int, list[list[tuple[str, tuple[int, int, int]]]]]:
    """The largest size and the flow of items over ``lines`` at which all fit."""
    # The strip is drawn every frame and changes about once a minute: remember the fit.
    key = (tuple(items), tuple(tuple(r) for r in lines))
    fit = _strip_fits.get(key)
    if fit is None:
        if len(_strip_fits) > 64:
            _strip_fits.clear()
        fit = _strip_fits[key] = _status_search(app, items, lines)
    return fit


def _status_search(app: KioskApp, items: list[StatusItem], lines: list[pygame.Rect]
                   ) -> tuple[int, list[list[tuple[str, tuple[int, int, int]]]]]:
    top = int(lines[0].height * 0.72)
    # The full texts while they stay readable (16 px and up), then the short ones.
    tries = [(size, False) for size in range(top, 15, -1)] + \
        [(size, True) for size in range(top, 7, -1)]
    for size, short in tries:
        texts = [(short_text if short else full, colour) for full, short_text, colour in items]
        rows = _status_flow(app, texts, lines, size)
        if rows is not None:
            return size, rows
    return 8, _status_flow(app, [(i[1], i[2]) for i in items], lines, 8, force=True) or []


def _status_flow(app: KioskApp, items: list[tuple[str, tuple[int, int, int]]],
                 lines: list[pygame.Rect], size: int, force: bool = False
                 ) -> list[list[tuple[str, tuple[int, int, int]]]] | None:
    font = app.fonts.font(size)
    dot, gap = _status_gap(app, size)
    rows: list[list[tuple[str, tuple[int, int, int]]]] = [[] for _ in lines]
    line, used = 0, 0
    for text, colour in items:
        width = font.size(text)[0] + dot * 3
        need = width if not rows[line] else used + gap + width
        if need > lines[line].width and rows[line]:
            line += 1
            if line >= len(lines):
                if not force:
                    return None
                line = len(lines) - 1  # too much even at the smallest size: squeeze the last
            need = width if not rows[line] else used + gap + width
        if need > lines[line].width and not force:
            return None
        rows[line].append((text, colour))
        used = need
    return [r for r in rows if r]


def _status_row(app: KioskApp, surface: pygame.Surface,
                items: list[tuple[str, tuple[int, int, int]]], area: pygame.Rect,
                size: int, last: bool = False) -> None:
    font = app.fonts.font(size)
    dot, gap = _status_gap(app, size)
    x = area.left
    for i, (text, colour) in enumerate(items):
        width = font.size(text)[0] + dot * 3
        if last and i == len(items) - 1:
            x = max(x, area.right - width)  # the clock keeps its place on the right
        col = pygame.Rect(x, area.top, min(width, area.right - x), area.height)
        pygame.draw.circle(surface, colour, (col.left + dot, col.centery), dot)
        blit_text(app.fonts, surface, text, size, colour,
                  pygame.Rect(col.left + dot * 3, col.top, col.width - dot * 3, col.height),
                  align="left", min_size=8)
        x = col.right + gap


# How old a time may be before it turns amber (green below) and red (amber below): sync runs
# every minute while online; documents are fetched (or confirmed unchanged) every 15 min.
SYNC_FRESH = timedelta(minutes=15)
DOCUMENT_FRESH = timedelta(hours=1)
STALE = timedelta(hours=24)
DOCUMENTS: dict[str, tuple[str, str, str]] = {  # name: (with age, never fetched, refused)
    "policy": (_("Policy {age}"), _("No policy"), _("Policy not applied")),
    "watchlist": (_("Watchlist {age}"), _("No watchlist"), _("Watchlist not applied")),
    "trust_list": (_("Trust list {age}"), _("No trust list"), _("Trust list not applied")),
}


def age_texts(app: KioskApp, when: datetime) -> tuple[str, str, timedelta]:
    """("12 min ago" or "19/11 (3 days ago)", the short form, the age) of ``when``."""
    t = app.t
    now = app.now()
    age = max(timedelta(0), now - when)
    seconds = int(age.total_seconds())
    if seconds < 60:
        ago = t("just now")
    elif seconds < 3600:
        ago = t("{n} min ago").format(n=seconds // 60)
    elif seconds < 86400:
        ago = t("{n} h ago").format(n=seconds // 3600)
    elif seconds < 2 * 86400:
        ago = t("1 day ago")
    else:
        ago = t("{n} days ago").format(n=seconds // 86400)
    if when.astimezone(app.tz).date() == now.astimezone(app.tz).date():
        return ago, ago, age
    day = local_time(app, when, "%d/%m")
    return f"{day} ({ago})", day, age


def aged_item(app: KioskApp, template: str, when: datetime, fresh: timedelta) -> StatusItem:
    """``template`` ("Synced {age}") filled in, coloured by age: green, amber, red."""
    full, short, age = age_texts(app, when)
    colour = OK if age < fresh else WARN if age < STALE else BAD
    text = app.t(template)
    return text.format(age=full), text.format(age=short), colour


def document_items(app: KioskApp, h: Health) -> list[StatusItem]:
    t = app.t
    now = app.now()
    times = dict(h.documents)
    if not times and h.trust_list_age is not None:
        times = {"trust_list": now - h.trust_list_age}  # a loop that only knows the age
    elif not times:
        times = {"trust_list": None}
    errors = set(h.document_errors)
    items: list[StatusItem] = []
    for name in [*DOCUMENTS, *sorted(set(times) - set(DOCUMENTS))]:
        if name not in times and name not in errors:
            continue
        aged, never, refused = DOCUMENTS.get(name, (name + " {age}", name, name))
        when = times.get(name)
        if name in errors:
            text = t(refused)
            items.append((text, text, BAD))
        elif when is None:
            text = t(never)
            items.append((text, text, WARN))
        else:
            items.append(aged_item(app, aged, when, DOCUMENT_FRESH))
    return items


def status_items(app: KioskApp) -> list[StatusItem]:
    """What the strip says, in order, each as (full text, short text, colour)."""
    t = app.t
    h = app.health

    def same(text: str, colour: tuple[int, int, int]) -> StatusItem:
        return text, text, colour

    if h is None:
        return [same(t("Starting…"), MUTED)]
    items: list[StatusItem] = []
    if h.online is None:
        items.append(same(t("Sync off"), MUTED))
    else:
        items.append(same(t("Online"), OK) if h.online else same(t("Offline"), WARN))
        items.append(same(t("Unsent: {n}").format(n=h.backlog), WARN if h.backlog else OK))
        lost = h.undelivered
        if lost == 1:
            items.append(same(t("1 check-in not delivered"), BAD))
        elif lost:
            items.append(same(t("{n} check-ins not delivered").format(n=lost), BAD))
        if h.last_sync is None:
            items.append(same(t("Never synced"), WARN))
        else:
            items.append(aged_item(app, _("Synced {age}"), h.last_sync, SYNC_FRESH))
    items.append(same(t("Clock OK"), OK) if h.clock_synced else same(t("Clock not synced"),
                                                                       WARN))
    items.append(same(t("Camera OK"), OK) if h.camera_ok else same(t("Camera fault"), BAD))
    if h.scanner_configured:  # the handheld scanner beside the camera (docs/scanner.md)
        items.append(same(t("Scanner OK"), OK) if h.scanner_ok
                     else same(t("Scanner fault"), BAD))
    items += document_items(app, h)
    if h.key_unconfirmed:
        items.append(same(t("Central key not confirmed"), WARN))
    return items


def title_bar(app: KioskApp, surface: pygame.Surface, text: str,
              colour: tuple[int, int, int] = FG) -> pygame.Rect:
    """A title across the top; returns the area left below it."""
    lay = app.layout
    bar = pygame.Rect(0, 0, lay.width, int(lay.unit * 2.2))
    pygame.draw.rect(surface, PANEL, bar)
    blit_text(app.fonts, surface, text, int(lay.unit * 1.1), colour,
              bar.inflate(-2 * lay.pad, 0), bold=True, align="left")
    return pygame.Rect(lay.pad, bar.bottom + lay.pad, lay.width - 2 * lay.pad,
                       lay.body.bottom - bar.bottom - 2 * lay.pad)


def notice_look(app: KioskApp, result: ScanResult
                ) -> tuple[tuple[int, int, int], tuple[int, int, int], str, str]:
    """(colour, text colour, icon file, text) of a result shown as a notice: word, masked
    name or ID, then the reasons (or, without any, what kind of code it was)."""
    t = app.t
    other = not_a_person(result)
    if other is not None:
        return (NOT_PERSON_COLOUR, NOT_PERSON_TEXT, str(not_person_icon_path()),
                "  ·  ".join((t(NOT_PERSON_WORDS[other]), t(kind_label(result.credential)))))
    outcome = Outcome(result.decision.outcome)
    display = result.credential.display
    parts = [t(WORDS[outcome])]
    who = display.get("name") or display.get("id")
    if who:
        parts.append(str(who))
    reasons = [t.reason(code) for code in result.decision.reasons]
    parts.append("; ".join(reasons) if reasons else t(kind_label(result.credential)))
    return COLOURS[outcome], TEXT_ON[outcome], str(icon_path(outcome)), "  ·  ".join(parts)


def draw_notice(app: KioskApp, surface: pygame.Surface, result: ScanResult) -> pygame.Rect:
    """A code decided while an officer screen is open, over that screen's title bar."""
    lay = app.layout
    colour, text_colour, icon_file, text = notice_look(app, result)
    bar = pygame.Rect(0, 0, lay.width, int(lay.unit * 2.2))
    pygame.draw.rect(surface, colour, bar)
    pygame.draw.rect(surface, FG, bar, width=2)
    pic = image(icon_file, int(bar.height * 0.75))
    surface.blit(pic, pic.get_rect(midleft=(bar.left + lay.pad, bar.centery)))
    area = pygame.Rect(pic.get_width() + lay.pad * 2, bar.top,
                       bar.width - pic.get_width() - lay.pad * 3, bar.height)
    blit_text(app.fonts, surface, text, int(lay.unit * 0.95), text_colour, area, bold=True,
              align="left", min_size=10)
    return bar


def draw_buttons(app: KioskApp, surface: pygame.Surface, buttons: list[Button]) -> dict[str, int]:
    """Keypad digits big; words at one size per row, so neighbours look alike.

    Returns the text size each button's label was drawn at, by action.
    """
    size = int(app.layout.unit * 1.0)
    sizes: dict[int, int] = {}
    for b in buttons:
        if not b.label.isdigit():
            # Buttons side by side share a row (the same centre line; a selected one may be
            # drawn larger) and so one text size, the largest at which all their labels fit.
            row = b.rect.centery
            sizes[row] = min(sizes.get(row, size), b.fit(app.fonts, size))
    drawn = {}
    for b in buttons:
        if b.label.isdigit():
            drawn[b.action] = int(min(size * 1.8, b.rect.height * 0.5))
        else:
            drawn[b.action] = b.fit(app.fonts, sizes[b.rect.centery])
        b.draw(surface, app.fonts, drawn[b.action])
    return drawn


# --- screens --------------------------------------------------------------------------------


class Splash(Screen):
    name = "splash"
    audience = "system"

    def deadline(self, app: KioskApp) -> float | None:
        return app.entered_at + app.timeouts.splash

    def expired(self, app: KioskApp) -> None:
        app.after_splash()

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        lay = app.layout
        pic = image(str(splash_path()), int(lay.body.height * 0.7))
        if pic.get_width() > lay.width:
            pic = image(str(splash_path()), int(lay.body.height * 0.7 * lay.width
                                                 / pic.get_width()))
        surface.blit(pic, pic.get_rect(midtop=(lay.width // 2, 0)))
        blit_text(app.fonts, surface, app.t("QR check-in point"), lay.unit * 2, FG,
                  pygame.Rect(lay.pad, pic.get_height(), lay.width - 2 * lay.pad,
                              lay.body.bottom - pic.get_height()), bold=True)


class Scanning(Screen):
    name = "scanning"
    rest = True

    def enter(self, app: KioskApp) -> None:
        app.touch()  # idle time counts from the moment the screen is ready for the next person

    def update(self, app: KioskApp) -> None:
        if app.faults():
            app.go("fault")

    def deadline(self, app: KioskApp) -> float | None:
        return app.last_activity + app.settings.idle_seconds

    def expired(self, app: KioskApp) -> None:
        app.go("idle")

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        lay = app.layout
        t = app.t
        draw_preview(app, surface, lay.preview)
        side = lay.side
        if lay.portrait:
            badge, hint, accepted, counts = lay.rows(side, [1.0, 1.6, 2.6, 0.8])
        else:
            badge, hint, accepted, counts = lay.rows(side, [1.0, 2.4, 3.4, 0.9])
        badge = pygame.Rect(badge.left, badge.top, min(badge.width, lay.unit * 9), badge.height)
        direction_badge(app, surface, badge)
        blit_text(app.fonts, surface, t("Hold your QR code inside the frame"),
                  int(lay.unit * 2.0), FG, hint, bold=True, wrap=True, align="left")
        self.draw_accepted(app, surface, accepted)
        c = app.counts
        blit_text(app.fonts, surface,
                  t("Today: {n_in} in · {n_out} out").format(n_in=c.get("in", 0),
                                                             n_out=c.get("out", 0)),
                  int(lay.unit * 0.9), MUTED, counts, align="left")

    @staticmethod
    def draw_accepted(app: KioskApp, surface: pygame.Surface, area: pygame.Rect) -> None:
        t = app.t
        lines = [t(KIND_LABELS[k]) for k in app.loop.accepted_kinds if k in KIND_LABELS]
        head_h = int(app.layout.unit * 1.5)
        blit_text(app.fonts, surface, t("Accepted here:"), int(app.layout.unit * 0.95), MUTED,
                  pygame.Rect(area.left, area.top, area.width, head_h), align="left")
        rows = app.layout.rows(pygame.Rect(area.left, area.top + head_h, area.width,
                                           area.height - head_h), [1.0] * max(1, len(lines)),
                               gap=2)
        size = int(min(app.layout.unit * 1.0, rows[0].height * 0.7)) if lines else 10
        size = min([app.fonts.fit_size("• " + s, size, area.width) for s in lines] or [size])
        for text, row in zip(lines, rows, strict=False):
            blit_text(app.fonts, surface, "• " + text, size, FG, row, align="left")


class Idle(Screen):
    """Attract mode: big instructions, slowly drifting so nothing burns into the panel."""

    name = "idle"
    rest = True

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        if event.type in (pygame.MOUSEBUTTONDOWN, pygame.KEYDOWN):
            app.go("scanning")

    def update(self, app: KioskApp) -> None:
        if app.faults():
            app.go("fault")

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        lay = app.layout
        t = app.t
        phase = (app.clock() - app.entered_at) / 20.0
        dx = int(math.sin(phase) * lay.pad)
        dy = int(math.cos(phase * 0.7) * lay.pad)
        body = lay.body.inflate(-4 * lay.pad, -4 * lay.pad).move(dx, dy)
        venue = app.settings.venue_qr
        qr_area: pygame.Rect | None = None
        if lay.portrait and venue:
            pic_area, title, steps, qr_area = lay.rows(body, [1.6, 1.1, 3.0, 3.2])
        elif lay.portrait:
            pic_area, title, steps = lay.rows(body, [3.0, 1.3, 3.2])
        else:
            top, bottom = lay.rows(body, [1.0, 1.25])
            pic_area, title = lay.columns(top, [1.0, 1.6])
            steps = bottom
            if venue:
                steps, qr_area = lay.columns(bottom, [2.2, 1.0])
        pic = image(str(splash_path()), pic_area.height)
        if pic.get_width() > pic_area.width:
            pic = image(str(splash_path()),
                        max(1, int(pic_area.height * pic_area.width / pic.get_width())))
        surface.blit(pic, pic.get_rect(center=pic_area.center))
        blit_text(app.fonts, surface, t("Scan your QR code here"), lay.unit * 3, FG, title,
                  bold=True, wrap=True)
        lines = [
            t("1. Open your personal QR code or take out your chip ID card"),
            t("2. Hold it inside the frame in front of the camera"),
            t("3. Wait for GO AHEAD on the screen"),
        ]
        rows = lay.rows(steps, [1.0, 1.0, 1.0, 0.8])
        size = min(app.fonts.fit_block(s, int(lay.unit * 1.4), r)[0]
                   for s, r in zip(lines, rows, strict=False))
        for text, row in zip(lines, rows, strict=False):
            blit_text(app.fonts, surface, text, size, FG, row, wrap=True, align="left")
        blit_text(app.fonts, surface, t("Health hotline {number}").format(
            number=f"{HOTLINE[:4]} {HOTLINE[4:]}"), size, WARN, rows[-1], bold=True,
            align="left")
        if qr_area is not None:
            self.draw_venue(app, surface, qr_area, venue)

    @staticmethod
    def draw_venue(app: KioskApp, surface: pygame.Surface, area: pygame.Rect,
                   payload: str) -> None:
        """The checkpoint's own venue QR (config ``ui.venue_qr``) for PC-Covid's check-in."""
        lay = app.layout
        caption_h = int(lay.unit * 1.6)
        side = min(area.width, area.height - caption_h)
        code = venue_qr_surface(payload, side)
        box = code.get_rect(midtop=(area.centerx, area.top))
        surface.blit(code, box)
        blit_text(app.fonts, surface, app.t("Check in with PC-Covid"), int(lay.unit * 0.9),
                  FG, pygame.Rect(area.left - lay.pad, box.bottom, area.width + 2 * lay.pad,
                                  caption_h), wrap=True)


class Result(Screen):
    name = "result"

    result: ScanResult
    back_to: str | None = None

    def load(self, result: ScanResult, back_to: str | None) -> None:
        """What to show next: ``back_to`` is the officer screen to return to, if any."""
        self.result = result
        self.back_to = back_to

    def enter(self, app: KioskApp) -> None:
        self.until = app.clock() + app.settings.result_seconds

    def finish(self, app: KioskApp) -> None:
        if self.back_to:
            app.go(self.back_to)
        else:
            app.home()

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        if event.type == pygame.MOUSEBUTTONDOWN and not app.layout.status.collidepoint(event.pos):
            self.finish(app)
        elif event.type == pygame.KEYDOWN and event.key in (pygame.K_RETURN, pygame.K_KP_ENTER,
                                                            pygame.K_ESCAPE):
            self.finish(app)

    def officer_at_kiosk(self, app: KioskApp) -> bool:
        return bool(self.back_to)  # the result of the officer's own action

    def deadline(self, app: KioskApp) -> float | None:
        return self.until

    def expired(self, app: KioskApp) -> None:
        self.finish(app)

    def look(self) -> tuple[tuple[int, int, int], tuple[int, int, int], str, str]:
        """(banner colour, word colour, icon file, word) of the result shown."""
        res = self.result
        other = not_a_person(res)
        if other is not None:
            return (NOT_PERSON_COLOUR, NOT_PERSON_TEXT, str(not_person_icon_path()),
                    NOT_PERSON_WORDS[other])
        outcome = Outcome(res.decision.outcome)
        return COLOURS[outcome], TEXT_ON[outcome], str(icon_path(outcome)), WORDS[outcome]

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        lay = app.layout
        colour, word_colour, icon_file, word = self.look()
        surface.fill(BG)
        # A thick frame in the outcome colour: the whole screen reads from across the hall.
        pygame.draw.rect(surface, colour, lay.body, width=max(6, lay.unit // 2))
        banner = lay.banner
        pygame.draw.rect(surface, colour, banner)
        if lay.portrait:
            # Narrow: the icon above the word, so the word keeps the full width.
            top, word_area = lay.rows(banner.inflate(-2 * lay.pad, -2 * lay.pad), [1.3, 1.0])
            pic = image(icon_file, top.height)
            surface.blit(pic, pic.get_rect(center=top.center))
            size = int(word_area.height * 0.8)
        else:
            icon_h = int(banner.height * 0.78)
            pic = image(icon_file, icon_h)
            surface.blit(pic, (banner.left + lay.pad * 2, banner.centery - icon_h // 2))
            word_area = pygame.Rect(banner.left + lay.pad * 4 + pic.get_width(), banner.top,
                                    banner.width - pic.get_width() - lay.pad * 6, banner.height)
            size = int(banner.height * 0.42)
        text, size = balance(app.fonts, app.t(word), size, word_area, True, 14)
        blit_text(app.fonts, surface, text, size, word_colour, word_area, bold=True, wrap=True,
                  min_size=14)
        self.draw_details(app, surface, lay.details.inflate(-lay.pad * 2, -lay.pad))
        # Time left before the next screen.
        left = min(1.0, max(0.0, self.until - app.clock()) / app.settings.result_seconds)
        bar = pygame.Rect(lay.body.left, lay.body.bottom - max(6, lay.unit // 2),
                          int(lay.body.width * left), max(6, lay.unit // 2))
        pygame.draw.rect(surface, FG, bar)

    def details(self, app: KioskApp) -> tuple[list[tuple[str, float, bool, tuple[int, int, int]]],
                                         list[str]]:
        """(text, size in units, bold, colour) lines under the banner, and the reason texts."""
        t = app.t
        res = self.result
        lines: list[tuple[str, float, bool, tuple[int, int, int]]] = []
        if not_a_person(res) is not None:
            # What to do instead, large; what the code was, small (nothing was recorded).
            lines.append((t(SHOW_PERSONAL_CODE), 2.2, True, FG))
            if res.credential.kind == Kind.VENUE:  # "unknown" would repeat the banner's word
                lines.append((t(kind_label(res.credential)), 1.0, False, MUTED))
            return lines, []  # the reasons only say again what the banner says
        display = dict(res.credential.display)
        if display.get("name"):
            lines.append((display["name"], 2.0, True, FG))
        ident = []
        if display.get("id"):
            ident.append(t("ID {id}").format(id=display["id"]))
        if display.get("birth_year"):
            ident.append(t("born {year}").format(year=display["birth_year"]))
        if ident:
            lines.append(("  ·  ".join(ident), 1.3, False, FG))
        meta = [t(kind_label(res.credential)),
                t(DIRECTION_LABELS.get(res.direction, res.direction))]
        if res.source in SOURCES:
            meta.append(t(SOURCES[res.source]))
        lines.append(("  ·  ".join(meta), 1.0, False, MUTED))
        found = found_text(app, res.decision.found)
        if found:
            lines.append((found, 1.0, False, FG))
        return lines, [t.reason(code) for code in res.decision.reasons]

    def lines(self, app: KioskApp) -> list[str]:
        """Every text line under the banner, in order (reasons with their bullet)."""
        lines, reasons = self.details(app)
        return [text for text, _w, _b, _c in lines] + ["• " + r for r in reasons]

    def draw_details(self, app: KioskApp, surface: pygame.Surface, area: pygame.Rect) -> None:
        lay = app.layout
        lines, reasons = self.details(app)
        weights = [w for _s, w, _b, _c in lines]
        if reasons:
            weights.append(1.2 * len(reasons) + 0.3)
        rows = lay.rows(area, weights, gap=max(2, lay.pad // 2))
        for (text, w, bold, colour), row in zip(lines, rows, strict=False):
            blit_text(app.fonts, surface, text, int(lay.unit * w * 1.1), colour, row,
                      bold=bold, align="left", wrap=True)
        if reasons:
            blit_text(app.fonts, surface, "\n".join("• " + r for r in reasons),
                      int(lay.unit * 1.25),
                      WARN if self.result.decision.outcome != "pass" else OK,
                      rows[-1], align="left", wrap=True, valign="top")


def found_text(app: KioskApp, found: dict[str, Any] | None) -> str:
    """One line of what the status document holds about the person (masked facts: days,
    months, a dose count); "" when no rule read it, "not in the status list" when empty."""
    if found is None:
        return ""
    t = app.t
    if not found:
        return t(NOT_FOUND)
    parts = []
    for key, template in FOUND_LABELS.items():
        value = found.get(key)
        if value is None or value == "":
            continue
        parts.append(t(template).format(value=_fact(app, key, value)))
    return "  ·  ".join(parts)


def _fact(app: KioskApp, key: str, value: Any) -> str:
    """A masked fact as the screen shows it: 31/05/2022, 03/2022, "PCR 31/05/2022"."""
    text = str(value)
    if key == "negative_test":
        kind, _sep, day = text.partition(" ")
        return f"{app.t(TEST_TYPE_LABELS.get(kind, kind))} {_day(day)}".strip()
    if key in ("declared_on", "declared_until"):
        return _day(text)
    if key in ("last_dose_month", "recovered_month") and len(text) == 7:
        return f"{text[5:7]}/{text[:4]}"
    return text


def _day(iso: str) -> str:
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}" if len(iso) == 10 else iso


class Fault(Screen):
    name = "fault"
    rest = True

    def update(self, app: KioskApp) -> None:
        if not app.faults():
            app.go("scanning")

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        lay = app.layout
        t = app.t
        faults = app.faults() or [(Outcome.STOP, t("Unexpected error"), "")]
        worst = faults[0][0]
        surface.fill((70, 14, 14) if worst is Outcome.STOP else (70, 52, 0))
        head, rest = lay.rows(lay.body.inflate(-2 * lay.pad, -2 * lay.pad), [1.0, 2.4])
        pic = icon(worst, int(head.height * 0.8))
        surface.blit(pic, pic.get_rect(midleft=(head.left + lay.pad, head.centery)))
        title_area = pygame.Rect(head.left + pic.get_width() + lay.pad * 3, head.top,
                                 head.width - pic.get_width() - lay.pad * 3, head.height)
        blit_text(app.fonts, surface, t("Out of service") if worst is Outcome.STOP
                  else t("Needs attention"), int(lay.unit * 2.4), FG, title_area, bold=True,
                  wrap=True, align="left")
        details = self.technical(app)
        weights = [1.0] * len(faults) + ([0.45] if details else [])
        rows = lay.rows(rest, weights)
        for (_sev, title, todo), row in zip(faults, rows, strict=False):
            top, bottom = lay.rows(row, [1.0, 1.4], gap=0)
            blit_text(app.fonts, surface, title, int(lay.unit * 1.6), FG, top, bold=True,
                      align="left")
            blit_text(app.fonts, surface, todo, int(lay.unit * 1.1), FG, bottom, wrap=True,
                      align="left", valign="top")
        if details:
            blit_text(app.fonts, surface, details, int(lay.unit * 0.8), MUTED, rows[-1],
                      wrap=True, align="left", valign="bottom")

    @staticmethod
    def technical(app: KioskApp) -> str:
        """One line for the technician (never a traceback)."""
        h = app.health
        parts = []
        if h is not None:
            parts += [m for m in (h.camera_message, h.store_message, h.scanner_message) if m]
        if app.internal_error:
            parts.append(app.internal_error)
        text = " | ".join(p.splitlines()[0] for p in parts if p.strip())
        return text[:160]


class _KeypadScreen(Screen):
    """Shared layout of the PIN and manual-entry screens: title, field, message, keypad."""

    max_len = 12

    def enter(self, app: KioskApp) -> None:
        self.entry = Entry(self.max_len)
        self.message: str | None = None

    def title(self, app: KioskApp) -> str:
        return ""

    def shown_value(self, app: KioskApp) -> str:
        return self.entry.value

    def placeholder(self) -> str:
        """The widest value, which sets the field's text size."""
        return "0" * self.max_len

    def submit(self, app: KioskApp) -> None:
        pass

    def cancel(self, app: KioskApp) -> None:
        app.home()

    def areas(self, app: KioskApp) -> tuple[pygame.Rect, pygame.Rect, pygame.Rect, pygame.Rect]:
        """(field, message, keypad, cancel button) under the title bar."""
        lay = app.layout
        area = pygame.Rect(lay.pad, int(lay.unit * 2.2) + lay.pad, lay.width - 2 * lay.pad,
                           lay.body.bottom - int(lay.unit * 2.2) - 2 * lay.pad)
        if lay.portrait:
            field, message, keypad, cancel = lay.rows(area, [1.2, 1.0, 6.0, 1.1])
            keypad = keypad.inflate(-area.width // 8, 0)
        else:
            left, keypad = lay.columns(area, [1.1, 1.0])
            field, message, _gap, cancel = lay.rows(left, [1.3, 1.6, 0.6, 1.1])
        return field, message, keypad, cancel

    def buttons(self, app: KioskApp) -> list[Button]:
        field, message, keypad, cancel = self.areas(app)
        t = app.t
        keys = keypad_buttons(keypad, max(4, app.layout.pad // 2), t("OK"), t("Delete"))
        return keys + [Button(cancel, t("Cancel"), "cancel", colour=DANGER)]

    def act(self, app: KioskApp, action: str) -> None:
        if action == "ok":
            self.submit(app)
        elif action == "cancel":
            self.cancel(app)
        else:
            self.entry.press(action)
            self.message = None

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            action = hit(self.buttons(app), event.pos)
            if action:
                self.act(app, action)
        elif event.type == pygame.KEYDOWN and event.key in KEY_ACTIONS:
            self.act(app, KEY_ACTIONS[event.key])

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        lay = app.layout
        title_bar(app, surface, self.title(app))
        field, message, _keypad, _cancel = self.areas(app)
        pygame.draw.rect(surface, (255, 255, 255), field, border_radius=lay.pad)
        inner = field.inflate(-lay.pad * 2, 0)
        size = app.fonts.fit_size(self.placeholder(), int(field.height * 0.6), inner.width, True)
        blit_text(app.fonts, surface, self.shown_value(app) or " ", size, (10, 10, 10), inner,
                  bold=True)
        if self.message:
            blit_text(app.fonts, surface, self.message, int(lay.unit * 1.1), WARN, message,
                      wrap=True)
        draw_buttons(app, surface, self.buttons(app))


class Pin(_KeypadScreen):
    name = "pin"
    audience = "officer"
    max_len = 8

    def title(self, app: KioskApp) -> str:
        return app.t("Officer PIN")

    def shown_value(self, app: KioskApp) -> str:
        return "•" * len(self.entry.value)

    def deadline(self, app: KioskApp) -> float | None:
        # A locked pad stays while its countdown runs and as long again as an untouched pad
        # after it, so the officer who waited can type.
        return max(app.last_activity, app.pin_locked_until) + app.timeouts.pin

    def locked_for(self, app: KioskApp) -> int:
        """Whole seconds until the pad takes PINs again (0: it does)."""
        return max(0, math.ceil(app.pin_locked_until - app.clock()))

    def update(self, app: KioskApp) -> None:
        wait = self.locked_for(app)
        if wait:
            self.entry.clear()
            self.message = app.t("Too many wrong PINs. Try again in {s} s.").format(s=wait)
            self.was_locked = True
        elif getattr(self, "was_locked", False):
            self.was_locked = False
            self.message = None

    def buttons(self, app: KioskApp) -> list[Button]:
        buttons = super().buttons(app)
        if self.locked_for(app):
            for b in buttons:
                b.enabled = b.action == "cancel"
        return buttons

    def submit(self, app: KioskApp) -> None:
        entered, self.entry.value = self.entry.value, ""
        locked = app.clock() < app.pin_locked_until
        if not locked and app.check_pin(entered):
            app.go("officer")
            return
        if app.clock() < app.pin_locked_until:
            self.update(app)
        else:
            left = app.timeouts.pin_attempts - app.pin_failures
            self.message = app.t("Wrong PIN ({n} tries left)").format(n=left)


class Manual(_KeypadScreen):
    name = "manual"
    audience = "officer"
    max_len = 12

    def title(self, app: KioskApp) -> str:
        return app.t("Type the 12-digit CCCD number")

    def shown_value(self, app: KioskApp) -> str:
        v = self.entry.value
        return " ".join(v[i:i + 3] for i in range(0, len(v), 3))

    def placeholder(self) -> str:
        return "000 000 000 000"

    def cancel(self, app: KioskApp) -> None:
        app.go("officer")

    def deadline(self, app: KioskApp) -> float | None:
        return app.last_activity + app.timeouts.officer

    def submit(self, app: KioskApp) -> None:
        number = self.entry.value
        if len(number) != 12:
            self.message = app.t("A CCCD number has 12 digits.")
            return
        try:
            result = app.loop.manual_entry(number)
        except (KioskError, ValueError) as e:
            log.debug("manual entry refused: %s", e)
            self.message = app.t("This number is not valid. Check it and try again.")
            return
        log.info("manual entry recorded")
        app.show_result(result, back_to="officer")


class Officer(Screen):
    name = "officer"
    audience = "officer"

    def enter(self, app: KioskApp) -> None:
        self.recent = self.load_recent(app)
        self.notice: str | None = None  # a catalogue id, translated when drawn
        self.notice_until = 0.0
        app.refresh_counts()

    @staticmethod
    def load_recent(app: KioskApp) -> list[dict[str, Any]]:
        return list(app.loop.recent(RECENT_ROWS))

    def result_arrived(self, app: KioskApp, result: ScanResult) -> None:
        """A code read while the panel is open: its row belongs in "Last check-ins" now."""
        self.recent = self.load_recent(app)
        app.refresh_counts()

    def deadline(self, app: KioskApp) -> float | None:
        return app.last_activity + app.timeouts.officer

    def expired(self, app: KioskApp) -> None:
        log.info("officer panel closed after inactivity")
        app.home()

    def areas(self, app: KioskApp) -> tuple[pygame.Rect, pygame.Rect, pygame.Rect]:
        lay = app.layout
        area = pygame.Rect(lay.pad, int(lay.unit * 2.2) + lay.pad, lay.width - 2 * lay.pad,
                           lay.body.bottom - int(lay.unit * 2.2) - 2 * lay.pad)
        if lay.portrait:
            buttons, counts, recent = lay.rows(area, [4.0, 1.3, 3.6])
        else:
            buttons, right = lay.columns(area, [1.0, 1.7])
            counts, recent = lay.rows(right, [1.0, 3.2])
        return buttons, counts, recent

    def buttons(self, app: KioskApp) -> list[Button]:
        t = app.t
        area = self.areas(app)[0]
        other = "out" if app.loop.direction == "in" else "in"
        last = app.last_recorded
        can_override = last is not None and getattr(last, "checkin_id", None) is not None
        specs = [
            (t("Type a CCCD number"), "manual", ACCENT, True),
            (t("Declare a person"), "declare", ACCENT, True),
            (t("Switch to {direction}").format(direction=t(DIRECTION_LABELS[other])), "direction",
             IN_COLOUR if other == "in" else OUT_COLOUR, True),
            (t("Change last decision"), "override", (52, 64, 84), can_override),
            (t("Provision from QR"), "provision", (52, 64, 84), app.appliance.can_provision),
            (t("Self-test"), "selftest", (52, 64, 84), app.appliance.can_selftest),
            ("English" if t.language == "vi" else "Tiếng Việt", "language", (52, 64, 84), True),
            (t("Close"), "close", DANGER, True),
        ]
        if app.layout.portrait:
            rows = app.layout.rows(area, [1.0] * 4)
            cells = []
            for row in rows:
                cells += app.layout.columns(row, [1.0, 1.0])
        else:
            cells = app.layout.rows(area, [1.0] * len(specs))
        return [Button(cell, label, action, colour=colour, enabled=enabled)
                for (label, action, colour, enabled), cell in zip(specs, cells, strict=False)]

    # Complexity over 10 on purpose: an event dispatch, one flat branch per panel entry.
    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:  # noqa: C901
        action = None
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            buttons = self.buttons(app)
            action = hit(buttons, event.pos)
            if self.explain_disabled(app, buttons, event.pos):
                return
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
            action = "close"
        if action is not None:
            self.notice = None
        if action == "manual":
            app.go("manual")
        elif action == "declare":
            app.go("declare")
        elif action == "direction":
            app.toggle_direction()
        elif action == "override":
            app.go("override")
        elif action == "provision":
            log.info("officer panel: waiting for a provisioning QR")
            app.go("provision")
        elif action == "selftest":
            app.go("selftest")
        elif action == "language":
            app.set_language("en" if app.t.language == "vi" else "vi")
        elif action == "close":
            log.info("officer panel closed")
            app.home()

    def explain_disabled(self, app: KioskApp, buttons: list[Button], pos: tuple[int, int]) -> bool:
        """A tap on a greyed entry shows why it is not available (one that does nothing
        looks broken); True if the tap was one."""
        off = next((b.action for b in buttons if not b.enabled and b.rect.collidepoint(pos)),
                   None)
        if off not in DISABLED_REASONS:
            return False
        log.info("officer panel: %s is not available here", off)
        self.notice = DISABLED_REASONS[off]
        self.notice_until = app.clock() + app.timeouts.disabled_notice
        return True

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        lay = app.layout
        t = app.t
        if self.notice is not None and app.clock() < self.notice_until:
            title_bar(app, surface, t(self.notice), WARN)
        elif app.officer_name:
            title_bar(app, surface, t("Officer panel") + "  ·  " + app.officer_name)
        else:
            title_bar(app, surface, t("Officer panel"))
        _buttons, counts_area, recent_area = self.areas(app)
        draw_buttons(app, surface, self.buttons(app))
        c = app.counts
        cells = [(t("In"), c.get("in", 0), IN_COLOUR), (t("Out"), c.get("out", 0), OUT_COLOUR),
                 (t("Go ahead"), c.get("pass", 0), COLOURS[Outcome.PASS]),
                 (t("Check"), c.get("check", 0), (150, 105, 0)),
                 (t("Stop"), c.get("stop", 0), COLOURS[Outcome.STOP]),
                 (t("Total"), c.get("total", 0), PANEL)]
        pygame.draw.rect(surface, PANEL, counts_area, border_radius=lay.pad)
        head_h = int(counts_area.height * 0.28)
        blit_text(app.fonts, surface, t("Today"), int(lay.unit * 0.9), MUTED,
                  pygame.Rect(counts_area.left + lay.pad, counts_area.top, counts_area.width,
                              head_h), align="left")
        boxes = lay.columns(pygame.Rect(counts_area.left + lay.pad, counts_area.top + head_h,
                                        counts_area.width - 2 * lay.pad,
                                        counts_area.height - head_h - lay.pad // 2),
                            [1.0] * len(cells), gap=max(3, lay.pad // 2))
        for (label, value, colour), box in zip(cells, boxes, strict=True):
            pygame.draw.rect(surface, colour, box, border_radius=lay.pad // 2)
            num, lab = lay.rows(box, [1.5, 1.0], gap=0)
            blit_text(app.fonts, surface, str(value), int(num.height * 0.75), FG, num, bold=True)
            blit_text(app.fonts, surface, label, int(lab.height * 0.7), FG,
                      lab.inflate(-4, 0))
        self.draw_recent(app, surface, recent_area)

    def draw_recent(self, app: KioskApp, surface: pygame.Surface, area: pygame.Rect) -> None:
        lay = app.layout
        t = app.t
        head_h = int(lay.unit * 1.4)
        blit_text(app.fonts, surface, t("Last check-ins"), int(lay.unit * 0.9), MUTED,
                  pygame.Rect(area.left, area.top, area.width, head_h), align="left")
        rows = lay.rows(pygame.Rect(area.left, area.top + head_h, area.width,
                                    area.height - head_h), [1.0] * RECENT_ROWS, gap=2)
        if not self.recent:
            blit_text(app.fonts, surface, t("No check-ins yet today"), lay.unit, MUTED, rows[0],
                      align="left")
        size = int(min(lay.unit * 0.9, rows[0].height * 0.7))
        table = self.recent_table(app)
        # Columns as wide as their widest text, at one size for the whole table (the largest
        # that fits) so the columns line up; what is left over is spread between them.
        ncols = len(table[0][2]) if table else 1
        gap = lay.pad
        room = area.width - lay.pad * 2 - gap * (ncols - 1)

        def widths(sz: int) -> list[int]:
            font = app.fonts.font(sz)
            extra = [0, 0, 0, 0, sz]  # the tag's outline
            return [max(font.size(texts[c])[0] for _o, _old, texts in table) + extra[c]
                    for c in range(ncols)]

        while table and size > 8 and sum(widths(size)) > room:
            size -= 1
        cols_w = widths(size) if table else []
        spare = max(0, room - sum(cols_w)) // max(1, ncols)
        drawn = []
        for (outcome, old, texts), row in zip(table, rows, strict=False):
            x, cells = row.left + lay.pad * 2, []
            for text, w in zip(texts, cols_w, strict=True):
                cells.append((text, pygame.Rect(x, row.top, w + spare, row.height)))
                x += w + spare + gap
            drawn.append((row, outcome, old, cells))
        for row, outcome, old, cells in drawn:
            self.draw_recent_row(app, surface, row, outcome, old, cells, size)

    def recent_table(self, app: KioskApp) -> list[tuple[Outcome | None, bool, list[str]]]:
        """(outcome, replaced by an override, the cells' texts) for each recent check-in."""
        t = app.t
        changed = overridden_ids(self.recent)
        table = []
        for item in self.recent[:RECENT_ROWS]:
            when, direction, who, outcome = recent_fields(item)
            old = str(item.get("id")) in changed
            texts = [local_time(app, when), t(DIRECTION_LABELS.get(direction, direction)), who,
                     t(WORDS[outcome]) if outcome else ""]
            if changed:  # the tag column is there only when a row needs it
                texts.append(t(CHANGED_TAG) if old else "")
            table.append((outcome, old, texts))
        return table

    def draw_recent_row(self, app: KioskApp, surface: pygame.Surface, row: pygame.Rect,
                        outcome: Outcome | None, old: bool,
                        cells: list[tuple[str, pygame.Rect]], size: int) -> None:
        colour = COLOURS.get(outcome, PANEL) if outcome else PANEL
        # A replaced decision is greyed and its word struck out: the override row is
        # the one that counts.
        pygame.draw.rect(surface, REPLACED if old else colour,
                         pygame.Rect(row.left, row.top, app.layout.pad, row.height))
        for i, (text, col) in enumerate(cells):
            if not text:
                continue
            if old and i == 4:
                self.draw_tag(app, surface, text, size, col)
                continue
            drawn_at = blit_text(app.fonts, surface, text, size, REPLACED_TEXT if old else FG,
                                 col, align="left", min_size=8)
            if old and i == 3:
                y = drawn_at.centery
                pygame.draw.line(surface, REPLACED_TEXT, (drawn_at.left, y),
                                 (drawn_at.right, y), max(1, size // 10))

    @staticmethod
    def draw_tag(app: KioskApp, surface: pygame.Surface, text: str, size: int,
                 col: pygame.Rect) -> None:
        """A small outlined label, e.g. "changed", left in ``col``."""
        width = min(col.width, app.fonts.font(size).size(text)[0] + size)
        pill = pygame.Rect(col.left, col.top + 1, width, col.height - 2)
        pygame.draw.rect(surface, WARN, pill, width=1, border_radius=pill.height // 2)
        blit_text(app.fonts, surface, text, size, WARN, pill.inflate(-size // 2, 0), min_size=8)


def overridden_ids(recent: list[dict[str, Any]]) -> set[str]:
    """Ids of the check-ins in ``recent`` whose decision a later override replaced."""
    return {str(r["override_of"]) for r in recent if r.get("override_of")}


def recent_fields(item: dict[str, Any]) -> tuple[Any, str, str, Outcome | None]:
    """(time, direction, masked who, outcome) from one ``loop.recent()`` row, tolerantly."""
    display = item.get("display") or {}
    if isinstance(display, dict):
        who = "  ".join(str(display[k]) for k in ("name", "id") if display.get(k))
    else:
        who = str(display)
    decision = item.get("decision")
    if isinstance(decision, dict):
        decision = decision.get("outcome")
    elif decision is not None and hasattr(decision, "outcome"):
        decision = decision.outcome
    try:
        outcome = Outcome(decision) if decision is not None else None
    except ValueError:
        outcome = None
    return item.get("time"), str(item.get("direction", "")), who, outcome


class Override(Screen):
    name = "override"
    audience = "officer"

    def enter(self, app: KioskApp) -> None:
        self.outcome: Outcome | None = None
        self.reason: str | None = None
        self.message: str | None = None
        # The decision the officer opened this screen for: a code read meanwhile becomes the
        # app's last check-in, but must not become the one changed.
        self.target: Any = app.last_recorded

    def deadline(self, app: KioskApp) -> float | None:
        return app.last_activity + app.timeouts.officer

    def buttons(self, app: KioskApp) -> list[Button]:
        t = app.t
        lay = app.layout
        area = pygame.Rect(lay.pad, int(lay.unit * 2.2) + lay.pad, lay.width - 2 * lay.pad,
                           lay.body.bottom - int(lay.unit * 2.2) - 2 * lay.pad)
        summary, outcomes, reasons, actions = lay.rows(area, [1.0, 1.4, 2.6, 1.1])
        self.summary_area = summary
        out = []
        for outcome, cell in zip(Outcome, lay.columns(outcomes, [1.0, 1.0, 1.0]), strict=True):
            selected = self.outcome is outcome
            b = Button(cell if selected else cell.inflate(-lay.pad, -lay.pad),
                       t(WORDS[outcome]), "outcome:" + outcome.value,
                       colour=COLOURS[outcome], text_colour=TEXT_ON[outcome])
            out.append(b)
        codes = list(OVERRIDE_REASONS)
        cells = []
        for row in lay.rows(reasons, [1.0, 1.0]):
            cells += lay.columns(row, [1.0, 1.0])
        for code, cell in zip(codes, cells, strict=True):
            selected = self.reason == code
            out.append(Button(cell, t(OVERRIDE_REASONS[code]), "reason:" + code,
                              colour=ACCENT if selected else (52, 64, 84)))
        cancel, confirm = lay.columns(actions, [1.0, 1.0])
        out.append(Button(cancel, t("Cancel"), "cancel", colour=DANGER))
        out.append(Button(confirm, t("Confirm"), "confirm", colour=(22, 122, 52),
                          enabled=self.outcome is not None and self.reason is not None))
        return out

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        action = None
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            action = hit(self.buttons(app), event.pos)
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
            action = "cancel"
        if action is None:
            return
        if action.startswith("outcome:"):
            self.outcome = Outcome(action.split(":", 1)[1])
        elif action.startswith("reason:"):
            self.reason = action.split(":", 1)[1]
        elif action == "cancel":
            app.go("officer")
        elif action == "confirm":
            self.confirm(app)

    def confirm(self, app: KioskApp) -> None:
        last = self.target
        if last is None or last.checkin_id is None or self.outcome is None or not self.reason:
            return
        try:
            result = app.loop.override(last.checkin_id, self.outcome, self.reason,
                                       officer=app.officer_id)
        except (KioskError, ValueError) as e:
            log.warning("override refused: %s", e)
            self.message = app.t("The decision could not be changed.")
            return
        log.info("decision overridden to %s (%s)", self.outcome.value, self.reason)
        app.show_result(result, back_to="officer")

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        t = app.t
        lay = app.layout
        title_bar(app, surface, t("Change last decision"))
        buttons = self.buttons(app)
        last = self.target
        if last is not None:
            display = last.credential.display
            who = "  ".join(str(display[k]) for k in ("name", "id") if display.get(k))
            text = f"{who}  —  {t(WORDS[Outcome(last.decision.outcome)])}"
            if self.message:
                text = self.message
            blit_text(app.fonts, surface, text, lay.unit, WARN if self.message else FG,
                      self.summary_area, align="left", wrap=True)
        draw_buttons(app, surface, buttons)
        for b in buttons:
            if b.action in ("outcome:" + (self.outcome.value if self.outcome else ""),):
                pygame.draw.rect(surface, FG, b.rect, width=max(3, lay.pad // 2),
                                 border_radius=b.rect.height // 6)
