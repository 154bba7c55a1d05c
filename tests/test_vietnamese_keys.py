"""The officer keyboard's Vietnamese input (kiosk.ui.vietnamese): every letter with every tone
is reachable from the keys, in capitals and small letters, and names come out as written."""

from __future__ import annotations

import unicodedata

import pytest

from kiosk.ui import vietnamese as vn

# The 12 vowels as (plain key, shape mark key or None) and the tones' mark keys.
VOWELS = {"a": ("a", None), "ă": ("a", "trang"), "â": ("a", "mu"), "e": ("e", None),
          "ê": ("e", "mu"), "i": ("i", None), "o": ("o", None), "ô": ("o", "mu"),
          "ơ": ("o", "moc"), "u": ("u", None), "ư": ("u", "moc"), "y": ("y", None)}
TONES = {"": None, "\u0301": "sac", "\u0300": "huyen", "\u0309": "hoi", "\u0303": "nga",
         "\u0323": "nang"}


def typed(spec: str, text: str = "") -> str:
    """Keys as the keyboard sends them: letters, ``+mark``, ``_`` for space."""
    for token in spec.split():
        if token.startswith("+"):
            text = vn.apply_mark(text, token[1:])
        elif token == "_":
            text = vn.space(text)
        else:
            for char in token:
                text = vn.type_letter(text, char)
    return text


def test_the_mark_keys_are_the_eight_marks():
    assert set(vn.MARKS) == {m for _v, m in VOWELS.values() if m} | {
        m for m in TONES.values() if m}
    assert all(len(label) == 1 for label in vn.MARK_LABELS.values())


@pytest.mark.parametrize("vowel", VOWELS)
@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("capital", [True, False])
def test_every_vowel_with_every_tone_is_reachable(vowel, tone, capital):
    """134 letters: the 12 vowels with no tone or one of five, each small and capital (a
    letter typed at the start of a word is a capital; after a consonant it is small)."""
    key, shape = VOWELS[vowel]
    spec = key if capital else "b" + key
    if shape:
        spec += " +" + shape
    if TONES[tone]:
        spec += " +" + TONES[tone]
    want = unicodedata.normalize("NFC", vowel + tone)
    got = typed(spec)
    assert got == (want.upper() if capital else "B" + want), spec
    assert unicodedata.is_normalized("NFC", got)


def test_the_two_forms_of_d():
    assert typed("đa") == "Đa"
    assert typed("ađ") == "Ađ"


@pytest.mark.parametrize(("spec", "word"), [
    ("nguyen +mu +nga", "Nguyễn"),
    ("nguyen +nga +mu", "Nguyễn"),  # the tone first: it moves onto the ê
    ("truong +moc +huyen", "Trường"),
    ("nguoi +moc +huyen", "Người"),
    ("phuong +moc +nang", "Phượng"),
    ("hoa +huyen", "Hòa"),
    ("hoa +huyen n", "Hoàn"),  # a final consonant moves the tone to the second vowel
    ("thuy +hoi", "Thủy"),
    ("quoc +mu +sac", "Quốc"),  # the u of qu is no vowel
    ("quy +sac", "Quý"),
    ("gia +sac", "Giá"),  # nor the i of gi
    ("gi +huyen", "Gì"),
    ("ngoai +huyen", "Ngoài"),
    ("khuyen +mu +sac", "Khuyến"),
    ("đang +trang +nang", "Đặng"),
    ("le +mu _ thi +nang _ hong +mu +huyen _ ngoc +mu +nang", "Lê Thị Hồng Ngộc"),
])
def test_names_come_out_as_written(spec, word):
    assert typed(spec) == word


def test_the_same_mark_again_takes_it_off_and_another_tone_replaces():
    assert typed("an +sac +sac") == "An"
    assert typed("an +sac +huyen") == "Àn"
    assert typed("an +mu +mu") == "An"
    assert typed("an +mu +trang") == "Ăn"  # one shape replaces the other
    assert typed("tuoi +moc +moc") == "Tuoi"


def test_a_mark_with_no_letter_to_go_on_changes_nothing():
    assert typed("bcd +sac") == "Bcd"
    assert typed("i +mu") == "I"
    assert vn.apply_mark("", "nga") == ""
    assert vn.apply_mark("Hà ", "sac") == "Hà "  # a space ended the word


def test_marks_apply_to_the_last_word_only_and_backspace_removes_a_whole_letter():
    text = typed("tran _ van +mu")
    assert text == "Tran Vân"
    assert vn.backspace(text) == "Tran Vâ"
    assert vn.backspace(vn.backspace(text)) == "Tran V"
    assert vn.space(vn.space("An")) == "An "
    assert vn.space("") == ""


def test_text_it_did_not_make_is_left_as_it_is():
    """A USB keyboard may have typed something else: marks never mangle it."""
    assert vn.apply_mark("Ω", "sac") == "Ω"
    assert vn.apply_mark("x\u0301", "sac") == "x\u0301"
