"""Touch buttons and the numeric keypad (officer PIN and manual CCCD entry)."""

from __future__ import annotations

from dataclasses import dataclass

import pygame

from kiosk.ui.text import Fonts, blit_text

BUTTON = (52, 64, 84)
BUTTON_TEXT = (255, 255, 255)
ACCENT = (30, 110, 200)
DANGER = (150, 40, 40)


@dataclass
class Button:
    rect: pygame.Rect
    label: str
    action: str
    colour: tuple[int, int, int] = BUTTON
    text_colour: tuple[int, int, int] = BUTTON_TEXT
    enabled: bool = True

    def draw(self, surface: pygame.Surface, fonts: Fonts, size: int) -> None:
        colour = self.colour if self.enabled else (70, 70, 70)
        radius = max(4, self.rect.height // 6)
        pygame.draw.rect(surface, colour, self.rect, border_radius=radius)
        pygame.draw.rect(surface, (255, 255, 255), self.rect, width=max(1, size // 14),
                         border_radius=radius)
        blit_text(fonts, surface, self.label, size, self.text_colour if self.enabled
                  else (170, 170, 170), self.inner(), bold=True, wrap=True)

    def inner(self) -> pygame.Rect:
        """Where the label goes."""
        return self.rect.inflate(-max(6, self.rect.width // 12), -max(4, self.rect.height // 8))

    def fit(self, fonts: Fonts, size: int) -> int:
        """The text size, at most ``size``, at which the label fits (wrapped) inside."""
        return fonts.fit_block(self.label, size, self.inner(), True)[0]

    def hit(self, pos: tuple[int, int]) -> bool:
        return self.enabled and self.rect.collidepoint(pos)


def hit(buttons: list[Button], pos: tuple[int, int]) -> str | None:
    """Action of the button under ``pos``, or None."""
    for b in buttons:
        if b.hit(pos):
            return b.action
    return None


# Keyboard keys (a USB keypad sends the KP_ variants) mapped to keypad actions.
KEY_ACTIONS: dict[int, str] = {
    **{getattr(pygame, f"K_{d}"): d for d in "0123456789"},
    **{getattr(pygame, f"K_KP{d}"): d for d in "0123456789"},
    pygame.K_BACKSPACE: "back",
    pygame.K_DELETE: "back",
    pygame.K_RETURN: "ok",
    pygame.K_KP_ENTER: "ok",
    pygame.K_ESCAPE: "cancel",
}


def keypad_buttons(area: pygame.Rect, gap: int, ok_label: str, back_label: str
                   ) -> list[Button]:
    """A 3×4 phone-style keypad: 1–9, then ⌫ 0 OK, filling ``area``."""
    cols, rows = 3, 4
    bw = (area.width - gap * (cols - 1)) // cols
    bh = (area.height - gap * (rows - 1)) // rows
    keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "back", "0", "ok"]
    buttons = []
    for i, key in enumerate(keys):
        r, c = divmod(i, cols)
        rect = pygame.Rect(area.left + c * (bw + gap), area.top + r * (bh + gap), bw, bh)
        if key == "ok":
            buttons.append(Button(rect, ok_label, key, colour=ACCENT))
        elif key == "back":
            buttons.append(Button(rect, back_label, key))
        else:
            buttons.append(Button(rect, key, key))
    return buttons


class Entry:
    """Digits typed on the keypad, with a maximum length."""

    def __init__(self, max_len: int) -> None:
        self.max_len = max_len
        self.value = ""

    def press(self, action: str) -> None:
        if action.isdigit() and len(action) == 1 and len(self.value) < self.max_len:
            self.value += action
        elif action == "back":
            self.value = self.value[:-1]

    def clear(self) -> None:
        self.value = ""
