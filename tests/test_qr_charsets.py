"""The right text for every character set a QR code can carry (issue 11, item 3).

Every image is made here with segno, a QR encoder that writes ECI designators and Kanji
mode, and read back by the real decoders: nothing is faked.  ``raw`` is always the exact
bytes of the symbol's data; ``text`` is what those bytes say in the character set the
symbol declares.  The kiosk's own payload, a CCCD, is UTF-8 without an ECI and must stay
byte-exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image

from hardware.images import load_gray
from hardware.qr import open_decoder


def render(qr: segno.QRCode, module_px: int = 4) -> np.ndarray:
    """The symbol as a camera-like frame: 4 px a module, softened, on grey paper."""
    modules = np.pad(np.array(qr.matrix, dtype=np.uint8), 4)
    img = np.where(modules > 0, 30, 225).astype(np.uint8)
    img = np.kron(img, np.ones((module_px, module_px), np.uint8))
    frame = np.full((img.shape[0] + 80, img.shape[1] + 120), 140, np.uint8)
    frame[40:40 + img.shape[0], 60:60 + img.shape[1]] = img
    # A lens never draws a sharp edge.
    from PIL import ImageFilter

    soft = Image.fromarray(frame).filter(ImageFilter.GaussianBlur(0.8))
    return np.asarray(soft, dtype=np.uint8).copy()


# (id, text, how it is encoded) -> the bytes the symbol holds
CASES = {
    # The CCCD: UTF-8, no ECI (what the chip cards print).
    "cccd_utf8_no_eci": ("001085012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|"
                         "Số 8 Ngõ 12, Phường Láng Hạ, Quận Đống Đa, Hà Nội|10052021",
                         dict(encoding="utf-8"), "utf-8"),
    # Short Vietnamese UTF-8 is what zbar's guessing turns into CJK.
    "short_vi_no_eci": ("Lê Hạnh", dict(encoding="utf-8"), "utf-8"),
    "two_letters_no_eci": ("Nữ", dict(encoding="utf-8"), "utf-8"),
    "vi_utf8_eci26": ("Đỗ Toàn, Vũ Mỹ", dict(encoding="utf-8", eci=True), "utf-8"),
    # Japanese: Kanji mode (always Shift_JIS), and Shift_JIS bytes with and without ECI 20.
    "sjis_kanji_mode": ("今度のバージョンでは", dict(encoding="shift_jis"), "shift_jis"),
    "sjis_bytes_no_eci": ("Google モバイル", dict(encoding="shift_jis", mode="byte"),
                          "shift_jis"),
    "sjis_bytes_eci20": ("東京都 渋谷区", dict(encoding="shift_jis", mode="byte", eci=True),
                         "shift_jis"),
    # Chinese: GB2312 text declared with ECI 29 (GB18030, of which GB2312 is a subset).
    "gb2312_eci29": ("阿里巴巴 北京市 海淀区", dict(encoding="gbk", eci=True), "gb2312"),
    "big5_eci28": ("臺北市 信義區", dict(encoding="big5", eci=True), "big5"),
    "latin2_eci4": ("Łódź, ul. Żółta 5", dict(encoding="iso-8859-2", eci=True), "iso-8859-2"),
    "cp1251_eci22": ("Москва, ул. Тверская", dict(encoding="cp1251", eci=True), "cp1251"),
    # ISO-8859-1 is the QR standard's default set: no ECI needed.
    "latin1_no_eci": ("Müller, Straße 5", dict(encoding="iso-8859-1"), "iso-8859-1"),
}


def make(case: str) -> tuple[str, bytes, np.ndarray]:
    text, how, charset = CASES[case]
    qr = segno.make_qr(text, error="m", boost_error=False, **how)
    return text, text.encode(charset), render(qr)


@pytest.mark.parametrize("backend", ["auto", "zxing"])
@pytest.mark.parametrize("case", list(CASES))
def test_zxing_backends_give_the_declared_text_and_the_exact_bytes(backend: str, case: str):
    text, raw, frame = make(case)
    with open_decoder(backend) as d:   # type: ignore[attr-defined]
        (code,) = d.decode(frame)
    assert code.raw == raw
    assert code.text == text


# zbar converts a declared set to UTF-8 itself, even in binary mode, and knows neither
# ECI 22 (cp1251) nor ECI 29 (GB18030): the pyzbar backend cannot give those right.
ZBAR_UNKNOWN_ECI = {"gb2312_eci29", "cp1251_eci22"}


@pytest.mark.parametrize("case", [c for c in CASES if c not in ZBAR_UNKNOWN_ECI])
def test_pyzbar_backend_gives_the_declared_text(case: str):
    text, raw, frame = make(case)
    with open_decoder("pyzbar") as d:   # type: ignore[attr-defined]
        (code,) = d.decode(frame)
    assert code.text == text
    if "eci" not in case.replace("no_eci", ""):
        assert code.raw == raw   # with an ECI zbar hands over its UTF-8 conversion


def test_the_stream_decoder_gives_the_declared_text():
    text, raw, frame = make("sjis_bytes_eci20")
    with open_decoder("stream") as d:   # type: ignore[attr-defined]
        codes = d.decode(frame)
    assert [(c.text, c.raw) for c in codes] == [(text, raw)]


def test_no_latin1_mojibake_for_a_japanese_code_read_from_a_png_file(tmp_path: Path):
    text, raw, frame = make("sjis_bytes_no_eci")
    path = tmp_path / "sjis.png"
    Image.fromarray(frame).save(path)
    with open_decoder("auto") as d:   # type: ignore[attr-defined]
        (code,) = d.decode(load_gray(path))
    assert code.text == "Google モバイル"
    assert code.text != raw.decode("latin-1")   # what the kiosk printed before


def test_many_short_vietnamese_names_stay_utf8_without_eci():
    """zxing-cpp guesses the set of undeclared bytes: valid UTF-8 must always win."""
    names = ["Lê", "Vũ", "Hồ", "Đỗ", "Lý Mỹ", "Ngô Thu", "Bùi Đạt", "Phạm Yến", "Võ Quỳnh",
             "Dương Lộc", "Huỳnh Thảo", "Nguyễn Văn Bình", "Trần Thị Hương"]
    with open_decoder("auto") as d:   # type: ignore[attr-defined]
        for name in names:
            qr = segno.make_qr(name.encode("utf-8"), error="m", boost_error=False)
            (code,) = d.decode(render(qr))
            assert (code.text, code.raw) == (name, name.encode("utf-8"))
