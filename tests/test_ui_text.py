"""Catalogues, fonts and artwork: every string shown is translated, NFC, and drawable."""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import string
import subprocess
import unicodedata
from pathlib import Path

import pygame
import pygame.freetype
import pytest

from kiosk.domain.reasons import REASONS
from kiosk.ui import i18n
from kiosk.ui.i18n import DOMAIN, LOCALE_DIR, Translator, build_mo, parse_po, reason_text
from kiosk.ui.text import font_path

UI_DIR = Path(i18n.__file__).parent
LANGS = ("vi", "en")


def catalogue(lang: str) -> dict[str, str]:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    return {k: v for k, v in parse_po(po.read_text(encoding="utf-8")).items() if k}


def used_msgids() -> set[str]:
    """String literals passed to ``_()``, ``t()`` or ``app.t()`` in the UI package."""
    found = set()
    for path in UI_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else None
            arg = node.args[0]
            if name in ("_", "t") and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
    return found


def ui_literals() -> set[str]:
    """Every non-ASCII string literal in the UI code but docstrings (symbols like • · — …)."""
    out = set()
    for path in UI_DIR.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and not node.value.isascii() and id(node) not in docstrings:
                out.add(node.value)
    return out


def shown_strings() -> set[str]:
    strings = set(ui_literals())
    for lang in LANGS:
        strings |= set(catalogue(lang).values())
    for vi, en in REASONS.values():
        strings |= {vi, en}
    return strings


@pytest.fixture(scope="module")
def fonts():
    pygame.freetype.init()
    yield {bold: pygame.freetype.Font(str(font_path(bold)), 24) for bold in (False, True)}


def missing_glyphs(font, text: str) -> set[str]:
    chars = {c for c in unicodedata.normalize("NFC", text) if not c.isspace()}
    return {c for c, m in zip(sorted(chars), font.get_metrics("".join(sorted(chars))),
                              strict=True) if m is None}


def test_every_glyph_of_every_shown_string_is_in_the_bundled_font(fonts):
    strings = shown_strings()
    assert len(strings) > 150  # catalogues, reasons and symbols were all found
    for bold, font in fonts.items():
        gaps = {s: missing_glyphs(font, s) for s in strings}
        gaps = {s: g for s, g in gaps.items() if g}
        assert not gaps, f"bold={bold}: no glyph for {gaps}"


