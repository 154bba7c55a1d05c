"""Masked display forms: what the queue behind a citizen may see on the screen."""

from __future__ import annotations

import unicodedata

from kiosk.domain.credentials._text import MAX_NAME, clean


def mask_name(name: str) -> str:
    """``Nguyễn Văn An`` -> ``Nguyễn V*** A*``: family name, then initials only.

    Vietnamese names are written family name first; middle names get ``***`` and the
    last given name ``*`` so the length of the real name does not show.
    """
    words = clean(unicodedata.normalize("NFC", name), limit=MAX_NAME)[0].split()
    if not words:
        return ""
    out = [words[0]]
    for i, word in enumerate(words[1:], start=1):
        out.append(word[0] + ("*" if i == len(words) - 1 else "***"))
    # Short words grow when masked; the screen's line holds a name of MAX_NAME.
    return " ".join(out)[:MAX_NAME].rstrip()


def mask_id(value: str, keep: int = 4) -> str:
    """``001085012345`` -> ``********2345``: only the last ``keep`` characters show.

    Always eight stars: the screen stays short for a 30-character UVCI and the
    masked form does not tell which kind of number it was.
    """
    value = unicodedata.normalize("NFC", value)
    if len(value) <= keep:
        return "*" * len(value)
    return "*" * 8 + value[-keep:]
