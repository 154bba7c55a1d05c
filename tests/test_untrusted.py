"""One rule for unsafe text, whatever the sink (offline_queue.untrusted)."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from kiosk.logfmt import SafeFormatter
from kiosk.terminal import printable
from kiosk.ui.confirm_provision import plain
from offline_queue.sync import clean
from offline_queue.untrusted import escaped, replaced

HOSTILE = "a\nb\rc\td\x1b[2Je\x85f\u2028g\u202eh\u200bi\U000e0001j\x7fk\u00a0l"
VIETNAMESE = "Nguyễn Thị Hạnh — Đắk Lắk, ỷ ỵ ữ"


@given(st.text())
def test_every_sink_leaves_only_printable_text(text):
    for out in (escaped(text), replaced(text), clean(text), plain(text),
                printable(text, keep="")):
        assert out.isprintable(), (text, out)


@given(st.text(alphabet=st.characters(categories=("L", "M", "N", "P", "S")).filter(
    str.isprintable)))
def test_safe_text_passes_unchanged(text):
    assert escaped(text) == text == replaced(text) == plain(text)


def test_each_hostile_character_is_escaped_by_name_or_code():
    assert escaped(HOSTILE) == ("a\\nb\\rc\\td\\x1b[2Je\\x85f\\u2028g\\u202eh\\u200bi"
                                "\\U000e0001j\\x7fk\\xa0l")
    assert replaced(HOSTILE).count("\ufffd") == 11
    assert escaped(VIETNAMESE) == VIETNAMESE


def test_limit_cuts_before_escaping_and_marks_the_cut():
    assert escaped("x" * 10, limit=4) == "xxxx…"
    assert escaped("\n" * 10, limit=2) == "\\n\\n…"
    assert clean("y" * 5000).endswith("…")


def test_a_log_record_with_a_forged_line_stays_one_line():
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "server said %s", (
        "ok\n2026-12-05 WARNING forged \u202eeno",), None)
    line = SafeFormatter("%(message)s").format(record)
    assert "\n" not in line and "\u202e" not in line
    assert line == "server said ok\\n2026-12-05 WARNING forged \\u202eeno"


def test_the_terminal_keeps_newlines_only_when_asked():
    assert printable("a\nb") == "a\nb"
    assert printable("a\nb", keep="") == "a\\nb"