def test_every_vietnamese_letter_is_in_the_font_but_not_in_pygames_default(fonts):
    vowels = "aăâeêioôơuưy"
    letters = {unicodedata.normalize("NFC", v + m) for v in vowels + vowels.upper()
               for m in ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")}
    letters |= {"đ", "Đ"}
    assert len(letters) == 146  # 134 precomposed + 12 plain vowels (both cases)
    for font in fonts.values():
        assert not missing_glyphs(font, "".join(letters))
    # The control: pygame's own font lacks most of them, so this test can fail.
    default = pygame.freetype.Font(None, 24)
    assert len(missing_glyphs(default, "".join(letters))) > 50


def test_catalogues_have_exactly_the_strings_the_code_uses():
    used = used_msgids()
    for lang in LANGS:
        cat = catalogue(lang)
        assert sorted(used - cat.keys()) == [], f"{lang}: missing"
        assert sorted(cat.keys() - used) == [], f"{lang}: unused (stale) entries"
        assert all(cat.values()), f"{lang}: empty translations"


def test_translations_keep_placeholders_and_are_nfc():
    fields = string.Formatter()
    vi = catalogue("vi")
    for msgid, msgstr in vi.items():
        want = sorted(f for _, f, _, _ in fields.parse(msgid) if f)
        got = sorted(f for _, f, _, _ in fields.parse(msgstr) if f)
        assert want == got, (msgid, msgstr)
        assert unicodedata.is_normalized("NFC", msgstr)
    # Vietnamese is really Vietnamese: most strings carry diacritics.
    marked = [s for s in vi.values() if re.search(r"[^\x00-\x7f]", s)]
    assert len(marked) > len(vi) * 0.7


def test_compiled_catalogues_are_up_to_date():
    for lang in LANGS:
        po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        entries = parse_po(po.read_text(encoding="utf-8"))
        entries = {k: unicodedata.normalize("NFC", v) for k, v in entries.items()}
        assert po.with_suffix(".mo").read_bytes() == build_mo(entries), \
            f"{po.with_suffix('.mo')} is stale: run `python -m kiosk.ui.i18n`"


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt not installed")
def test_our_mo_reads_the_same_as_gnu_msgfmts(tmp_path):
    for lang in LANGS:
        po = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
        out = tmp_path / f"{lang}.mo"
        subprocess.run(["msgfmt", "-o", str(out), str(po)], check=True)
        with out.open("rb") as a, po.with_suffix(".mo").open("rb") as b:
            assert gettext.GNUTranslations(a)._catalog == gettext.GNUTranslations(b)._catalog


def test_po_parser_handles_continuations_and_fuzzy():
    text = '''msgid ""
msgstr "Content-Type: text/plain; charset=UTF-8\\n"

#, fuzzy
msgid "Old"
msgstr "Cũ"

msgid "Two "
"lines"
msgstr "Hai "
"dòng"
'''
    assert parse_po(text) == {"": "Content-Type: text/plain; charset=UTF-8\n",
                              "Two lines": "Hai dòng"}
    with pytest.raises(ValueError, match="line 2"):
        parse_po('msgid "x"\nbogus\n')


def test_translator_and_reasons():
    t = Translator("vi")
    assert t("GO AHEAD") == "MỜI QUA" and t.reason("watchlist") == REASONS["watchlist"][0]
    t.set_language("en")
    assert t("GO AHEAD") == "GO AHEAD" and t.reason("watchlist") == REASONS["watchlist"][1]
    assert reason_text("no_such_code_yet", "vi") == "no_such_code_yet"
    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError, match="'fr'"):
        t.set_language("fr")


def test_artwork_pngs_are_what_the_generator_draws():
    from kiosk.domain.model import Outcome
    from kiosk.ui import artwork

    pygame.display.init()
    try:
        icons = [(artwork.icon_path(o), artwork.draw_icon(o)) for o in Outcome]
        icons.append((artwork.not_person_icon_path(), artwork.draw_not_person_icon()))
        for path, drawn in icons:
            committed = pygame.image.load(str(path))
            assert committed.get_size() == drawn.get_size()
            a = pygame.surfarray.array_alpha(committed).astype(int)
            b = pygame.surfarray.array_alpha(drawn).astype(int)
            assert abs(a - b).mean() < 1.0
        assert pygame.image.load(str(artwork.splash_path())).get_size() == artwork.SPLASH_SIZE
    finally:
        pygame.display.quit()
    licences = (Path(artwork.images_dir()) / "LICENSES").read_text(encoding="utf-8")
    for name in ("icon-pass.png", "icon-not-person.png", "splash.png", "NotoSans-Regular.ttf",
                 "OFL"):
        assert name in licences


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours."""
    def luminance(c):
        lin = [(v / 255 / 12.92) if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4
               for v in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_result_banners_are_readable_and_tell_apart():
    from kiosk.domain.model import Outcome
    from kiosk.ui import artwork

    banners = [(artwork.COLOURS[o], artwork.TEXT_ON[o]) for o in Outcome]
    banners.append((artwork.NOT_PERSON_COLOUR, artwork.NOT_PERSON_TEXT))
    for background, text in banners:
        assert contrast(background, text) >= 4.5, background
    # The not-a-person banner is neither green, amber nor red: no channel dominates.
    r, g, b = artwork.NOT_PERSON_COLOUR
    assert b >= max(r, g) and max(r, g, b) - min(r, g, b) < 80
    assert contrast((255, 255, 255), (0, 0, 0)) == 21.0
