"""Everything a person reads, from gettext catalogues (Vietnamese by default, English switchable).

Message ids are the English source texts: screen strings marked with ``_()`` or passed to
``t()`` in ``kiosk/ui``, decision reasons marked with ``N_()`` in ``kiosk.domain.reasons``.
English is the source language and needs no catalogue; every other language has a ``.po``
(edited by people) and a ``.mo`` (what gettext reads) in ``kiosk/locale/<lang>/LC_MESSAGES``.
Both are committed, so the appliance needs only the standard library's gettext.  With the
test extras installed (they bring Babel), translators run::

    python -m kiosk.ui.i18n update     # extract the marked strings, merge them into every .po
    python -m kiosk.ui.i18n compile    # rebuild every .mo from its .po

A test fails when a .mo is out of date or a marked string has no translation (docs/ui.md).
"""

from __future__ import annotations

import gettext
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.domain.reasons import message as reason_message
from kiosk.errors import ConfigError

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

DOMAIN = "checkpoint-kiosk"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # kiosk/: every source that marks texts
LOCALE_DIR = PACKAGE_DIR / "locale"
SOURCE_LANGUAGE = "en"  # the msgids' language: shown as written, no catalogue
# Babel's keywords: ``_`` and ``N_`` mark, ``t``/``app.t`` translate a literal where it is drawn.
KEYWORDS: dict[str, None] = {"_": None, "N_": None, "t": None}
COMMENT_TAGS = ("Translators:",)  # "# Translators: ..." above a marked string reaches the .po


def _(message: str) -> str:
    """Mark a string for the catalogues; translation happens at draw time."""
    return message


class Translator:
    """Translate what the screen shows into the current language; every result is NFC."""

    def __init__(self, language: str = "vi", locale_dir: Path = LOCALE_DIR) -> None:
        self._dir = locale_dir
        self._catalogues: dict[str, gettext.NullTranslations] = {}
        self.language = language
        self.set_language(language)

    def set_language(self, language: str) -> None:
        if language not in self._catalogues:
            self._catalogues[language] = self._load(language)
        self.language = language

    def _load(self, language: str) -> gettext.NullTranslations:
        if language == SOURCE_LANGUAGE:
            return gettext.NullTranslations()
        mo = self._dir / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        try:
            with mo.open("rb") as fh:
                return gettext.GNUTranslations(fh)
        except OSError as e:
            raise ConfigError(
                f"no catalogue for language {language!r} at {mo}; "
                "run `python -m kiosk.ui.i18n compile` to build the .mo files"
            ) from e

    def __call__(self, message: str) -> str:
        return unicodedata.normalize("NFC", self._catalogues[self.language].gettext(message))

    def reason(self, code: str) -> str:
        """Plain-language text of a decision reason code, in the current language (an unknown
        code gets the generic "please wait for an officer")."""
        return self(reason_message(code))


# --- The translator's workflow (Babel; a development tool, never imported at run time) ---


def po_files(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def extract(source_dir: Path = PACKAGE_DIR) -> Catalog:
    """Every marked string under ``source_dir``, as a Babel template catalogue."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    template = Catalog(project=DOMAIN, fuzzy=False)
    found = extract_from_dir(source_dir, method_map=[("**.py", "python")], keywords=KEYWORDS,
                             comment_tags=COMMENT_TAGS, strip_comment_tags=True)
    for filename, lineno, msgid, comments, context in found:
        path = (source_dir.name + "/" + filename).replace("\\", "/")
        template.add(msgid, None, [(path, lineno)], auto_comments=comments, context=context)
    return template


def _write_po(po: Path, catalog: Catalog) -> None:
    from babel.messages.pofile import write_po

    # File names without line numbers: moving code does not rewrite the catalogues.
    tmp = po.with_suffix(".po.tmp")
    with tmp.open("wb") as fh:
        write_po(fh, catalog, include_lineno=False, ignore_obsolete=True, sort_output=True)
    tmp.replace(po)  # a failed write leaves the translator's file as it was


def update(locale_dir: Path = LOCALE_DIR, source_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Merge the strings marked in the sources into every ``.po``: new ones arrive empty (or
    fuzzy when they look like a removed one), removed ones are dropped."""
    from babel.messages.pofile import read_po

    template = extract(source_dir)
    written = []
    for po in po_files(locale_dir):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parent.parent.name, domain=DOMAIN)
        catalog.update(template, update_creation_date=False)
        _write_po(po, catalog)
        written.append(po)
    return written


def compile_all(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    """Rebuild every ``.mo`` from its ``.po`` (fuzzy entries left out); return the files."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po in po_files(locale_dir):
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=po.parent.parent.name, domain=DOMAIN)
        mo = po.with_suffix(".mo")
        with mo.open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        written.append(mo)
    return written


def untranslated(locale_dir: Path = LOCALE_DIR) -> dict[Path, list[str]]:
    """Per ``.po``, the msgids that are empty or fuzzy (shown in English until translated)."""
    from babel.messages.pofile import read_po

    out = {}
    for po in po_files(locale_dir):
        with po.open("rb") as fh:
            catalog = read_po(fh, domain=DOMAIN)
        out[po] = [str(m.id) for m in catalog if m.id and (m.fuzzy or not m.string)]
    return out


def main(argv: list[str]) -> int:
    commands = {"update": update, "compile": compile_all}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: python -m kiosk.ui.i18n update|compile\n"
              "  update   extract the marked strings and merge them into every .po\n"
              "  compile  rebuild every .mo from its .po", file=sys.stderr)
        return 2
    try:
        paths = commands[argv[0]]()
    except ModuleNotFoundError as e:
        if e.name != "babel":
            raise
        print("Babel is not installed: `pip install -e .[test]` (it is a development tool)",
              file=sys.stderr)
        return 1
    for path in paths:
        print(path, file=sys.stderr)
    for po, ids in untranslated().items():
        for msgid in ids:
            print(f"{po}: not translated yet: {msgid!r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
