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


def _upscale3(frame: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = frame.shape
    return np.asarray(_pil(frame).resize((3 * w, 3 * h), Image.BICUBIC)), 3.0


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


def _gamma(g: float) -> Prepare:
    lut = np.array([255 * (i / 255) ** g for i in range(256)]).round().astype(np.uint8)

    def run(frame: np.ndarray) -> tuple[np.ndarray, float]:
        # Blur plus a screen's or camera's gamma moves the edges between modules: dark
        # modules swell or shrink past the binarizer's threshold.  Re-curving undoes it.
        return lut[frame], 1.0

    return run


def _minmax(size: int, grow_dark: bool) -> Prepare:
    def run(frame: np.ndarray) -> tuple[np.ndarray, float]:
        f = ImageFilter.MinFilter(size) if grow_dark else ImageFilter.MaxFilter(size)
        return np.asarray(_pil(frame).filter(f)), 1.0

    return run


def _up2_sharpen(frame: np.ndarray) -> tuple[np.ndarray, float]:
    img, scale = _upscale2(frame)
    return _sharpen(img)[0], scale


def _half(frame: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = frame.shape
    return np.asarray(_pil(frame).resize((max(1, w // 2), max(1, h // 2)), Image.BOX)), 0.5


PREPARE: dict[str, Prepare] = {
    "plain": _as_is,
    "upscale2": _upscale2,
    "upscale3": _upscale3,
    "sharpen": _sharpen,
    "smooth": _smooth,
    "stretch": _stretch,
    "half": _half,
    "global": _as_is,     # same image, zxing's GlobalHistogram binarizer (see _BINARIZER)
    "fixed": _stretch,    # stretched, then zxing's FixedThreshold binarizer
    "gamma_dark": _gamma(1.8),
    "gamma_light": _gamma(0.55),
    "erode": _minmax(3, True),
    "dilate": _minmax(3, False),
    "up2_sharpen": _up2_sharpen,
}
_BINARIZER = {"global": "GlobalHistogram", "fixed": "FixedThreshold"}


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


# Measured with bench/decode.py (docs/decoding.md).  Region passes run on a crop around
# each symbol zxing located but could not read; frame passes run only when it located
# nothing.  Each list stops at the first pass that reads a code.
DEFAULT_REGION_PASSES: tuple[str, ...] = ("upscale2", "sharpen", "stretch", "smooth", "global",
                                          "half")
DEFAULT_FRAME_PASSES: tuple[str, ...] = ("half",)
DEFAULT_TEXTURE_PASSES: tuple[str, ...] = ("upscale3",)


def _check_passes(what: str, passes: Sequence[str]) -> tuple[str, ...]:
    unknown = [p for p in passes if p not in PREPARE]
    if unknown:
        from kiosk.errors import ConfigError

        raise ConfigError(f"unknown decoder {what} {unknown!r}; choose from {', '.join(PREPARE)}")
    return tuple(passes)


class MultiPassDecoder(ZxingDecoder):
    """zxing-cpp once; retries with cheap preprocessing only where they can pay.

    Frames that read at once cost one zxing call.  When zxing finds a symbol but cannot
    decode it, the retries work on a small crop around it, so they are cheap.
    """

    name = "auto"

    def __init__(self, *, region_passes: Sequence[str] = DEFAULT_REGION_PASSES,
                 frame_passes: Sequence[str] = DEFAULT_FRAME_PASSES,
                 texture_passes: Sequence[str] = DEFAULT_TEXTURE_PASSES, texture_windows: int = 3,
                 region_margin: float = 0.3, **options: Any) -> None:
        self.texture_passes = _check_passes("texture_passes", texture_passes)
        self.texture_windows = texture_windows
        self.region_passes = _check_passes("region_passes", region_passes)
        self.frame_passes = _check_passes("frame_passes", frame_passes)
        if not 0 <= region_margin <= 2:
            from kiosk.errors import ConfigError

            raise ConfigError(f"region_margin must be between 0 and 2, got {region_margin!r}")
        self.region_margin = region_margin
        super().__init__(**options)

    def decode(self, frame: np.ndarray) -> list[Code]:
        frame = check_frame(frame)
        if frame.size == 0:
            return []
        codes, located = self._read_located(frame)
        if codes:
            return unique(codes)
        for box in located:
            x0, y0, x1, y1 = box
            crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
            codes = self._passes(crop, self.region_passes, (x0, y0))
            if codes:
                return unique(codes)
        if not located:
            codes = self._passes(frame, self.frame_passes, (0, 0))
            if codes:
                return unique(codes)
            for x0, y0, x1, y1 in self._texture_windows(frame, self.texture_windows):
                crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
                codes = self._passes(crop, self.texture_passes, (x0, y0))
                if codes:
                    return unique(codes)
        return []

    def _read_located(self, frame: np.ndarray) -> tuple[list[Code], list[tuple[int, int, int, int]]]:
        """Decoded codes, and boxes (with margin) around symbols found but not decoded."""
        zx = self._zx
        try:
            found = zx.read_barcodes(frame, formats=zx.BarcodeFormat.QRCode, return_errors=True,
                                     **self._options)
        except Exception as e:   # noqa: BLE001 - a library failure on odd pixels is "no code"
            log.warning("zxing-cpp failed on a %dx%d frame: %s", frame.shape[1], frame.shape[0], e)
            return [], []
        codes, boxes = [], []
        h, w = frame.shape
        for b in found:
            p = b.position
            pts = [(pt.x, pt.y) for pt in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]
            if b.valid:
                raw = bytes(b.bytes)
                codes.append(Code(code_text(raw), raw, QR_CODE, tuple(pts)))
                continue
            xs, ys = [x for x, _ in pts], [y for _, y in pts]
            m = self.region_margin * max(max(xs) - min(xs), max(ys) - min(ys), 8)
            box = (max(0, int(min(xs) - m)), max(0, int(min(ys) - m)),
                   min(w, int(max(xs) + m) + 1), min(h, int(max(ys) + m) + 1))
            if box[2] - box[0] >= 8 and box[3] - box[1] >= 8 and box not in boxes:
                boxes.append(box)
        return codes, boxes

    def _texture_windows(self, frame: np.ndarray, count: int = 3) -> list[tuple[int, int, int, int]]:
        """Boxes around the ``count`` busiest square windows: where a code too small for
        zxing's finder-pattern search most likely is."""
        b = 16
        h, w = frame.shape
        if h < 4 * b or w < 4 * b:
            return []
        f = frame.astype(np.int16)
        g = np.zeros((h, w), np.int32)
        g[:, 1:] += np.abs(np.diff(f, axis=1))
        g[1:, :] += np.abs(np.diff(f, axis=0))
        hb, wb = h // b, w // b
        blocks = g[: hb * b, : wb * b].reshape(hb, b, wb, b).sum(axis=(1, 3))
        # A small code with its quiet zone spans about a fifth of the frame height.
        n = max(4, min(hb, wb, round(min(h, w) / 5 / b)))
        c = np.pad(blocks.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        win = c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]
        boxes = []
        for _ in range(count):
            i, j = np.unravel_index(int(np.argmax(win)), win.shape)
            if win[i, j] <= 0:
                break
            win[max(0, i - n + 1): i + n, max(0, j - n + 1): j + n] = -1   # no overlaps
            pad = b
            boxes.append((max(0, j * b - pad), max(0, i * b - pad),
                          min(w, (j + n) * b + pad), min(h, (i + n) * b + pad)))
        return boxes

    def _passes(self, image: np.ndarray, passes: Sequence[str],
                offset: tuple[int, int]) -> list[Code]:
        for name in passes:
            try:
                prepared, scale = PREPARE[name](image)
            except Exception as e:   # noqa: BLE001 - a preparation failing is not a crash
                log.warning("decoder pass %r failed on a %dx%d image: %s", name,
                            image.shape[1], image.shape[0], e)
                continue
            codes = self._read(np.ascontiguousarray(prepared), scale, _BINARIZER.get(name))
            if codes:
                log.debug("pass %r found %d code(s)", name, len(codes))
                ox, oy = offset
                return [Code(c.text, c.raw, c.format,
                             tuple((x + ox, y + oy) for x, y in c.position)) for c in codes]
        return []
