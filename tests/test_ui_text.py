"""Catalogues, fonts and artwork: every string shown is translated, NFC, and drawable."""

from __future__ import annotations

import ast
import gettext
import re
import shutil
import string
import subprocess
import sys
import unicodedata
from pathlib import Path

import pygame
import pygame.freetype
import pytest
from babel.messages.pofile import read_po

from kiosk.domain import reasons
from kiosk.domain.reasons import REASONS
from kiosk.errors import ConfigError
from kiosk.ui import i18n
from kiosk.ui.i18n import DOMAIN, LOCALE_DIR, SOURCE_LANGUAGE, Translator
from kiosk.ui.text import font_path

UI_DIR = Path(i18n.__file__).parent
LANGS = ("vi", "en")
TRANSLATED = ("vi",)  # English is the source language: the msgids, no catalogue


def po_path(lang: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def read_catalogue(po: Path):
    with po.open("rb") as fh:
        return read_po(fh, domain=DOMAIN)


def catalogue(lang: str) -> dict[str, str]:
    """msgid -> msgstr of the translated, non-fuzzy entries of a language's .po."""
    return {str(m.id): str(m.string) for m in read_catalogue(po_path(lang))
            if m.id and m.string and not m.fuzzy}


def used_msgids() -> set[str]:
    """What the code shows, found without Babel: string literals passed to ``_()``, ``t()`` or
    ``app.t()`` in the UI package, and every decision reason's English text."""
    found = set(REASONS.values())
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
    strings = set(ui_literals()) | used_msgids()  # English is shown as written
    for lang in TRANSLATED:
        strings |= set(catalogue(lang).values())
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


VIETNAMESE = "".join(sorted(
    {unicodedata.normalize("NFC", v + m) for v in "aăâeêioôơuưyAĂÂEÊIOÔƠUƯY"
     for m in ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")} | {"đ", "Đ"}))
# Letters the kiosk's font (Noto Sans: Latin, Greek, Cyrillic) has no glyph for: a Han
# character and a private-use code point.  Each is drawn as the font's fallback box.
NOT_IN_FONT = "中\ue000"


def drawn(font: pygame.font.Font, letter: str) -> bytes:
    """The pixels pygame.font (what the screen draws with) gives for ``letter``."""
    surface = font.render(letter, True, (255, 255, 255), (0, 0, 0))
    # tostring, not tobytes: Debian 12's python3-pygame (2.1.2, the appliance's) predates tobytes
    return bytes(surface.get_size()) + pygame.image.tostring(surface, "RGB")


def test_every_vietnamese_letter_is_drawn_from_the_kiosk_font_not_a_fallback_box(fonts):
    """Checked against the kiosk's own font file, whichever pygame build runs the test (PyPI's
    wheel, or Debian's python3-pygame on the appliance, whose default font differs)."""
    assert len(VIETNAMESE) == 146  # 134 precomposed + 12 plain vowels (both cases)
    pygame.font.init()
    for bold, font in fonts.items():
        # FreeType: the font file maps every letter to a glyph of its own.
        assert not missing_glyphs(font, VIETNAMESE), f"bold={bold}"
        # The screen's renderer: no letter comes out as the fallback box.
        screen_font = pygame.font.Font(str(font_path(bold)), 24)
        box = drawn(screen_font, NOT_IN_FONT[-1])
        boxed = [c for c in VIETNAMESE if drawn(screen_font, c) == box]
        assert not boxed, f"bold={bold}: drawn as the fallback box: {boxed}"
        # The control: letters the font lacks are noticed both ways, so this test can fail.
        assert missing_glyphs(font, NOT_IN_FONT) == set(NOT_IN_FONT)
        assert all(drawn(screen_font, c) == box for c in NOT_IN_FONT)


def test_babel_extracts_exactly_what_the_code_shows():
    extracted = {str(m.id) for m in i18n.extract() if m.id}
    assert extracted == used_msgids()
    assert "Not recorded, an officer will check" in extracted  # the domain's marks are found


def test_every_marked_string_has_a_vietnamese_translation_and_no_stale_entry():
    """`python -m kiosk.ui.i18n update` then a translator's msgstr for each new string."""
    used = used_msgids()
    for lang in TRANSLATED:
        entries = {str(m.id): m for m in read_catalogue(po_path(lang)) if m.id}
        assert sorted(used - entries.keys()) == [], f"{lang}: not in the .po (run update)"
        assert sorted(entries.keys() - used) == [], f"{lang}: unused (stale) entries"
        todo = sorted(k for k, m in entries.items() if m.fuzzy or not m.string)
        assert todo == [], f"{lang}: fuzzy or untranslated"
    assert not any(i18n.untranslated().values())
    assert (LOCALE_DIR / SOURCE_LANGUAGE).exists() is False  # the msgids are the English


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


def compiled_differences(po: Path) -> dict[str, tuple[str | None, str]]:
    """msgid -> (in the .mo, in the .po) for every entry where the two disagree."""
    with po.with_suffix(".mo").open("rb") as fh:
        mo = gettext.GNUTranslations(fh)
    catalog = read_catalogue(po)
    want = {str(m.id): str(m.string) for m in catalog if m.id and m.string and not m.fuzzy}
    have = {k: v for k, v in mo._catalog.items() if k}
    out = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
    out |= {k: (v, "") for k, v in have.items() if k not in want}
    if mo.info().get("plural-forms") != catalog.plural_forms:
        out["Plural-Forms"] = (mo.info().get("plural-forms"), catalog.plural_forms)
    return out


def test_compiled_catalogues_are_up_to_date():
    for lang in TRANSLATED:
        po = po_path(lang)
        assert compiled_differences(po) == {}, \
            f"{po.with_suffix('.mo')} is stale: run `python -m kiosk.ui.i18n compile`"


def test_a_stale_mo_is_noticed_and_compile_fixes_it(tmp_path):
    locale = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, locale)
    po = po_path("vi", locale)
    po.write_text(po.read_text(encoding="utf-8").replace('msgstr "MỜI QUA"', 'msgstr "ĐI"'),
                  encoding="utf-8")
    assert compiled_differences(po) == {"GO AHEAD": ("MỜI QUA", "ĐI")}
    assert i18n.compile_all(locale) == [po.with_suffix(".mo")]
    assert compiled_differences(po) == {}
    assert Translator("vi", locale_dir=locale)("GO AHEAD") == "ĐI"


def test_update_merges_new_strings_keeps_translations_and_drops_removed_ones(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "screen.py").write_text('from x import _\nOK = _("GO AHEAD")\nNEW = _("Brand new")\n'
                                   "def draw(t):\n    return t('Back')\n", encoding="utf-8")
    locale = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, locale)
    assert i18n.update(locale, src) == [po_path("vi", locale)]
    entries = {str(m.id): m for m in read_catalogue(po_path("vi", locale)) if m.id}
    assert set(entries) == {"GO AHEAD", "Brand new", "Back"}
    assert entries["GO AHEAD"].string == "MỜI QUA" and entries["Back"].string == "Quay lại"
    assert entries["Brand new"].string == "" or entries["Brand new"].fuzzy
    assert i18n.untranslated(locale) == {po_path("vi", locale): ["Brand new"]}
    i18n.compile_all(locale)
    t = Translator("vi", locale_dir=locale)
    assert t("Brand new") == "Brand new" and t("GO AHEAD") == "MỜI QUA"  # English until done


def test_the_commands_need_babel_only_for_the_translators_workflow():
    # The kiosk itself reads the .mo with the standard library: Babel is a development tool.
    code = ("import sys, kiosk.ui.i18n as m; m.Translator('vi').reason('watchlist'); "
            "print(sorted(n for n in sys.modules if n.split('.')[0] in ('babel', 'polib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
    usage = subprocess.run([sys.executable, "-m", "kiosk.ui.i18n"], capture_output=True,
                           text=True, timeout=60)
    assert usage.returncode == 2 and "update|compile" in usage.stderr


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt not installed")
def test_our_mo_reads_the_same_as_gnu_msgfmts(tmp_path):
    for lang in TRANSLATED:
        po = po_path(lang)
        out = tmp_path / f"{lang}.mo"
        subprocess.run(["msgfmt", "--check", "-o", str(out), str(po)], check=True)
        with out.open("rb") as a, po.with_suffix(".mo").open("rb") as b:
            gnu, ours = gettext.GNUTranslations(a)._catalog, gettext.GNUTranslations(b)._catalog
        assert {k: v for k, v in gnu.items() if k} == {k: v for k, v in ours.items() if k}


def test_translator_and_reasons():
    t = Translator("vi")
    assert t("GO AHEAD") == "MỜI QUA" and t.reason("watchlist") == "Vui lòng chờ cán bộ"
    assert t.reason("not_recorded") == "Chưa ghi nhận được, chờ cán bộ kiểm tra"
    t.set_language("en")
    assert t("GO AHEAD") == "GO AHEAD" and t.reason("watchlist") == "Please wait for an officer"
    # A code no message exists for yet gets the generic text, never the raw code.
    assert t.reason("no_such_code_yet") == reasons.WAIT_FOR_OFFICER
    t.set_language("vi")
    assert t.reason("no_such_code_yet") == "Vui lòng chờ cán bộ"
    with pytest.raises(ConfigError, match="'fr'.*compile"):
        t.set_language("fr")
    assert t.language == "vi"


def test_every_reason_reads_in_both_languages_nfc_and_short():
    t = Translator("vi")
    for code, english in REASONS.items():
        for lang in LANGS:
            t.set_language(lang)
            text = t.reason(code)
            assert text and unicodedata.is_normalized("NFC", text) and len(text) <= 80, code
            assert (text == english) is (lang == SOURCE_LANGUAGE), (code, lang, text)
    for code in reasons.PRIVATE:  # the queue must not learn why someone was stopped
        assert REASONS[code] == reasons.WAIT_FOR_OFFICER


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


def test_every_direction_has_a_label_on_screen():
    from kiosk.domain.model import Direction
    from kiosk.ui.screens import DIRECTION_LABELS

    assert set(DIRECTION_LABELS) == set(Direction)
