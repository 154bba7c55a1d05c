"""Screen strings from gettext catalogues (Vietnamese by default, English switchable).

Message ids are the English source strings; ``kiosk/locale/<lang>/LC_MESSAGES`` holds
the ``.po`` (edited by people) and the ``.mo`` (what gettext reads).  The ``.mo`` files
are committed and rebuilt with ``python -m kiosk.ui.i18n``; a test fails when one is
out of date, so the appliance never needs gettext tools installed.

Decision reasons are not here: their wording belongs to ``kiosk.domain.reasons.REASONS``.
"""

from __future__ import annotations

import ast
import gettext
import struct
import sys
import unicodedata
from pathlib import Path

DOMAIN = "checkpoint-kiosk"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def _(message: str) -> str:
    """Mark a string for the catalogues; translation happens at draw time."""
    return message


class Translator:
    """Translate UI strings for the current language; every result is NFC."""

    def __init__(self, language: str = "vi", locale_dir: Path = LOCALE_DIR) -> None:
        self._dir = locale_dir
        self._catalogues: dict[str, gettext.NullTranslations] = {}
        self.language = language
        self.set_language(language)

    def set_language(self, language: str) -> None:
        if language not in self._catalogues:
            mo = self._dir / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
            try:
                with mo.open("rb") as fh:
                    self._catalogues[language] = gettext.GNUTranslations(fh)
            except OSError as e:
                from kiosk.errors import ConfigError

                raise ConfigError(
                    f"no screen catalogue for language {language!r} at {mo}; "
                    "run `python -m kiosk.ui.i18n` to build the .mo files"
                ) from e
        self.language = language

    def __call__(self, message: str) -> str:
        return unicodedata.normalize("NFC", self._catalogues[self.language].gettext(message))

    def reason(self, code: str) -> str:
        """Plain-language text of a decision reason code, in the current language."""
        return reason_text(code, self.language)


def reason_text(code: str, language: str) -> str:
    """Text for a reason code from ``kiosk.domain.reasons.REASONS``; the code itself until that
    exists."""
    try:
        from kiosk.domain.reasons import REASONS
    except ModuleNotFoundError as e:
        if e.name != "kiosk.domain.reasons":
            raise
        return code
    pair = REASONS.get(code)
    if pair is None:
        return code
    return unicodedata.normalize("NFC", pair[0] if language == "vi" else pair[1])


# --- .po → .mo ------------------------------------------------------------------------


def parse_po(text: str) -> dict[str, str]:
    """msgid → msgstr of a simple .po file (no plurals or contexts; the header has msgid "")."""
    entries: dict[str, str] = {}
    msgid: list[str] | None = None
    msgstr: list[str] | None = None
    current: list[str] | None = None
    fuzzy = pending_fuzzy = False

    def flush() -> None:
        nonlocal msgid, msgstr, current
        if msgid is not None and msgstr is not None and not fuzzy:
            entries["".join(msgid)] = "".join(msgstr)
        msgid = msgstr = current = None

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#,") and "fuzzy" in line:
            pending_fuzzy = True
            continue
        if line.startswith("#"):
            continue
        if line.startswith("msgid "):
            flush()
            fuzzy, pending_fuzzy = pending_fuzzy, False
            msgid = current = []
            line = line[6:]
        elif line.startswith("msgstr "):
            msgstr = current = []
            line = line[7:]
        if current is None or not (line.startswith('"') and line.endswith('"')):
            raise ValueError(f"line {number} of the .po file is not understood: {raw!r}")
        current.append(ast.literal_eval(line))
    flush()
    return entries


def build_mo(entries: dict[str, str]) -> bytes:
    """The GNU .mo encoding of ``entries`` (sorted ids, no hash table), byte-for-byte stable."""
    ids = sorted(entries, key=lambda s: s.encode())  # C gettext bisects on bytes
    id_bytes = [i.encode() for i in ids]
    str_bytes = [entries[i].encode() for i in ids]
    n = len(ids)
    header_size = 7 * 4
    ids_table = header_size
    strs_table = ids_table + n * 8
    data_start = strs_table + n * 8
    data = bytearray()
    id_offsets, str_offsets = [], []
    for b in id_bytes:
        id_offsets.append((len(b), data_start + len(data)))
        data += b + b"\0"
    for b in str_bytes:
        str_offsets.append((len(b), data_start + len(data)))
        data += b + b"\0"
    out = struct.pack("<7I", 0x950412DE, 0, n, ids_table, strs_table, 0, data_start)
    for length, offset in id_offsets + str_offsets:
        out += struct.pack("<2I", length, offset)
    return out + bytes(data)


def po_files(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def compile_all(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Rebuild every .mo from its .po; return the files written."""
    written = []
    for po in po_files(locale_dir):
        entries = parse_po(po.read_text(encoding="utf-8"))
        entries = {k: unicodedata.normalize("NFC", v) for k, v in entries.items()}
        mo = po.with_suffix(".mo")
        mo.write_bytes(build_mo(entries))
        written.append(mo)
    return written


if __name__ == "__main__":
    for path in compile_all():
        print(path, file=sys.stderr)
