"""pyzbar/zbar backend with zbar's character-set guessing switched off.

zbar guesses the character set of QR byte-mode text and turns short Vietnamese UTF-8
(``Lê Hạnh``) into Shift-JIS/Big5 look-alikes.  zbar >= 0.23 has ``ZBAR_CFG_BINARY``,
which returns the symbol's raw bytes instead; pyzbar 0.1.9 does not expose it, so this
module drives zbar through pyzbar's ctypes bindings itself and decodes UTF-8 here.

Binary mode also drops what the symbol declares (ECI, Kanji mode).  So a payload that is
valid UTF-8 is UTF-8 (byte-exact Vietnamese), and only for one that is not (Shift_JIS,
GB2312, a Latin-2 ECI...) the frame is scanned a second time with zbar's own character
set handling (ECI first, then its guess), and that text is taken.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from typing import Any

import numpy as np

from hardware.errors import DecoderError
from hardware.qr.base import QR_CODE, Code, Point, box_corners, check_frame, code_text

log = logging.getLogger(__name__)

_FOURCC_Y800 = 0x30303859   # 'Y800': 8-bit grayscale, one byte a pixel
_HOW_TO_FIX = ("install the zbar library with 'sudo apt-get install libzbar0' "
               "or choose the decoder backend 'zxing'")


def load_zbar() -> Any:
    """pyzbar's ctypes wrapper around libzbar, or DecoderError saying how to install it."""
    try:
        from pyzbar import wrapper
    except ImportError as e:
        if getattr(e, "name", None) == "pyzbar":
            raise DecoderError(f"the pyzbar package is not installed ({e}); install it with "
                               "'pip install pyzbar' or choose the decoder backend 'zxing'") from e
        # pyzbar raises ImportError('Unable to find zbar shared library') without libzbar0.
        raise DecoderError(f"the zbar shared library cannot be loaded ({e}); {_HOW_TO_FIX}") from e
    except OSError as e:   # the library exists but does not load (wrong architecture, broken)
        raise DecoderError(f"the zbar shared library cannot be loaded ({e}); {_HOW_TO_FIX}") from e
    return wrapper


def _binary_config(w: Any) -> int:
    """The value of ZBAR_CFG_BINARY in the loaded libzbar, asked from zbar itself."""
    sym, cfg, val = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    if w.zbar_parse_config(b"qrcode.binary", ctypes.byref(sym), ctypes.byref(cfg),
                           ctypes.byref(val)) != 0:
        raise DecoderError("the installed libzbar is older than 0.23 and has no binary mode, so "
                           "it would mangle Vietnamese text; upgrade it with "
                           "'sudo apt-get install libzbar0' (Debian 12 has 0.23.92) "
                           "or choose the decoder backend 'zxing'")
    return cfg.value


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class PyzbarDecoder:
    """zbar, QR only, in binary mode: exact bytes, UTF-8 decoded by us."""

    name = "pyzbar"

    def __init__(self, *, binary: bool = True) -> None:
        # binary=False gives zbar's own character-set guessing: only the benchmark and the
        # test that shows what goes wrong without the fix should ask for it.
        self._w = load_zbar()
        self._lock = threading.Lock()
        self._scanner: Any = None
        self._texts: Any = None
        try:
            self._scanner = self._new_scanner(binary)
            # For payloads that are not UTF-8: zbar's own reading of the same symbol.
            self._texts = self._new_scanner(False) if binary else None
        except BaseException:
            self.close()
            raise

    def _new_scanner(self, binary: bool) -> Any:
        w = self._w
        scanner = w.zbar_image_scanner_create()
        if not scanner:
            raise DecoderError("zbar could not create an image scanner (out of memory?)")
        try:
            qr = int(w.ZBarSymbol.QRCODE)
            w.zbar_image_scanner_set_config(scanner, 0, w.ZBarConfig.CFG_ENABLE, 0)  # all off
            w.zbar_image_scanner_set_config(scanner, qr, w.ZBarConfig.CFG_ENABLE, 1)
            if binary:
                w.zbar_image_scanner_set_config(scanner, qr, _binary_config(w), 1)
        except BaseException:
            w.zbar_image_scanner_destroy(scanner)
            raise
        return scanner

    def decode(self, frame: np.ndarray, detail: np.ndarray | None = None) -> list[Code]:
        frame = check_frame(frame)
        if frame.size == 0:
            return []
        with self._lock:
            if not self._scanner:
                raise RuntimeError("PyzbarDecoder.decode() called after close()")
            try:
                found = self._scan(frame, self._scanner)
                if self._texts is None or all(_is_utf8(raw) for raw, _ in found):
                    return [Code(code_text(raw), raw, QR_CODE, pos) for raw, pos in found]
                # zbar's text of the same symbols; zbar returns text as UTF-8.
                texts = {pos: raw.decode("utf-8", "replace")
                         for raw, pos in self._scan(frame, self._texts)}
                return [Code(code_text(raw) if _is_utf8(raw) else texts.get(pos, code_text(raw)),
                             raw, QR_CODE, pos) for raw, pos in found]
            except Exception as e:   # noqa: BLE001 - a library failure on odd pixels is "no code"
                log.warning("zbar failed on a %dx%d frame: %s", frame.shape[1], frame.shape[0], e)
                return []

    def _scan(self, frame: np.ndarray, scanner: Any) -> list[tuple[bytes, tuple[Point, ...]]]:
        """(data, corners) of each symbol ``scanner`` finds."""
        w = self._w
        h, wd = frame.shape
        pixels = frame.tobytes()   # kept alive until the image is destroyed
        image = w.zbar_image_create()
        if not image:
            return []
        try:
            w.zbar_image_set_format(image, _FOURCC_Y800)
            w.zbar_image_set_size(image, wd, h)
            data = ctypes.cast(ctypes.c_char_p(pixels), ctypes.c_void_p)   # no copy
            w.zbar_image_set_data(image, data, len(pixels), None)
            if w.zbar_scan_image(scanner, image) <= 0:
                return []
            codes: list[tuple[bytes, tuple[Point, ...]]] = []
            symbol = w.zbar_image_first_symbol(image)
            while symbol:
                raw = ctypes.string_at(w.zbar_symbol_get_data(symbol),
                                       w.zbar_symbol_get_data_length(symbol))
                pts = [(int(w.zbar_symbol_get_loc_x(symbol, i)),
                        int(w.zbar_symbol_get_loc_y(symbol, i)))
                       for i in range(w.zbar_symbol_get_loc_size(symbol))]
                # zbar lists a QR symbol's corners counter-clockwise from top-left; reorder
                # them clockwise like zxing's.  Anything else gets its bounding box.
                corners: tuple[Point, ...]
                if len(pts) == 4:
                    corners = (pts[0], pts[3], pts[2], pts[1])
                else:
                    corners = box_corners(pts or [(0, 0)])
                codes.append((raw, corners))
                symbol = w.zbar_symbol_next(symbol)
            return codes
        finally:
            w.zbar_image_destroy(image)

    def close(self) -> None:
        with self._lock:
            for name in ("_scanner", "_texts"):
                if getattr(self, name, None):
                    self._w.zbar_image_scanner_destroy(getattr(self, name))
                setattr(self, name, None)

    def __enter__(self) -> PyzbarDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
