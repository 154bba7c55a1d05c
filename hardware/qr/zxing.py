"""zxing-cpp backends: one plain pass, and the multi-pass decoder the kiosk uses by default.

zxing-cpp returns the symbol's raw bytes (``Barcode.bytes``) and releases the GIL while it
works, so a worker thread decoding frames does not stall the pygame loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from hardware.errors import DecoderError, DeviceSettingError
from hardware.qr.base import QR_CODE, Code, check_frame, unique

log = logging.getLogger(__name__)


def _import_zxing() -> Any:
    try:
        import zxingcpp
    except ImportError as e:   # also covers a wheel built for another CPU or libc
        raise DecoderError(
            f"the zxing-cpp QR library cannot be loaded ({e}); install it with "
            "'pip install zxing-cpp' or choose the decoder backend 'pyzbar'") from e
    return zxingcpp


def _code(barcode: Any, corners: tuple[tuple[int, int], ...]) -> Code:
    """Our Code from a zxing-cpp Barcode read with ``text_mode=Plain`` (see _READ_TEXT)."""
    # zxing-cpp decodes each segment in the character set the symbol declares (ECI), Kanji
    # mode as Shift_JIS, Hanzi mode as GB2312, and guesses only for undeclared byte
    # segments, where valid multi-byte UTF-8 wins (a CCCD's Vietnamese stays byte-exact;
    # tests/test_qr_charsets.py).  Plain, not the default HRI: HRI writes control
    # characters as "<GS>" and would change the text of the payload.
    return Code(barcode.text, bytes(barcode.bytes), QR_CODE, corners)


# A preparation turns the frame into the image zxing reads and says how many image
# pixels make one frame pixel, so positions can be mapped back.
# None means the pass does not apply to this image.
Prepare = Callable[[np.ndarray], tuple[np.ndarray, float] | None]

# Upscaling pays for small codes only; a big crop upscaled costs 4x and reads nothing more.
_UPSCALE_MAX_SIDE = 480


def _as_is(frame: np.ndarray) -> tuple[np.ndarray, float]:
    return frame, 1.0


def _pil(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(frame, mode="L")


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
    # Faded paper: spread the 1st-99th percentile over the full range.  The percentiles
    # come from a histogram of every 4th pixel: np.percentile on a full frame costs more
    # than the zxing call it prepares.
    hist = np.bincount(frame[::4, ::4].ravel(), minlength=256).cumsum()
    lo = int(np.searchsorted(hist, 0.01 * hist[-1]))
    hi = int(np.searchsorted(hist, 0.99 * hist[-1]))
    if hi - lo < 4:
        return frame, 1.0
    lut = np.clip((np.arange(256, dtype=np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
    return lut.astype(np.uint8)[frame], 1.0


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


@dataclass(frozen=True)
class Upscale:
    """A bicubic upscale by ``factor``, with an unsharp mask before it (``before``: radius in
    the source's pixels, percent) or after it (``after``: radius in the upscaled image's).

    Small dense codes (a 2024 CCCD at arm's length, HC1 on a phone) have 1.5-2.5 px a
    module, below what zxing's finder search and sampling grid need (about 3); upscaled
    they are found, and the mask gives back the edges the lens softened.  A preparation
    (``Prepare``) for images in frame pixels; :meth:`finer` takes an image that already
    has ``finer`` pixels a frame pixel (a crop of the camera's main stream), and upscales
    it only by what is left, to the same size: real pixels where the frame's would be
    interpolated, at the same cost.
    """

    factor: float
    max_side: int = _UPSCALE_MAX_SIDE   # in frame pixels; larger images are not upscaled
    before: tuple[float, int] | None = None
    after: tuple[float, int] | None = None

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, float] | None:
        return self.finer(frame, 1)

    def finer(self, image: np.ndarray, finer: int) -> tuple[np.ndarray, float] | None:
        """The prepared image and its pixels a frame pixel, or None above ``max_side``."""
        h, w = image.shape
        if max(h, w) > self.max_side * finer:
            return None
        img = _pil(image)
        if self.before:
            radius, percent = self.before
            img = img.filter(ImageFilter.UnsharpMask(radius=radius * finer, percent=percent,
                                                     threshold=0))
        size = (max(1, round(w * self.factor / finer)), max(1, round(h * self.factor / finer)))
        if size != (w, h):
            img = img.resize(size, Image.Resampling.BICUBIC)
        if self.after:
            radius, percent = self.after
            img = img.filter(ImageFilter.UnsharpMask(radius=radius, percent=percent,
                                                     threshold=0))
        return np.asarray(img), size[0] / w * finer


def _half(frame: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = frame.shape
    half = (max(1, w // 2), max(1, h // 2))
    return np.asarray(_pil(frame).resize(half, Image.Resampling.BOX)), 0.5


PREPARE: dict[str, Prepare] = {
    "plain": _as_is,
    "upscale2": Upscale(2),
    "upscale3": Upscale(3),
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
    # Bicubic 2x, then the mask of "sharpen".
    "up2_sharpen": Upscale(2, after=(3, 200)),
    # Upscaled, then a mask of radius one source pixel.
    "up2_soft": Upscale(2, max_side=100_000, after=(2, 150)),
    "up25_soft": Upscale(2.5, max_side=100_000, after=(2.5, 150)),
    "up3_soft": Upscale(3, after=(3, 150)),
    "up3_hard": Upscale(3, after=(3, 300)),
    # Bicubic 3x with no sharpening (dim, noisy crops: a mask would sharpen the noise),
    # and with a mask before the upscale: on the clips' candidate crops it reads what
    # "up3_hard" reads at a fifth of its cost (bench/stream.py).
    "up3": Upscale(3),
    "sharp_up3": Upscale(3, before=(1, 200)),
    # Not an image preparation: crops of the frame's QR-like texture, each upscaled
    # (see texture_boxes); handled by MultiPassDecoder itself.
    "texture": _as_is,
}
_BINARIZER = {"global": "GlobalHistogram", "fixed": "FixedThreshold"}


class ZxingDecoder:
    """Plain zxing-cpp, QR only, library defaults: the baseline."""

    name = "zxing"

    def __init__(self, *, try_rotate: bool = True, try_downscale: bool = True,
                 try_invert: bool = True) -> None:
        self._zx = _import_zxing()
        self._options = {"try_rotate": try_rotate, "try_downscale": try_downscale,
                         "try_invert": try_invert, "text_mode": self._zx.TextMode.Plain}
        self._closed = False

    def _read(self, image: np.ndarray, scale: float, binarizer: str | None = None,
              quick: bool = False) -> list[Code]:
        zx = self._zx
        kwargs: dict[str, Any] = dict(self._options)
        if quick:
            # An upscaled retry: zxing's own downscaling would undo it, and a light-on-dark
            # code was already tried on the first call.  Measured: half the cost, same reads.
            kwargs.update(try_downscale=False, try_invert=False)
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
            codes.append(_code(b, corners))
        return codes

    def decode(self, frame: np.ndarray, detail: np.ndarray | None = None) -> list[Code]:
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
# each symbol zxing located but could not read (cheap: the crop is small).  Frame passes
# run when nothing was read; "texture" upscales the few small patches of QR-like texture
# (small dense codes, HC1 on a phone, blur), which is what pays on the calibrated set.
# Every frame without a code pays for the frame passes - keep that list short.  Each list
# stops at the first pass that reads a code.  Left out because they read nothing more
# there: other region passes (2x/3x upscale, erosion, gamma, plain), whole-frame contrast
# stretch with the fixed-threshold binarizer, blur against moiré, 2x upscale of the whole
# frame (as many reads as "texture" at 4x its cost), zbar and OpenCV as fallbacks.
DEFAULT_REGION_PASSES: tuple[str, ...] = ("up2_sharpen",)
DEFAULT_FRAME_PASSES: tuple[str, ...] = ("texture",)


def _check_passes(what: str, passes: Sequence[str]) -> tuple[str, ...]:
    unknown = [p for p in passes if p not in PREPARE]
    if unknown:
        raise DeviceSettingError(
            f"unknown decoder {what} {unknown!r}; choose from {', '.join(PREPARE)}")
    return tuple(passes)


Box = tuple[int, int, int, int]   # x0, y0, x1, y1
_TEXTURE_MAX_SIDE = 256


def _label(on: np.ndarray) -> np.ndarray:
    """4-connected labels of the true cells of ``on`` (0 elsewhere): each blob gets the
    largest flat index + 1 of its cells.

    Vector steps on a grid of ~1000 cells instead of a Python flood fill: each step takes
    the largest label among a cell's neighbours, then jumps through labels (a label is a
    cell of the same blob, whose own label may be larger already), so a blob is settled in
    a few steps rather than one step per cell of its length.
    """
    lab = np.where(on, np.arange(1, on.size + 1).reshape(on.shape), 0)
    while True:
        grown = lab.copy()
        grown[1:] = np.maximum(grown[1:], lab[:-1])
        grown[:-1] = np.maximum(grown[:-1], lab[1:])
        grown[:, 1:] = np.maximum(grown[:, 1:], lab[:, :-1])
        grown[:, :-1] = np.maximum(grown[:, :-1], lab[:, 1:])
        grown *= on
        grown[on] = grown.ravel()[grown[on] - 1]
        if np.array_equal(grown, lab):
            return lab
        lab = grown


def texture_boxes(frame: np.ndarray, cell: int = 16, ratio: float = 2.0, floor: float = 6.0,
                  limit: int = 2, max_side: int | None = None, pool: int = 1) -> list[Box]:
    """Boxes around QR-like texture that zxing did not locate, strongest first.

    A QR code has dense edges in both directions: the score of a cell is the smaller of
    its mean horizontal and vertical gradient.  Cells above ``ratio`` times the frame's
    median score (the background: noise and soft shading) and above ``floor`` grey
    levels form 4-connected blobs; each roughly square blob of 4+ cells gives a box with
    one cell of margin; boxes wider or taller than ``max_side`` are dropped.  ``pool`` = 2
    first averages each 2x2 block of pixels: it halves the sensor noise, which at a dim
    entrance's gain scores as high as a blurred code does (the stream decoder's scout).
    Numpy only: under 1 ms for 640x480 here.
    """
    if pool not in (1, 2):
        raise ValueError(f"texture_boxes: pool must be 1 or 2, got {pool!r}")
    h, w = frame.shape
    # Scored on every other pixel: a quarter of the cost, and a code's texture survives
    # (same reads on the benchmark).  With ``pool`` = 2 that is every other 2x2 average,
    # summed straight from the frame's pixels (the averages skipped are never computed).
    step = 2
    if pool == 2:
        even = frame[: h // 2 * 2, : w // 2 * 2]
        stride = 2 * step
        small = ((even[0::stride, 0::stride].astype(np.uint16) + even[1::stride, 0::stride]
                  + even[0::stride, 1::stride] + even[1::stride, 1::stride] + 2) >> 2
                 ).astype(np.uint8)
    else:
        small = frame[::step, ::step]
    scale = step * pool
    c = max(2, cell // scale)
    gh, gw = (small.shape[0] - 1) // c, (small.shape[1] - 1) // c
    if gh < 2 or gw < 2:
        return []
    cell = c * scale
    f = small[: gh * c + 1, : gw * c + 1].astype(np.int16)
    gx = np.abs(np.diff(f[:-1], axis=1)).reshape(gh, c, gw, c).mean(axis=(1, 3))
    gy = np.abs(np.diff(f[:, :-1], axis=0)).reshape(gh, c, gw, c).mean(axis=(1, 3))
    score = np.minimum(gx, gy)
    on = score > max(floor, ratio * float(np.median(score)))
    lab = _label(on)
    blobs: list[tuple[float, Box]] = []
    for label in np.unique(lab[on]):
        ys, xs = np.nonzero(lab == label)
        bw, bh = int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1
        if bw * bh < 4 or max(bw, bh) > 4 * min(bw, bh):   # specks, lines of text
            continue
        box = (max(0, (int(xs.min()) - 1) * cell), max(0, (int(ys.min()) - 1) * cell),
               min(w, (int(xs.max()) + 2) * cell), min(h, (int(ys.max()) + 2) * cell))
        if max_side is not None and max(box[2] - box[0], box[3] - box[1]) > max_side:
            continue
        blobs.append((float(score[ys, xs].sum()), box))
    blobs.sort(key=lambda b: -b[0])
    return [box for _, box in blobs[:limit]]


class MultiPassDecoder(ZxingDecoder):
    """zxing-cpp once; retries with cheap preprocessing only where they can pay.

    Frames that read at once cost one zxing call.  When zxing finds a symbol but cannot
    decode it, the region passes work on a small crop around it.  Then the frame passes
    run: by default up to two small patches of QR-like texture, upscaled 3x and
    sharpened - what reads small dense codes and soft ones.  A frame without a code
    pays one zxing call, ~1 ms of texture scoring and those few small retries.
    """

    name = "auto"
    # What runs on each patch of QR-like texture (see _texture).  A strong unsharp mask
    # (300 %) read 4 more of 280 frames than a mild one (150 %) at the same cost.
    texture_passes: tuple[str, ...] = ("up3_hard",)

    def __init__(self, *, region_passes: Sequence[str] = DEFAULT_REGION_PASSES,
                 frame_passes: Sequence[str] = DEFAULT_FRAME_PASSES,
                 region_margin: float = 0.3, **options: Any) -> None:
        self.region_passes = _check_passes("region_passes", region_passes)
        self.frame_passes = _check_passes("frame_passes", frame_passes)
        if not 0 <= region_margin <= 2:
            raise DeviceSettingError(
                f"region_margin must be between 0 and 2, got {region_margin!r}")
        self.region_margin = region_margin
        super().__init__(**options)

    def decode(self, frame: np.ndarray, detail: np.ndarray | None = None) -> list[Code]:
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
        # Also when something was located: what zxing locates in a frame it cannot read
        # is often a fragment, and the code is elsewhere in the texture.
        return unique(self._passes(frame, self.frame_passes, (0, 0)))

    def _texture(self, frame: np.ndarray) -> list[Code]:
        """Upscaled crops of QR-like texture zxing did not locate (small, soft codes)."""
        # Only small patches pay: a code big enough to fill a larger box has modules zxing
        # already resolves, and upscaling the box only costs (measured).
        for x0, y0, x1, y1 in texture_boxes(frame, max_side=_TEXTURE_MAX_SIDE):
            crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
            codes = self._passes(crop, self.texture_passes, (x0, y0))
            if codes:
                return codes
        return []

    def _read_located(self, frame: np.ndarray) -> tuple[list[Code], list[Box]]:
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
                codes.append(_code(b, tuple(pts)))
                continue
            xs, ys = [x for x, _ in pts], [y for _, y in pts]
            m = self.region_margin * max(max(xs) - min(xs), max(ys) - min(ys), 8)
            box = (max(0, int(min(xs) - m)), max(0, int(min(ys) - m)),
                   min(w, int(max(xs) + m) + 1), min(h, int(max(ys) + m) + 1))
            if box[2] - box[0] >= 8 and box[3] - box[1] >= 8 and box not in boxes:
                boxes.append(box)
        return codes, boxes

    def _passes(self, image: np.ndarray, passes: Sequence[str],
                offset: tuple[int, int], finer: int = 1) -> list[Code]:
        """Try ``passes`` on ``image`` in turn; positions come back in frame pixels, ``image``
        being at ``offset`` in the frame with ``finer`` of its pixels a frame pixel."""
        for name in passes:
            if name == "texture":
                codes = self._texture(image)
                if codes:
                    return codes
                continue
            prepare = PREPARE[name]
            try:
                if isinstance(prepare, Upscale):
                    ready = prepare.finer(image, finer)
                else:
                    ready = prepare(image)
                    if ready is not None:
                        ready = ready[0], ready[1] * finer
            except Exception as e:   # noqa: BLE001 - a preparation failing is not a crash
                log.warning("decoder pass %r failed on a %dx%d image: %s", name,
                            image.shape[1], image.shape[0], e)
                continue
            if ready is None:
                continue
            prepared, scale = ready
            codes = self._read(np.ascontiguousarray(prepared), scale, _BINARIZER.get(name),
                               quick=scale > 1)
            if codes:
                log.debug("pass %r found %d code(s)", name, len(codes))
                ox, oy = offset
                return [Code(c.text, c.raw, c.format,
                             tuple((x + ox, y + oy) for x, y in c.position)) for c in codes]
        return []
