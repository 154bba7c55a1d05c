"""zxing-cpp backends: one plain pass, and the multi-pass decoder the kiosk uses by default.

zxing-cpp returns the symbol's raw bytes (``Barcode.bytes``) and releases the GIL while it
works, so a worker thread decoding frames does not stall the pygame loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from hardware.qr import QR_CODE, Code, check_frame, code_text, unique
from kiosk.errors import DecoderError

log = logging.getLogger(__name__)


def _import_zxing() -> Any:
    try:
        import zxingcpp
    except ImportError as e:   # also covers a wheel built for another CPU or libc
        raise DecoderError(
            f"the zxing-cpp QR library cannot be loaded ({e}); install it with "
            "'pip install zxing-cpp' or choose the decoder backend 'pyzbar'") from e
    return zxingcpp


# A preparation turns the frame into the image zxing reads and says how many image
# pixels make one frame pixel, so positions can be mapped back.
Prepare = Callable[[np.ndarray], tuple[np.ndarray, float]]


def _as_is(frame: np.ndarray) -> tuple[np.ndarray, float]:
    return frame, 1.0


def _pil(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(frame, mode="L")


def _upscale2(frame: np.ndarray) -> tuple[np.ndarray, float]:
    # Small dense codes (a 2024 CCCD at arm's length) have ~1.5-2 px per module, below
    # what zxing's sampling grid needs; bicubic 2x gives it ~3-4 px per module.
    h, w = frame.shape
    return np.asarray(_pil(frame).resize((2 * w, 2 * h), Image.BICUBIC)), 2.0


def _sharpen(frame: np.ndarray) -> tuple[np.ndarray, float]:
    # Defocus and motion blur soften module edges; an unsharp mask restores some edge
    # contrast for the binarizer.
    return np.asarray(_pil(frame).filter(ImageFilter.UnsharpMask(radius=3, percent=200,
                                                                 threshold=0))), 1.0


def _smooth(frame: np.ndarray) -> tuple[np.ndarray, float]:
    # Screen moiré and sensor noise are high-frequency; a small blur removes them while
    # modules (>= 3 px) survive.
    return np.asarray(_pil(frame).filter(ImageFilter.GaussianBlur(1.2))), 1.0


def _stretch(frame: np.ndarray) -> tuple[np.ndarray, float]:
    # Faded paper: spread the 1st-99th percentile over the full range.
    lo, hi = np.percentile(frame, (1, 99))
    if hi - lo < 4:
        return frame, 1.0
    out = (frame.astype(np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(out, 0, 255).astype(np.uint8), 1.0


def _half(frame: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = frame.shape
    return np.asarray(_pil(frame).resize((max(1, w // 2), max(1, h // 2)), Image.BOX)), 0.5


PREPARE: dict[str, Prepare] = {
    "plain": _as_is,
    "upscale2": _upscale2,
    "sharpen": _sharpen,
    "smooth": _smooth,
    "stretch": _stretch,
    "half": _half,
    "global": _as_is,     # same image, zxing's GlobalHistogram binarizer (see _BINARIZER)
}
_BINARIZER = {"global": "GlobalHistogram"}


class ZxingDecoder:
    """Plain zxing-cpp, QR only, library defaults: the baseline."""

    name = "zxing"

    def __init__(self, *, try_rotate: bool = True, try_downscale: bool = True,
                 try_invert: bool = True) -> None:
        self._zx = _import_zxing()
        self._options = {"try_rotate": try_rotate, "try_downscale": try_downscale,
                         "try_invert": try_invert}
        self._closed = False

    def _read(self, image: np.ndarray, scale: float, binarizer: str | None = None) -> list[Code]:
        zx = self._zx
        kwargs: dict[str, Any] = dict(self._options)
        if binarizer:
            kwargs["binarizer"] = getattr(zx.Binarizer, binarizer)
        try:
            found = zx.read_barcodes(image, formats=zx.BarcodeFormat.QRCode, **kwargs)
        except Exception as e:   # noqa: BLE001 - a library failure on odd pixels is "no code"
            log.warning("zxing-cpp failed on a %dx%d frame: %s", image.shape[1], image.shape[0], e)
            return []
        codes = []
        for b in found:
            if not b.valid:
                continue
            p = b.position
            corners = tuple((round(pt.x / scale), round(pt.y / scale))
                            for pt in (p.top_left, p.top_right, p.bottom_right, p.bottom_left))
            raw = bytes(b.bytes)
            codes.append(Code(code_text(raw), raw, QR_CODE, corners))
        return codes

    def decode(self, frame: np.ndarray) -> list[Code]:
        frame = check_frame(frame)
        if frame.size == 0:
            return []
        return self._read(frame, 1.0)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> ZxingDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Measured on bench/decode.py (docs/decoding.md): each later pass runs only when the
# earlier ones found nothing, so frames that read at once cost one zxing call.
DEFAULT_PASSES: tuple[str, ...] = ("plain", "upscale2", "sharpen", "smooth", "stretch")


class MultiPassDecoder(ZxingDecoder):
    """zxing-cpp first, then cheap preprocessed retries until one finds a code."""

    name = "auto"

    def __init__(self, *, passes: Sequence[str] = DEFAULT_PASSES, **options: Any) -> None:
        unknown = [p for p in passes if p not in PREPARE]
        if unknown or not passes:
            from kiosk.errors import ConfigError

            raise ConfigError(f"unknown decoder passes {unknown or list(passes)!r}; "
                              f"choose from {', '.join(PREPARE)}")
        super().__init__(**options)
        self.passes = tuple(passes)

    def decode(self, frame: np.ndarray) -> list[Code]:
        frame = check_frame(frame)
        if frame.size == 0:
            return []
        for name in self.passes:
            try:
                image, scale = PREPARE[name](frame)
            except Exception as e:   # noqa: BLE001 - a preparation failing is not a crash
                log.warning("decoder pass %r failed on a %dx%d frame: %s", name,
                            frame.shape[1], frame.shape[0], e)
                continue
            codes = self._read(np.ascontiguousarray(image), scale, _BINARIZER.get(name))
            if codes:
                log.debug("pass %r found %d code(s)", name, len(codes))
                return unique(codes)
        return []
