"""The officer panel's appliance screens: provisioning QR, self-test, and a provisioning result.

``provision`` (while it waits for or uses a provisioning QR) and ``selftest`` (while it runs)
own the camera: the app hands them the decoded codes they ``take`` so nothing read there
becomes a check-in.  Any other code is the queue's: decided and shown as a notice.  Their
work runs on a background :class:`kiosk.ui.appliance.Job`; ``update`` polls it every frame
and the screen only ever shows a message, never a traceback.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import pygame

from kiosk.domain.model import Outcome
from kiosk.errors import KioskError
from kiosk.ui.i18n import _
from kiosk.ui.machine import BG, Screen
from kiosk.ui.screens import (
    BAD,
    FG,
    MUTED,
    OK,
    PANEL,
    WARN,
    draw_buttons,
    draw_preview,
    icon,
    title_bar,
)
from kiosk.ui.text import blit_text
from kiosk.ui.widgets import ACCENT, DANGER, Button, hit

if TYPE_CHECKING:  # the app imports the screens
    from kiosk.ops.provision import Result as ProvisionResult
    from kiosk.runtime.capture import Decoded
    from kiosk.ui.app import KioskApp

log = logging.getLogger(__name__)

GREEN = (22, 122, 52)

# kiosk.ops.selftest's check names, in its order; a new one is shown by its own name.
CHECKS: dict[str, str] = {
    "camera": _("Camera"),
    "test card": _("Test card"),
    "lights and buzzer": _("Lights and buzzer"),
    "database": _("Database"),
    "disk": _("Disk"),
    "server": _("Server"),
    "clock": _("Clock"),
    "trust list and watchlist": _("Trust list and watchlist"),
}
RESULTS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "pass": (_("Passed"), OK),
    "warn": (_("Warning"), WARN),
    "fail": (_("Failed"), BAD),
    "skip": (_("Skipped"), MUTED),
}
# The questions kiosk.ops.selftest asks through confirm(); an unknown one is shown as asked.
QUESTIONS: dict[str, str] = {
    "Is the red light on?": _("Is the red light on?"),
    "Is the amber light on?": _("Is the amber light on?"),
    "Is the green light on?": _("Is the green light on?"),
    "Is the buzzer sounding?": _("Is the buzzer sounding?"),
    "Is the gate relay clicked?": _("Is the gate relay clicked?"),
}


def error_text(app: KioskApp, error: BaseException) -> str:
    """Our errors say what to do; anything else is named by type only (no traceback)."""
    if isinstance(error, KioskError | ValueError):
        return str(error)
    return app.t("Unexpected error") + f": {type(error).__name__}"


def body_area(app: KioskApp) -> pygame.Rect:
    lay = app.layout
    top = int(lay.unit * 2.2) + lay.pad
    return pygame.Rect(lay.pad, top, lay.width - 2 * lay.pad, lay.body.bottom - top - lay.pad)


def draw_report(app: KioskApp, surface: pygame.Surface, area: pygame.Rect, outcome: Outcome,
                title: str, lines: list[tuple[str, tuple[int, int, int]]]) -> None:
    """An icon and a title, then lines of text that shrink together to fit ``area``."""
    lay = app.layout
    head, rest = lay.rows(area, [1.0, 2.6])
    pic = icon(outcome, int(head.height * 0.85))
    surface.blit(pic, pic.get_rect(midleft=(head.left + lay.pad, head.centery)))
    title_area = pygame.Rect(head.left + pic.get_width() + lay.pad * 3, head.top,
                             head.width - pic.get_width() - lay.pad * 3, head.height)
    blit_text(app.fonts, surface, title, int(lay.unit * 2.0), FG, title_area, bold=True,
              wrap=True, align="left")
    if not lines:
        return
    rows = lay.rows(rest, [max(1.0, len(text) / 60) for text, _c in lines],
                    gap=max(2, lay.pad // 2))
    size = min(app.fonts.fit_block(text, int(lay.unit * 1.2), row)[0]
               for (text, _c), row in zip(lines, rows, strict=True))
    for (text, colour), row in zip(lines, rows, strict=True):
        blit_text(app.fonts, surface, text, size, colour, row, wrap=True, align="left",
                  valign="top", min_size=8)


def result_lines(app: KioskApp, result: ProvisionResult) -> list[tuple[str, tuple[int, int, int]]]:
    """What a provisioning result says, for the officer (``kiosk.ops.provision.Result``)."""
    t = app.t
    lines: list[tuple[str, tuple[int, int, int]]] = []
    if result.ok:
        name = result.checkpoint_name
        where = f"{name} ({result.checkpoint_id})" if name else result.checkpoint_id
        lines.append((t("Checkpoint: {name}").format(name=where), FG))
        lines.append((t("Device: {device}").format(device=result.device_id), FG))
        if result.server_url:
            lines.append((t("Server: {url}").format(url=result.server_url), MUTED))
    else:
        lines.append((result.message, WARN))
        lines.append((t("The old settings are unchanged."), FG))
    if result.source:
        lines.append((t("From: {source}").format(source=result.source), MUTED))
    return lines


class Provision(Screen):
    """Waits for a provisioning QR, enrols in the background, then restarts the kiosk."""

    name = "provision"
    audience = "officer"

    def takes(self, app: KioskApp, decoded: Decoded) -> bool:
        """Every code while waiting or enrolling; later only the provisioning QR still held up
        (a citizen's code after a result is decided and shown as a notice)."""
        from kiosk.ops import provision as prov

        return self.phase in ("waiting", "working") or prov.is_provisioning_qr(decoded.raw)

    def enter(self, app: KioskApp) -> None:
        self.phase = "waiting"  # waiting | working | failed | done
        self.message: str | None = None
        self.error = ""
        self.result: Any = None
        self.server = ""
        self.job: Any = None
        self.done_at = 0.0

    def busy(self, app: KioskApp) -> bool:
        return self.phase == "working"

    def code(self, app: KioskApp, decoded: Decoded) -> None:
        """A code the camera read while this screen is open (never a check-in)."""
        from kiosk.ops import provision as prov

        if self.phase != "waiting":
            return  # the same QR, still held up, is read many times a second
        app.touch()
        if not prov.is_provisioning_qr(decoded.raw):
            log.info("provisioning: the code shown is not a provisioning QR")
            self.message = app.t("This is not a provisioning code.")
            return
        try:
            request = prov.from_qr_payload(decoded.raw)
        except prov.ProvisionError as e:  # the message never quotes the token
            self.fail(app, str(e))
            return
        self.server = request.server_url
        self.phase = "working"
        self.message = None
        log.info("provisioning QR read; enrolling with %s", request.server_url)
        from kiosk.ui.appliance import enrol_from_qr

        appliance = app.appliance
        self.job = app.start_job("provisioning", lambda _job: enrol_from_qr(request, appliance))

    def fail(self, app: KioskApp, message: str) -> None:
        log.warning("provisioning from the QR failed: %s", message)
        self.phase, self.error = "failed", message
        app.provision_watch.mark_shown()  # seen here; not again after a restart

    def update(self, app: KioskApp) -> None:
        if self.job is not None:
            for kind, value in self.job.poll():
                if kind == "done":
                    self.phase, self.result, self.done_at = "done", value, app.clock()
                    app.provision_watch.mark_shown()
                    app.touch()
                elif kind == "error":
                    self.fail(app, error_text(app, value))
                    app.touch()

    def deadline(self, app: KioskApp) -> float | None:
        if self.phase == "done":
            return self.done_at + app.timeouts.restart_after
        if self.phase == "working":
            return None
        return app.last_activity + app.timeouts.officer

    def expired(self, app: KioskApp) -> None:
        if self.phase == "done":
            app.restart()
        else:
            app.home()

    def areas(self, app: KioskApp) -> tuple[pygame.Rect, pygame.Rect, pygame.Rect]:
        """(camera or report, text, buttons)."""
        lay = app.layout
        area = body_area(app)
        if self.phase in ("failed", "done"):
            report, buttons = lay.rows(area, [4.0, 1.0])
            return report, report, buttons
        if lay.portrait:
            camera, text, buttons = lay.rows(area, [3.0, 2.2, 0.9])
            return camera, text, buttons
        camera, right = lay.columns(area, [1.25, 1.0])
        text, buttons = lay.rows(right, [3.0, 1.0])
        return camera, text, buttons

    def buttons(self, app: KioskApp) -> list[Button]:
        t = app.t
        area = self.areas(app)[2]
        if self.phase == "waiting":
            return [Button(area, t("Cancel"), "cancel", colour=DANGER)]
        if self.phase == "failed":
            retry, back = app.layout.columns(area, [1.0, 1.0])
            return [Button(retry, t("Try again"), "retry", colour=ACCENT),
                    Button(back, t("Back"), "back")]
        if self.phase == "done":
            return [Button(area, t("Restart now"), "restart", colour=GREEN)]
        return []

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        action = None
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            action = hit(self.buttons(app), event.pos)
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE:
            action = {"waiting": "cancel", "failed": "back"}.get(self.phase)
        if action in ("cancel", "back"):
            app.go("officer")
        elif action == "retry":
            self.enter(app)
        elif action == "restart":
            app.restart()

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        lay = app.layout
        t = app.t
        title_bar(app, surface, t("Provision from QR"))
        visual, text, _buttons = self.areas(app)
        if self.phase == "failed":
            draw_report(app, surface, visual, Outcome.STOP, t("Provisioning failed"),
                        [(self.error, WARN), (t("The old settings are unchanged."), FG)])
        elif self.phase == "done":
            left = max(0, math.ceil(app.timeouts.restart_after - (app.clock() - self.done_at)))
            lines = result_lines(app, self.result)[:-1]  # "From: provisioning QR" is obvious
            lines.append((t("The kiosk restarts in {s} s to use the new settings.")
                          .format(s=left), OK))
            draw_report(app, surface, visual, Outcome.PASS, t("Kiosk registered"), lines)
        else:
            draw_preview(app, surface, visual)
            if self.phase == "working":
                texts = [(t("Registering with the central platform…"), FG, 1.5, True),
                         (self.server, MUTED, 1.0, False)]
            else:
                texts = [(t("Show the provisioning QR code to the camera"), FG, 1.5, True),
                         (t("Codes read now are not check-ins."), MUTED, 1.0, False)]
                if self.message:
                    texts.append((self.message, WARN, 1.1, True))
            rows = lay.rows(text, [2.0, 1.0, 1.0][:len(texts)])
            for (words, colour, scale, bold), row in zip(texts, rows, strict=True):
                blit_text(app.fonts, surface, words, int(lay.unit * scale), colour, row,
                          bold=bold, wrap=True, align="left")
        draw_buttons(app, surface, self.buttons(app))


class SelfTest(Screen):
    """Runs the self-test in the background: a live list, light questions, the verdict."""

    name = "selftest"
    audience = "officer"

    def takes(self, app: KioskApp, decoded: Decoded) -> bool:
        """Every code while the test runs (its lights are held), and the test card still held
        up after it; a citizen's code after the test is decided and shown as a notice."""
        from kiosk.ops.selftest import TEST_CARD

        return self.busy(app) or decoded.text == TEST_CARD

    def enter(self, app: KioskApp) -> None:
        self.start(app)

    def start(self, app: KioskApp) -> None:
        self.order = list(CHECKS)
        self.current: str | None = None
        self.report: Any = None
        self.error: str | None = None
        self.question: str | None = None
        self.stopping = False
        runner = app.appliance.selftest
        if runner is None:  # the entry is disabled then; never a dead end
            self.job = None
            self.error = app.t("Not available on this kiosk")
            return
        # The test switches each light itself through the loop's own Signals; the loop's
        # pattern changes wait until it is over (ScanLoop.lend_signals).
        app.hold_signals()
        log.info("self-test started from the officer panel")
        self.job = app.start_job("self-test", lambda job: runner(
            lambda name: job.post("progress", name),
            lambda question: job.ask(question, app.timeouts.light_question)))

    def busy(self, app: KioskApp) -> bool:
        return self.job is not None and not self.job.finished

    def code(self, app: KioskApp, decoded: Decoded) -> None:
        log.debug("a code read during the self-test is not a check-in")

    def update(self, app: KioskApp) -> None:
        if self.job is not None:
            for kind, value in self.job.poll():
                if kind == "progress":
                    self.current = value
                    if value not in self.order:
                        self.order.append(value)
                elif kind == "question":
                    self.question = value
                    app.touch()
                elif kind == "answered":
                    self.question = None
                elif kind == "done":
                    self.report, self.current, self.question = value, None, None
                    app.touch()
                elif kind == "error":
                    self.error, self.current, self.question = error_text(app, value), None, None
                    app.touch()

    def deadline(self, app: KioskApp) -> float | None:
        return None if self.busy(app) else app.last_activity + app.timeouts.officer

    def results(self) -> dict[str, Any]:
        if self.report is None:
            return {}
        return {c.name: c for c in self.report.checks}

    def areas(self, app: KioskApp) -> tuple[pygame.Rect, pygame.Rect, pygame.Rect, pygame.Rect]:
        """(check list, camera, prompt, buttons)."""
        lay = app.layout
        area = body_area(app)
        if lay.portrait:
            checks, middle, buttons = lay.rows(area, [4.6, 2.0, 0.8])
            camera, prompt = lay.columns(middle, [1.0, 1.0])
        else:
            checks, right = lay.columns(area, [1.45, 1.0])
            camera, prompt, buttons = lay.rows(right, [2.0, 1.2, 0.9])
        return checks, camera, prompt, buttons

    def buttons(self, app: KioskApp) -> list[Button]:
        t = app.t
        area = self.areas(app)[3]
        if self.question is not None:
            yes, no = app.layout.columns(area, [1.0, 1.0])
            return [Button(yes, t("Yes"), "yes", colour=GREEN),
                    Button(no, t("No"), "no", colour=DANGER)]
        if self.busy(app):
            return [Button(area, t("Stop the test"), "stop", colour=DANGER,
                           enabled=not self.stopping)]
        again, back = app.layout.columns(area, [1.0, 1.0])
        return [Button(again, t("Run again"), "again", colour=ACCENT,
                       enabled=app.appliance.selftest is not None),
                Button(back, t("Back"), "back")]

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        action = None
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            action = hit(self.buttons(app), event.pos)
        elif event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE and \
                not self.busy(app):
            action = "back"
        if action in ("yes", "no") and self.job is not None:
            log.info("self-test: officer answered %s to %r", action, self.question)
            self.job.answer(action == "yes")
            self.question = None
        elif action == "stop" and self.job is not None:
            log.info("self-test stopped by the officer")
            self.stopping = True
            self.job.cancel()
        elif action == "again":
            self.start(app)
        elif action == "back":
            app.go("officer")

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        lay = app.layout
        t = app.t
        title_bar(app, surface, t("Self-test"))
        checks, camera, prompt, _buttons = self.areas(app)
        self.draw_checks(app, surface, checks)
        draw_preview(app, surface, camera, guide=self.current == "test card")
        if self.question is not None:
            text, colour = t(QUESTIONS.get(self.question, self.question)), FG
        elif self.error is not None:
            text, colour = self.error, BAD
        elif self.report is not None:
            text, colour = ((t("Self-test passed"), OK) if self.report.ok
                            else (t("Self-test failed"), BAD))
        elif self.stopping:
            text, colour = t("Stopping…"), WARN
        elif self.current == "test card":
            text, colour = t("Hold the printed test card in front of the camera"), FG
        else:
            text, colour = t("Running…"), MUTED
        blit_text(app.fonts, surface, text, int(lay.unit * 1.5), colour, prompt, bold=True,
                  wrap=True)
        draw_buttons(app, surface, self.buttons(app))

    def draw_checks(self, app: KioskApp, surface: pygame.Surface, area: pygame.Rect) -> None:
        lay = app.layout
        t = app.t
        results = self.results()
        rows = lay.rows(area, [1.0] * len(self.order), gap=max(2, lay.pad // 3))
        started = self.order.index(self.current) if self.current in self.order else -1
        cells = []
        for i, (name, row) in enumerate(zip(self.order, rows, strict=True)):
            check = results.get(name)
            if check is not None:
                status, colour = RESULTS.get(check.result, (check.result, MUTED))
                status, detail = t(status), check.detail
            elif name == self.current:
                status, colour, detail = t("Running…"), FG, ""
            elif self.report is None and i < started:
                status, colour, detail = t("Done"), MUTED, ""
            else:
                status, colour, detail = t("Waiting"), MUTED, ""
            cells.append((row, t(CHECKS.get(name, name)), status, colour, detail))
        parts = []
        for row in rows:
            top, bottom = lay.rows(row.inflate(-lay.pad * 2, -2), [1.3, 1.0], gap=0)
            parts.append((top, bottom, lay.columns(top, [2.2, 1.0], gap=lay.pad // 2)))
        # One size for the names and statuses, so the list reads as a table.
        size = min([app.fonts.fit_size(label, int(lay.unit * 1.0), cols[0].width, True, 8)
                    for (_r, label, _s, _c, _d), (_t, _b, cols) in zip(cells, parts, strict=True)]
                   + [app.fonts.fit_size(status, int(lay.unit * 1.0), cols[1].width, True, 8)
                      for (_r, _l, status, _c, _d), (_t, _b, cols) in zip(cells, parts,
                                                                          strict=True)]
                   + [int(parts[0][0].height * 0.8)])
        for (row, label, status, colour, detail), (_top, bottom, cols) in zip(cells, parts,
                                                                             strict=True):
            pygame.draw.rect(surface, PANEL, row, border_radius=max(2, lay.pad // 2))
            pygame.draw.rect(surface, colour, pygame.Rect(row.left, row.top, max(4, lay.pad // 2),
                                                          row.height))
            blit_text(app.fonts, surface, label, size, FG, cols[0], bold=True, align="left",
                      min_size=8)
            blit_text(app.fonts, surface, status, size, colour, cols[1], bold=True,
                      align="right", min_size=8)
            if detail:
                blit_text(app.fonts, surface, detail, int(bottom.height * 0.85), MUTED, bottom,
                          align="left", min_size=8)


class Provisioned(Screen):
    """The result of a provisioning file imported since the last start: once, then away."""

    name = "provisioned"
    audience = "officer"

    result: ProvisionResult

    def load(self, result: ProvisionResult) -> None:
        self.result = result

    def enter(self, app: KioskApp) -> None:
        result = self.result
        self.until = app.clock() + app.timeouts.provisioned
        app.provision_watch.mark_shown()
        log.info("showing the last provisioning result (%s, %s)",
                 "ok" if result.ok else "failed", result.source or "unknown source")

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        if event.type == pygame.MOUSEBUTTONDOWN and not app.layout.status.collidepoint(event.pos):
            app.home()
        elif event.type == pygame.KEYDOWN and event.key in (pygame.K_RETURN, pygame.K_KP_ENTER,
                                                            pygame.K_ESCAPE):
            app.home()

    def deadline(self, app: KioskApp) -> float | None:
        return self.until

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        lay = app.layout
        t = app.t
        res = self.result
        title_bar(app, surface, t("Provisioning"))
        area = body_area(app)
        report, hint = lay.rows(area, [5.0, 0.7])
        draw_report(app, surface, report, Outcome.PASS if res.ok else Outcome.STOP,
                    t("Kiosk registered") if res.ok else t("Provisioning failed"),
                    result_lines(app, res))
        blit_text(app.fonts, surface, t("Tap to continue"), lay.unit, MUTED, hint)
        left = min(1.0, max(0.0, self.until - app.clock()) / app.timeouts.provisioned)
        bar_h = max(4, lay.unit // 4)
        pygame.draw.rect(surface, FG, pygame.Rect(0, lay.body.bottom - bar_h,
                                                  int(lay.width * left), bar_h))
