"""Regenerate the QR test fixtures in this folder: python tests/data/qr/make_fixtures.py

Synthetic people only.  Each code is drawn at a known offset so tests can check positions.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import segno
from PIL import Image

HERE = Path(__file__).resolve().parent

SHORT_VI = "Lê Hạnh"
CCCD = ("001085012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|"
        "Số 8 Ngõ 12, Phường Láng Hạ, Quận Đống Đa, Hà Nội|10052021")
# The most a QR symbol holds in byte mode (version 40, level L) is 2953 bytes.
BINARY_3K = random.Random(20211105).randbytes(2953)
OFFSET = (40, 30)   # (x, y) of the code's quiet-zone corner in each fixture


def code_image(payload: bytes, scale: int, error: str = "m") -> np.ndarray:
    qr = segno.make_qr(payload, error=error, boost_error=False)
    modules = np.pad(np.array(qr.matrix, dtype=np.uint8), 4)
    return np.kron(255 * (1 - modules), np.ones((scale, scale), np.uint8)).astype(np.uint8)


def on_page(code: np.ndarray) -> np.ndarray:
    """The code on a light grey page, OFFSET from the top-left corner."""
    h, w = code.shape
    page = np.full((h + 2 * OFFSET[1], w + 2 * OFFSET[0]), 235, np.uint8)
    page[OFFSET[1]:OFFSET[1] + h, OFFSET[0]:OFFSET[0] + w] = code
    return page


def main() -> None:
    Image.fromarray(on_page(code_image(SHORT_VI.encode(), 6))).save(HERE / "short_vi.png")
    Image.fromarray(on_page(code_image(CCCD.encode(), 4))).save(HERE / "cccd.png")
    Image.fromarray(on_page(code_image(BINARY_3K, 3, error="l"))).save(HERE / "binary_3k.png")
    # A colour JPEG photo of the CCCD code, as a phone would send it to a technician.
    rgb = np.stack([on_page(code_image(CCCD.encode(), 4))] * 3, axis=-1)
    rgb[..., 2] = np.clip(rgb[..., 2].astype(int) - 30, 0, 255)   # warm light
    Image.fromarray(rgb).save(HERE / "cccd_photo.jpg", quality=85)
    (HERE / "not_an_image.png").write_text("this is a text file with a .png name\n")


if __name__ == "__main__":
    main()
