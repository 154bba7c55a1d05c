"""Vietnamese letters on a touchscreen: type the letter, then tap its mark.

The officer's keyboard (``kiosk.ui.declare``) has plain letter keys, a ``đ`` key and eight
mark keys: the five tones (sắc, huyền, hỏi, ngã, nặng) and the three shapes (circumflex
``â ê ô``, breve ``ă``, horn ``ơ ư``).  A mark applies to the word being typed, wherever its
vowel is: ``Nguyen`` + circumflex -> ``Nguyên``, + huyền -> ``Nguyền``... + ngã ->
``Nguyễn``.  The same mark again takes it off (as Telex does with a doubled key); another
tone replaces the tone.  The tone is placed by the usual rule (:func:`tone_position`), and
moves when a shape changes which vowel carries it.

Why marks after the letter rather than Telex (``Nguyeenx``): with gloves on a 7" panel every
key must be big, so the keyboard has no room for a hidden grammar; a key that shows the mark it
puts (``á à ả ã ạ â ă ơ``) needs no training, and an officer who knows Telex finds the same
order (letter first, mark after).  Letters typed at the start of a word are capitals (names
and places), so there is no shift key.

Every function here is pure: the screen keeps the text, these return the new text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# Combining marks: the three shapes and the five tones (Unicode's decomposition of NFC text).
CIRCUMFLEX, BREVE, HORN = "\u0302", "\u0306", "\u031b"
ACUTE, GRAVE, HOOK, TILDE, DOT = "\u0301", "\u0300", "\u0309", "\u0303", "\u0323"
SHAPES = (CIRCUMFLEX, BREVE, HORN)
TONES = (ACUTE, GRAVE, HOOK, TILDE, DOT)
# The mark keys, in the keyboard's order, named as Vietnamese teachers name them.
MARKS: dict[str, str] = {
    "sac": ACUTE, "huyen": GRAVE, "hoi": HOOK, "nga": TILDE, "nang": DOT,
    "mu": CIRCUMFLEX, "trang": BREVE, "moc": HORN,
}
# What each mark key shows: the mark on a letter it fits.
MARK_LABELS: dict[str, str] = {
    "sac": "á", "huyen": "à", "hoi": "ả", "nga": "ã", "nang": "ạ",
    "mu": "â", "trang": "ă", "moc": "ơ",
}
VOWELS = frozenset("aeiouy")
# Which plain vowels take which shape.
TAKES: dict[str, frozenset[str]] = {
    CIRCUMFLEX: frozenset("aeo"), BREVE: frozenset("a"), HORN: frozenset("ou"),
}
# The Vietnamese vowels with their shape (12) and the letters a name may use.
BASE_VOWELS = ("a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y")
CONSONANTS = "bcdđghklmnpqrstvx"


@dataclass
class Letter:
    """One character of the word being marked: its plain letter, shape and tone, and case."""

    base: str  # a plain lower-case letter, or "đ", or any other character
    shape: str = ""
    tone: str = ""
    upper: bool = False

    @classmethod
    def of(cls, char: str) -> Letter:
        decomposed = unicodedata.normalize("NFD", char)
        base, marks = decomposed[0], decomposed[1:]
        shape = next((m for m in marks if m in SHAPES), "")
        tone = next((m for m in marks if m in TONES), "")
        if len(marks) != bool(shape) + bool(tone) or base.lower() not in VOWELS and marks:
            return cls(char)  # a character this keyboard does not make: kept as it is
        return cls(base.lower(), shape, tone, base.isupper())

    @property
    def vowel(self) -> bool:
        return self.base in VOWELS

    def text(self) -> str:
        base = self.base.upper() if self.upper else self.base
        return unicodedata.normalize("NFC", base + self.shape + self.tone)


def _split(text: str) -> tuple[str, list[Letter]]:
    """(everything before the last word, the last word's letters)."""
    cut = len(text)
    while cut > 0 and unicodedata.category(text[cut - 1])[0] == "L":
        cut -= 1
    return text[:cut], [Letter.of(c) for c in text[cut:]]


def _join(head: str, word: list[Letter]) -> str:
    return head + "".join(letter.text() for letter in word)


def _cluster(word: list[Letter]) -> list[int]:
    """Positions of the word's last run of vowels, without the ``u`` of ``qu`` and the
    ``i`` of ``gi`` (consonants there: ``quý``, ``giá``)."""
    end = len(word)
    while end > 0 and not word[end - 1].vowel:
        end -= 1
    start = end
    while start > 0 and word[start - 1].vowel:
        start -= 1
    run = list(range(start, end))
    if len(run) > 1 and start > 0 and not word[start].shape:
        before = word[start - 1].base
        if (before, word[start].base) in (("q", "u"), ("g", "i")):
            run = run[1:]
    return run


def tone_position(word: list[Letter]) -> int | None:
    """Where the tone goes in ``word``; None when it has no vowel.

    A shaped vowel takes it (the last one: ``ươ`` -> ``ơ``, ``người``); else one vowel takes
    it; of three, the middle (``ngoài``); of two, the second when a consonant follows
    (``toán``), else the first (``hòa``, ``thủy``, as most Vietnamese keyboards place it).
    """
    run = _cluster(word)
    if not run:
        return None
    shaped = [i for i in run if word[i].shape]
    if shaped:
        return shaped[-1]
    if len(run) == 1:
        return run[0]
    if len(run) >= 3:
        return run[1]
    return run[1] if run[-1] < len(word) - 1 else run[0]


def type_letter(text: str, letter: str) -> str:
    """``text`` with ``letter`` typed: a capital at the start of a word, else small."""
    at_start = not text or unicodedata.category(text[-1])[0] != "L"
    letter = letter.upper() if at_start else letter.lower()
    if not at_start:
        # The tone stays where the rule puts it as the word grows ("hòa" + "n" -> "hoàn").
        head, word = _split(text)
        tone = next((w.tone for w in word if w.tone), "")
        word.append(Letter.of(letter))
        if tone:
            return _join(head, _placed(word, tone))
        return _join(head, word)
    return text + letter


def _placed(word: list[Letter], tone: str) -> list[Letter]:
    for w in word:
        w.tone = ""
    at = tone_position(word)
    if at is not None:
        word[at].tone = tone
    return word


def apply_mark(text: str, mark: str) -> str:
    """``text`` with the mark key ``mark`` (a name of :data:`MARKS`) applied to its last word.

    Returns ``text`` unchanged when the word has no letter the mark fits (the screen says so).
    """
    combining = MARKS[mark]
    head, word = _split(text)
    if combining in TONES:
        at = tone_position(word)
        if at is None:
            return text
        tone = "" if word[at].tone == combining else combining
        return _join(head, _placed(word, tone))
    tone = next((w.tone for w in word if w.tone), "")
    targets = _shape_targets(word, combining)
    if not targets:
        return text
    off = all(word[i].shape == combining for i in targets)
    for i in targets:
        word[i].shape = "" if off else combining
    return _join(head, _placed(word, tone) if tone else word)


def _shape_targets(word: list[Letter], shape: str) -> list[int]:
    """The letters a shape goes on: the last vowel of the word that takes it, and for the
    horn on ``uo`` both (``ươ``: ``trường``, ``người``)."""
    run = _cluster(word) or []
    fits = [i for i in run if word[i].base in TAKES[shape]]
    if not fits:
        return []
    last = fits[-1]
    if (shape == HORN and word[last].base == "o" and last - 1 in fits
            and word[last - 1].base == "u"):
        return [last - 1, last]
    return [last]


def backspace(text: str) -> str:
    """``text`` without its last character (a marked letter goes whole)."""
    return text[:-1]


def space(text: str) -> str:
    """A space between words; never two, never at the start."""
    if not text or text.endswith(" "):
        return text
    return text + " "


def compose(base: str, shape: str = "", tone: str = "") -> str:
    """One letter as the NFC character a keyboard should make (the tests' reference)."""
    return unicodedata.normalize("NFC", base + shape + tone)
