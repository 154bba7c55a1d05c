"""The officer confirms or rejects a provisioning file a USB stick brought to an enrolled kiosk.

A stick alone never re-points an enrolled kiosk (issue 9 #3): the provisioning unit stages
the file (``kiosk.ops.provision.stage_file``) and this screen, offered when the kiosk is free,
lists what would change (old -> new), and asks for the officer PIN before Confirm or Reject.
Confirm enrols in the background (``kiosk.ops.provision.confirm_pending``) and restarts the
kiosk; Reject forgets the file; Later asks again after ``Timeouts.remind``.  The library logs what
changed or that it was rejected (INFO, no secrets).

Codes: while only the question is shown, a citizen's code is a check-in with its full result
screen (the question comes back when the kiosk is free again); once the officer taps Confirm
or Reject, an officer is at the kiosk (``officer_at_kiosk``): a code read then is decided and
shown as a compact notice (docs/ui.md), and this screen, with a PIN typed halfway, stays.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pygame

from kiosk.domain.model import Outcome
from kiosk.ui.machine import BG, Screen
from kiosk.ui.screens import FG, MUTED, OK, WARN, draw_buttons, title_bar
from kiosk.ui.technician import GREEN, body_area, draw_report, result_lines
from kiosk.ui.text import blit_text
from kiosk.ui.widgets import ACCENT, DANGER, KEY_ACTIONS, Button, Entry, hit, keypad_buttons
from offline_queue.untrusted import replaced

if TYPE_CHECKING:  # the app imports the screens
    from kiosk.ops.provision import PendingChange
    from kiosk.ui.app import KioskApp

log = logging.getLogger(__name__)

ARROW = " » "


def offer(app: KioskApp, screen: ConfirmProvision) -> bool:
    """Show the staged change on ``screen`` (the machine's ConfirmProvision) if there is one
    and it is not snoozed; the app calls this when the kiosk is free (scanning, idle, fault)."""
    from kiosk.ops import provision as prov

    appliance = app.appliance
    if appliance.state_dir is None or appliance.config_path is None:
        return False  # the demo: nothing to confirm, nowhere to write
    pending = prov.pending_change(appliance.state_dir)
    if pending is None:
        return False
    if screen.snoozed == pending.digest and app.clock() < screen.snoozed_until:
        return False
    log.info("a staged provisioning file (%s) waits for the officer's confirmation",
             pending.source)
    screen.load(pending)
    app.go(ConfirmProvision.name)
    return True


def plain(text: str) -> str:
    """Untrusted text (from the stick) as drawn: no control or bidi characters to hide in."""
    return replaced(text)


def _state_dir(app: KioskApp) -> Path:
    state_dir = app.appliance.state_dir
    if state_dir is None:
        raise RuntimeError("a staged provisioning file was answered on a kiosk without a "
                           "state folder; offer() shows the question only with one")
    return state_dir


class ConfirmProvision(Screen):
    name = "confirm_provision"
    audience = "system"

    def __init__(self) -> None:
        self.snoozed = ""  # the digest "Later" was tapped for
        self.snoozed_until = 0.0

    def officer_at_kiosk(self, app: KioskApp) -> bool:
        """Once the officer taps Confirm or Reject, an officer is at the kiosk: a code read
        then is decided and shown as a notice, and this screen (and a PIN typed halfway)
        stays; while only the question is up, a citizen's code shows its full result."""
        return self.phase != "review"

    pending: PendingChange

    def load(self, pending: PendingChange) -> None:
        self.pending = pending

    def enter(self, app: KioskApp) -> None:
        self.phase = "review"  # review | pin | working | failed | done
        self.action = ""  # what the PIN is for: confirm | reject
        self.entry = Entry(8)
        self.message: str | None = None
        self.error = ""
        self.result: Any = None
        self.job: Any = None
        self.done_at = 0.0
        app.touch()

    def busy(self, app: KioskApp) -> bool:
        return self.phase == "working"

    # --- decisions --------------------------------------------------------------------

    def later(self, app: KioskApp) -> None:
        self.snoozed = self.pending.digest
        self.snoozed_until = app.clock() + app.timeouts.remind
        log.info("provisioning file %s: decision postponed; asking again in %.0f min",
                 self.pending.source, app.timeouts.remind / 60)
        app.home()

    def submit_pin(self, app: KioskApp) -> None:
        entered, self.entry.value = self.entry.value, ""
        if app.clock() >= app.pin_locked_until and app.check_pin(entered):
            self.message = None
            if self.action == "confirm":
                self.confirm(app)
            else:
                self.reject(app)
            return
        if app.clock() < app.pin_locked_until:
            wait = math.ceil(app.pin_locked_until - app.clock())
            self.message = app.t("Too many wrong PINs. Try again in {s} s.").format(s=wait)
        else:
            self.message = app.t("Wrong PIN")

    def confirm(self, app: KioskApp) -> None:
        from kiosk.ops import provision as prov

        appliance = app.appliance
        state_dir, config_path = _state_dir(app), appliance.config_path
        if config_path is None:
            raise RuntimeError("a staged provisioning file was confirmed on a kiosk without "
                               "a config file; offer() shows the question only with one")
        self.phase, self.error = "working", ""
        log.info("officer confirmed the staged provisioning file with the PIN; enrolling")
        self.job = app.start_job("provisioning", lambda _job: prov.confirm_pending(
            state_dir, config_path=config_path, timeout=appliance.provision_timeout))

    def reject(self, app: KioskApp) -> None:
        from kiosk.ops import provision as prov

        prov.reject_pending(_state_dir(app))  # logs what was rejected
        app.provision_watch.mark_shown()  # the officer saw it; no "failed" screen after
        app.home()

    # --- frame ------------------------------------------------------------------------

    def update(self, app: KioskApp) -> None:
        if self.job is not None:
            for kind, value in self.job.poll():
                if kind == "done":
                    self.phase, self.result, self.done_at = "done", value, app.clock()
                    app.provision_watch.mark_shown()
                elif kind == "error":
                    from kiosk.ui.technician import error_text

                    self.phase, self.error = "failed", error_text(app, value)
                    log.warning("confirmed provisioning file failed: %s", self.error)
                    app.provision_watch.mark_shown()
                app.touch()

    def deadline(self, app: KioskApp) -> float | None:
        if self.phase == "done":
            return self.done_at + app.timeouts.restart_after
        if self.phase == "pin":
            return app.last_activity + app.timeouts.pin
        if self.phase in ("review", "failed"):
            return app.last_activity + app.timeouts.officer
        return None  # working: the enrolment runs to its end

    def expired(self, app: KioskApp) -> None:
        if self.phase == "done":
            app.restart()
        elif self.phase == "pin":  # a PIN typed halfway and left: back to the question
            self.phase = "review"
            self.entry.clear()
            app.touch()
        else:  # nobody answered: asked again later
            self.later(app)

    def areas(self, app: KioskApp) -> tuple[pygame.Rect, pygame.Rect]:
        """(report, buttons) for review, failed and done."""
        report, buttons = app.layout.rows(body_area(app), [4.2, 1.0])
        return report, buttons

    def pin_areas(self, app: KioskApp) -> tuple[pygame.Rect, pygame.Rect, pygame.Rect, pygame.Rect]:
        """(field, message, keypad, cancel), as on the officer PIN screen."""
        lay = app.layout
        area = body_area(app)
        if lay.portrait:
            field, message, keypad, cancel = lay.rows(area, [1.2, 1.4, 6.0, 1.1])
            return field, message, keypad.inflate(-area.width // 8, 0), cancel
        left, keypad = lay.columns(area, [1.1, 1.0])
        field, message, cancel = lay.rows(left, [1.3, 2.2, 1.1])
        return field, message, keypad, cancel

    def buttons(self, app: KioskApp) -> list[Button]:
        t = app.t
        if self.phase == "pin":
            field, _message, keypad, cancel = self.pin_areas(app)
            keys = keypad_buttons(keypad, max(4, app.layout.pad // 2), t("OK"), t("Delete"))
            return keys + [Button(cancel, t("Cancel"), "cancel", colour=DANGER)]
        area = self.areas(app)[1]
        if self.phase == "review":
            can = bool(app.settings.officer_pin)
            yes, no, later = app.layout.columns(area, [1.2, 1.0, 1.0])
            return [Button(yes, t("Confirm"), "confirm", colour=GREEN, enabled=can),
                    Button(no, t("Reject"), "reject", colour=DANGER, enabled=can),
                    Button(later, t("Later"), "later")]
        if self.phase == "failed":
            retry, no, later = app.layout.columns(area, [1.2, 1.0, 1.0])
            return [Button(retry, t("Try again"), "retry", colour=ACCENT),
                    Button(no, t("Reject"), "reject-now", colour=DANGER),
                    Button(later, t("Later"), "later")]
        if self.phase == "done":
            return [Button(area, t("Restart now"), "restart", colour=GREEN)]
        return []

    def handle(self, app: KioskApp, event: pygame.event.Event) -> None:
        action = self.action_for(app, event)
        if action is None:
            return
        app.touch()
        if self.phase == "pin":
            self.pin_key(app, action)
        elif action in ("confirm", "reject"):
            self.phase, self.action, self.message = "pin", action, None
        elif action == "later":
            self.later(app)
        elif action == "retry":  # the PIN was given for this decision a moment ago
            self.confirm(app)
        elif action == "reject-now":
            self.reject(app)
        elif action == "restart":
            app.restart()

    def action_for(self, app: KioskApp, event: pygame.event.Event) -> str | None:
        """The button tapped or the key pressed, as a button's action; None for the rest."""
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            return hit(self.buttons(app), event.pos)
        if event.type != pygame.KEYDOWN:
            return None
        if self.phase == "pin":
            return KEY_ACTIONS.get(event.key)
        if event.key == pygame.K_ESCAPE and self.phase in ("review", "failed"):
            return "later"
        return None

    def pin_key(self, app: KioskApp, action: str) -> None:
        """A key of the PIN pad: a digit, delete, OK or cancel."""
        if action == "ok":
            self.submit_pin(app)
        elif action == "cancel":
            self.phase, self.message = "review", None
            self.entry.clear()
        else:
            self.entry.press(action)
            self.message = None

    # --- drawing ----------------------------------------------------------------------

    def change_lines(self, app: KioskApp) -> list[tuple[str, tuple[int, int, int]]]:
        t = app.t
        none = "—"
        rows = {name: (plain(old), plain(new)) for name, old, new in self.pending.changes()}
        old_url, new_url = rows.pop("server_url")
        lines = [(t("Server: {url}").format(url=f"{old_url or none}{ARROW}{new_url}"), FG)]
        old_id, new_id = rows.pop("checkpoint_id")
        old_name = plain(self.pending.current.get("checkpoint_name", ""))
        new_name = rows.pop("checkpoint_name", (old_name, old_name))[1]
        old = f"{old_name} ({old_id})" if old_name and old_id else old_name or old_id or none
        new = new_id or t("the enrolment token's checkpoint")
        new = f"{new_name} ({new})" if new_name else new
        lines.append((t("Checkpoint: {name}").format(name=f"{old}{ARROW}{new}"), FG))
        for name, (old, new) in rows.items():  # technical settings: their config key names
            lines.append((f"{name}: {old or none}{ARROW}{new}", FG))
        lines.append((t("From: {source}").format(source=plain(self.pending.source)), MUTED))
        return lines

    def draw(self, app: KioskApp, surface: pygame.Surface) -> None:
        surface.fill(BG)
        t = app.t
        title_bar(app, surface, t("New settings from a USB stick"))
        if self.phase == "pin":
            self.draw_pin(app, surface)
            return
        report, _buttons = self.areas(app)
        if self.phase == "done":
            left = max(0, math.ceil(app.timeouts.restart_after - (app.clock() - self.done_at)))
            lines = result_lines(app, self.result)[:-1]
            lines.append((t("The kiosk restarts in {s} s to use the new settings.")
                          .format(s=left), OK))
            draw_report(app, surface, report, Outcome.PASS, t("Kiosk registered"), lines)
        elif self.phase == "failed":
            draw_report(app, surface, report, Outcome.STOP, t("Provisioning failed"),
                        [(self.error, WARN), (t("The old settings are unchanged."), FG)])
        elif self.phase == "working":
            draw_report(app, surface, report, Outcome.CHECK,
                        t("Registering with the central platform…"),
                        [(plain(self.pending.request.server_url), MUTED)])
        else:
            lines = self.change_lines(app)
            if not app.settings.officer_pin:
                lines.append((t("No officer PIN is set on this kiosk: a technician must "
                                "apply this file."), WARN))
            else:
                lines.append((t("Only an officer may confirm, with the PIN. Not expected? "
                                "Reject it."), WARN))
            draw_report(app, surface, report, Outcome.CHECK,
                        t("Change this kiosk's settings?"), lines)
        draw_buttons(app, surface, self.buttons(app))

    def draw_pin(self, app: KioskApp, surface: pygame.Surface) -> None:
        lay = app.layout
        t = app.t
        field, message, _keypad, _cancel = self.pin_areas(app)
        pygame.draw.rect(surface, (255, 255, 255), field, border_radius=lay.pad)
        inner = field.inflate(-lay.pad * 2, 0)
        size = app.fonts.fit_size("0" * 8, int(field.height * 0.6), inner.width, True)
        blit_text(app.fonts, surface, "•" * len(self.entry.value) or " ", size, (10, 10, 10),
                  inner, bold=True)
        prompt = (t("Officer PIN to confirm the new settings") if self.action == "confirm"
                  else t("Officer PIN to reject the new settings"))
        text, colour = (self.message, WARN) if self.message else (prompt, FG)
        blit_text(app.fonts, surface, text, int(lay.unit * 1.1), colour, message, wrap=True)
        draw_buttons(app, surface, self.buttons(app))
