"""Fonts and text: the bundled Noto Sans, NFC everywhere, fitting text into boxes.

pygame's default font lacks most Vietnamese letters, so only the bundled Noto Sans
(``images/fonts``) is used.  ``pygame.font`` (SDL_ttf + HarfBuzz) places stacked marks
correctly for NFC text; every string is normalised before it is measured or drawn.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from importlib import resources
from pathlib import Path
from typing import TypeVar

import pygame

REGULAR = "NotoSans-Regular.ttf"
BOLD = "NotoSans-Bold.ttf"


def font_path(bold: bool = False) -> Path:
    """Path of the bundled font file (installed with the ``images`` package)."""
    return Path(str(resources.files("images").joinpath("fonts", BOLD if bold else REGULAR)))


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


_T = TypeVar("_T")


def _remember(cache: dict[tuple[object, ...], _T], key: tuple[object, ...], value: _T) -> _T:
    """Keep ``value`` under ``key`` in a bounded cache and return it."""
    if len(cache) > 4096:  # the clock and counters make new strings all day
        cache.clear()
    cache[key] = value
    return value


class Fonts:
    """Font objects by (pixel size, bold) and a bounded cache of rendered strings."""

    def __init__(self, max_rendered: int = 512) -> None:
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        self._rendered: OrderedDict[tuple[object, ...], pygame.Surface] = OrderedDict()
        self._max = max_rendered
        # Fitting measures text many times; the same strings come back every frame.
        self._sizes: dict[tuple[object, ...], int] = {}
        self._blocks: dict[tuple[object, ...], tuple[int, list[str]]] = {}

    def font(self, size: int, bold: bool = False) -> pygame.font.Font:
        key = (max(6, int(size)), bold)
        f = self._fonts.get(key)
        if f is None:
            f = pygame.font.Font(str(font_path(bold)), key[0])
            self._fonts[key] = f
        return f

    def render(
        self, text: str, size: int, color: tuple[int, int, int], bold: bool = False
    ) -> pygame.Surface:
        """Antialiased text on a transparent surface, cached (most strings repeat each frame)."""
        key = (text, int(size), color, bold)
        surf = self._rendered.get(key)
        if surf is not None:
            self._rendered.move_to_end(key)
            return surf
        surf = self.font(size, bold).render(nfc(text), True, color)
        self._rendered[key] = surf
        if len(self._rendered) > self._max:
            self._rendered.popitem(last=False)
        return surf

    def fit_size(self, text: str, size: int, max_width: int, bold: bool = False,
                 min_size: int = 10) -> int:
        """The largest size ≤ ``size`` at which ``text`` fits ``max_width`` on one line."""
        key = (text, int(size), max_width, bold, min_size)
        fit = self._sizes.get(key)
        if fit is None:
            fit = _remember(self._sizes, key, self._fit_size(text, size, max_width, bold,
                                                             min_size))
        return fit

    def _fit_size(self, text: str, size: int, max_width: int, bold: bool, min_size: int) -> int:
        text = nfc(text)
        width = self.font(size, bold).size(text)[0]
        if width <= max_width:
            return int(size)
        # Text width scales almost linearly with size: one guess, then step down.
        guess = max(min_size, int(size * max_width / max(width, 1)))
        while guess > min_size and self.font(guess, bold).size(text)[0] > max_width:
            guess -= 1
        return guess

    def wrap(self, text: str, size: int, max_width: int, bold: bool = False) -> list[str]:
        """Break ``text`` into lines no wider than ``max_width`` (at spaces; long words split)."""
        font = self.font(size, bold)
        lines: list[str] = []
        for paragraph in nfc(text).split("\n"):
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if font.size(candidate)[0] <= max_width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                while font.size(word)[0] > max_width and len(word) > 1:
                    cut = len(word) - 1
                    while cut > 1 and font.size(word[:cut])[0] > max_width:
                        cut -= 1
                    lines.append(word[:cut])
                    word = word[cut:]
                line = word
            lines.append(line)
        return lines

    def fit_block(self, text: str, size: int, rect: pygame.Rect, bold: bool = False,
                  min_size: int = 10, spacing: float = 1.15) -> tuple[int, list[str]]:
        """Size and lines so that wrapped ``text`` fits inside ``rect``."""
        key = (text, int(size), rect.width, rect.height, bold, min_size, spacing)
        block = self._blocks.get(key)
        if block is None:
            block = _remember(self._blocks, key,
                              self._fit_block(text, size, rect, bold, min_size, spacing))
        return block

    def _fit_block(self, text: str, size: int, rect: pygame.Rect, bold: bool, min_size: int,
                   spacing: float) -> tuple[int, list[str]]:
        s = int(size)
        # Shrink until the longest word fits: a word broken in two reads as two words.
        longest = max(nfc(text).split(), key=len, default="")
        while s > min_size and self.font(s, bold).size(longest)[0] > rect.width:
            s = max(min_size, int(s * 0.9))
        while True:
            lines = self.wrap(text, s, rect.width, bold)
            height = int(len(lines) * self.font(s, bold).get_linesize() * spacing)
            if height <= rect.height or s <= min_size:
                return s, lines
            s = max(min_size, int(s * 0.9))


def balance(fonts: Fonts, text: str, size: int, rect: pygame.Rect, bold: bool = False,
            min_size: int = 10) -> tuple[str, int]:
    """``text`` and a size for ``blit_text(..., wrap=True)`` in ``rect``, two lines made even.

    Wrapped greedily, a headline can leave one word alone on its second line ("KHÔNG PHẢI
    MÃ CÁ / NHÂN"); breaking at the space that makes the lines most even reads as one
    phrase.  Text that fits on one line, or needs more than two, is returned as it is.
    """
    text = nfc(text)
    s, lines = fonts.fit_block(text, size, rect, bold, min_size)
    words = text.split(" ")
    if len(lines) != 2 or "\n" in text:
        return text, s
    font = fonts.font(s, bold)
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    first, second = min(splits, key=lambda p: max(font.size(p[0])[0], font.size(p[1])[0]))
    return f"{first}\n{second}", s


def blit_text(
    fonts: Fonts,
    surface: pygame.Surface,
    text: str,
    size: int,
    color: tuple[int, int, int],
    rect: pygame.Rect,
    *,
    bold: bool = False,
    align: str = "center",
    valign: str = "center",
    wrap: bool = False,
    min_size: int = 10,
) -> pygame.Rect:
    """Draw ``text`` inside ``rect``, shrinking (and wrapping if asked) so nothing is clipped."""
    if wrap:
        s, lines = fonts.fit_block(text, size, rect, bold, min_size)
    else:
        s, lines = fonts.fit_size(text, size, rect.width, bold, min_size), [nfc(text)]
    line_h = int(fonts.font(s, bold).get_linesize() * 1.15) if len(lines) > 1 else None
    surfs = [fonts.render(line, s, color, bold) for line in lines]
    total = sum(line_h or sf.get_height() for sf in surfs) if line_h else surfs[0].get_height()
    if valign == "top":
        y = rect.top
    elif valign == "bottom":
        y = rect.bottom - total
    else:
        y = rect.top + (rect.height - total) // 2
    drawn = pygame.Rect(rect.left, y, 0, 0)
    for sf in surfs:
        if align == "left":
            x = rect.left
        elif align == "right":
            x = rect.right - sf.get_width()
        else:
            x = rect.left + (rect.width - sf.get_width()) // 2
        surface.blit(sf, (x, y))
        drawn.union_ip(pygame.Rect(x, y, sf.get_width(), sf.get_height()))
        y += line_h or sf.get_height()
    return drawn
