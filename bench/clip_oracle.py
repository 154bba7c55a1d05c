"""Why a presentation clip is missed: which pass, if any, could read its first 15 frames.

    python -m bench.clip_oracle --seed 1 -n 40          # the tuning seed only
    python -m bench.clip_oracle --seed 2 --exposure short   # the camera's "short" profile

For every clip with a code that the stream decoder (``hardware.qr.stream``) does not read
within ``WITHIN`` frames, every one of those frames goes through an oracle: plain zxing-cpp
at full effort on the whole frame (each binarizer), zbar on the whole frame, and the costly
passes on a crop around where the generator put the code (``params["where_px"]``: the
oracle knows where to look, the decoder does not): upscaled 2-4x, sharpened, smoothed,
contrast-stretched, each binarizer, zbar, three frames averaged, and Wiener deconvolution
with the blur the generator applied.  A miss is then

* ``a`` nothing reads any of its first 15 frames, by any method;
* ``b`` a pass the stream decoder has (``up3_hard``, ``up2_sharpen``, ``up2_soft``,
  ``stack``, ``zbar``) reads some frame, on the code's region: the decoder did not try it
  there in time (scheduling, or where it looked);
* ``c`` only a pass the stream decoder does not have reads it (its cost is printed).

The oracle never counts a decode of other bytes as a read; it prints any it sees.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable

import cv2
import numpy as np

from bench.clipgen import Clip, add_scene_options, describe, scene_options
from bench.stream import WITHIN, load_clips, show_gap

# Passes the stream decoder has (on a candidate box, or the whole frame for zbar).
STREAM_HAS = {"crop_up3_hard", "crop_up2_sharpen", "crop_up2_soft", "stack3", "zbar",
              "crop_up2_sharpen_zx"}

Pass = Callable[[np.ndarray, tuple[int, int, int, int], list[np.ndarray], dict, int], list[bytes]]


def _zx(img: np.ndarray, binarizer: str | None = None, fast: bool = False) -> list[bytes]:
    import zxingcpp

    kw: dict = {}
    if binarizer:
        kw["binarizer"] = getattr(zxingcpp.Binarizer, binarizer)
    if fast:
        kw.update(try_downscale=False, try_invert=False)
    return [bytes(b.bytes) for b in zxingcpp.read_barcodes(
        np.ascontiguousarray(img), formats=zxingcpp.BarcodeFormat.QRCode, **kw) if b.valid]


def _zbar(img: np.ndarray) -> list[bytes]:
    from hardware.qr.zbar import PyzbarDecoder

    global _ZBAR
    if _ZBAR is None:
        _ZBAR = PyzbarDecoder()
    return [c.raw for c in _ZBAR.decode(np.ascontiguousarray(img))]


_ZBAR = None


def _up(img: np.ndarray, k: float) -> np.ndarray:
    h, w = img.shape
    return cv2.resize(img, (round(w * k), round(h * k)), interpolation=cv2.INTER_CUBIC)


def _unsharp(img: np.ndarray, sigma: float, amount: float) -> np.ndarray:
    f = img.astype(np.float32)
    b = cv2.GaussianBlur(f, (0, 0), sigma)
    return np.clip(f + amount * (f - b), 0, 255).astype(np.uint8)


def _stretch(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, (1, 99))
    if hi - lo < 4:
        return img
    return np.clip((img.astype(np.float32) - lo) * 255 / (hi - lo), 0, 255).astype(np.uint8)


def _psf(params: dict, i: int) -> np.ndarray | None:
    """The blur the generator applied to frame ``i`` (motion line, then defocus disk)."""
    from bench import framegen as fg

    length = params["motion_blur_px"][i]
    radius = params["defocus_radius_px"][i]
    size = 2 * int(max(length, 2 * radius) + 4) + 1
    k = np.zeros((size, size), np.float32)
    k[size // 2, size // 2] = 1
    if length > 0.7:
        # The angle is not recorded; the oracle tries the four main directions below.
        pass
    if radius > 0.3:
        k = fg._defocus(k, radius)
    return k


def _wiener(img: np.ndarray, k: np.ndarray, snr: float = 0.01) -> np.ndarray:
    f = img.astype(np.float32) / 255
    kh, kw = k.shape
    if kh > f.shape[0] or kw > f.shape[1]:
        return img      # a blur longer than the crop: nothing to undo it with
    pad = np.zeros_like(f)
    pad[:kh, :kw] = k
    pad = np.roll(pad, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    fk = np.fft.rfft2(pad)
    out = np.fft.irfft2(np.fft.rfft2(f) * np.conj(fk) / (np.abs(fk) ** 2 + snr), f.shape)
    return np.clip(out * 255, 0, 255).astype(np.uint8)


def _motion_kernels(length: float) -> list[np.ndarray]:
    from bench import framegen as fg

    out = []
    for ang in np.radians([0, 45, 90, 135]):
        n = 2 * int(length + 3) + 1
        k = np.zeros((n, n), np.float32)
        k[n // 2, n // 2] = 1
        out.append(fg._motion(k, length, float(ang)))
    return out


def _deconv(crop: np.ndarray, params: dict, i: int) -> list[bytes]:
    """Wiener deconvolution with the generator's own blur (angle unknown: 4 tries)."""
    length = params["motion_blur_px"][i]
    radius = params["defocus_radius_px"][i]
    kernels: list[np.ndarray] = []
    disk = _psf(params, i)
    if length > 0.7:
        for m in _motion_kernels(length):
            kernels.append(cv2.filter2D(disk, -1, m) if radius > 0.3 else m)
    elif radius > 0.3:
        kernels.append(disk)
    for k in kernels:
        for snr in (0.005, 0.02):
            sharp = _wiener(crop, k / k.sum(), snr)
            found = _zx(_up(sharp, 2), fast=True) or _zx(sharp)
            if found:
                return found
    return []


def _stack(history: list[np.ndarray], box: tuple[int, int, int, int]) -> np.ndarray | None:
    from hardware.qr.stream import _phase_shift

    if len(history) < 2:
        return None
    x0, y0, x1, y1 = box
    ref = history[-1][y0:y1, x0:x1].astype(np.float32)
    total, n = ref.copy(), 1
    h, w = history[-1].shape
    for old in history[:-1]:
        dy, dx = _phase_shift(ref, old[y0:y1, x0:x1].astype(np.float32))
        oy0, ox0 = y0 - dy, x0 - dx
        if oy0 < 0 or ox0 < 0 or oy0 + (y1 - y0) > h or ox0 + (x1 - x0) > w:
            continue
        total += old[oy0:oy0 + (y1 - y0), ox0:ox0 + (x1 - x0)]
        n += 1
    return np.clip(total / n + 0.5, 0, 255).astype(np.uint8) if n > 1 else None


def passes() -> dict[str, Pass]:
    def crop(f: np.ndarray, b: tuple[int, int, int, int]) -> np.ndarray:
        return np.ascontiguousarray(f[b[1]:b[3], b[0]:b[2]])

    def hard(k: float, amount: float) -> Pass:
        return lambda f, b, h, p, i: _zx(_unsharp(_up(crop(f, b), k), k, amount), fast=True)

    out: dict[str, Pass] = {
        "zx": lambda f, b, h, p, i: _zx(f),
        "zx_global": lambda f, b, h, p, i: _zx(f, "GlobalHistogram"),
        "zx_fixed": lambda f, b, h, p, i: _zx(_stretch(f), "FixedThreshold"),
        "zbar": lambda f, b, h, p, i: _zbar(f),
        "crop": lambda f, b, h, p, i: _zx(crop(f, b)),
        "crop_global": lambda f, b, h, p, i: _zx(crop(f, b), "GlobalHistogram"),
        "crop_up2": lambda f, b, h, p, i: _zx(_up(crop(f, b), 2), fast=True),
        "crop_up3": lambda f, b, h, p, i: _zx(_up(crop(f, b), 3), fast=True),
        "crop_up4": lambda f, b, h, p, i: _zx(_up(crop(f, b), 4), fast=True),
        "crop_up2_sharpen": hard(2, 2.0),
        "crop_up2_soft": hard(2, 1.5),
        "crop_up3_hard": hard(3, 3.0),
        "crop_up4_hard": hard(4, 3.0),
        "crop_up3_global": lambda f, b, h, p, i: _zx(_up(crop(f, b), 3), "GlobalHistogram",
                                                     fast=True),
        "crop_up3_fixed": lambda f, b, h, p, i: _zx(_stretch(_up(crop(f, b), 3)),
                                                    "FixedThreshold", fast=True),
        "crop_smooth_up3": lambda f, b, h, p, i: _zx(
            _up(cv2.GaussianBlur(crop(f, b), (0, 0), 1.0), 3), fast=True),
        "crop_stretch_up3": lambda f, b, h, p, i: _zx(_stretch(_up(crop(f, b), 3)), fast=True),
        "crop_zbar": lambda f, b, h, p, i: _zbar(crop(f, b)),
        "crop_zbar_up2": lambda f, b, h, p, i: _zbar(_up(crop(f, b), 2)),
        "stack3": lambda f, b, h, p, i: (lambda s: [] if s is None else (
            _zx(s) or _zx(_unsharp(_up(s, 2), 2, 2.0), fast=True)))(_stack(h, b)),
        "stack3_up3_hard": lambda f, b, h, p, i: (lambda s: [] if s is None else _zx(
            _unsharp(_up(s, 3), 3, 3.0), fast=True))(_stack(h, b)),
        "deconv": lambda f, b, h, p, i: _deconv(crop(f, b), p, i),
    }
    return out


def code_box(clip: Clip, i: int, margin: float = 0.45) -> tuple[int, int, int, int]:
    x, y, width = clip.params["where_px"][i]
    h, w = clip.frames[i].shape
    half = width * (0.5 + margin)
    return (max(0, int(x - half)), max(0, int(y - half)), min(w, int(x + half)),
            min(h, int(y + half)))


def stream_firsts(clips: list[Clip]) -> list[int | None]:
    """First frame each clip is read on by the stream decoder (frozen clock: no shedding)."""
    from hardware.qr.stream import StreamDecoder

    d = StreamDecoder(clock=lambda: 0.0)
    out: list[int | None] = []
    for clip in clips:
        show_gap(d.decode, clip)    # nobody in front of the camera between two clips
        first = None
        for i, f in enumerate(clip.frames):
            found = [c.raw for c in d.decode(f)]
            if first is None and clip.payload in found:
                first = i
        out.append(first)
    return out


def oracle(clip: Clip, names: list[str] | None = None) -> tuple[dict[str, list[int]],
                                                                   dict[str, float], int]:
    """Frames (of the first WITHIN) each pass reads; mean ms a pass; wrong decodes seen."""
    table = passes()
    reads: dict[str, list[int]] = {n: [] for n in table if names is None or n in names}
    cost: dict[str, list[float]] = {n: [] for n in reads}
    wrong = 0
    for i in range(min(WITHIN, len(clip.frames))):
        f = clip.frames[i]
        box = code_box(clip, i)
        history = list(clip.frames[max(0, i - 2):i + 1])
        for n in reads:
            t = time.thread_time()
            try:
                found = table[n](f, box, history, clip.params, i)
            except Exception as e:   # noqa: BLE001 - an oracle pass failing is reported
                print(f"  pass {n} failed: {e}", file=sys.stderr)
                found = []
            cost[n].append(1000 * (time.thread_time() - t))
            if clip.payload in found:
                reads[n].append(i)
            wrong += sum(1 for x in found if x != clip.payload)
    return reads, {n: statistics.fmean(v) for n, v in cost.items()}, wrong


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--per-kind", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--kinds", default="card,phone,paper")
    add_scene_options(ap)
    args = ap.parse_args(argv)
    scene = scene_options(args)
    clips = [c for c in load_clips(args.per_kind, args.seed, **scene)
             if c.payload is not None and c.kind in args.kinds.split(",")]
    firsts = stream_firsts(clips)
    missed = [c for c, f in zip(clips, firsts, strict=True) if f is None or f >= WITHIN]
    print(f"{len(clips)} clips with a code ({describe(scene)}), stream misses "
          f"{len(missed)} within {WITHIN} frames")
    classes: Counter[str] = Counter()
    by_pass: Counter[str] = Counter()
    costs: dict[str, list[float]] = {}
    for clip in missed:
        reads, cost, wrong = oracle(clip)
        for n, v in cost.items():
            costs.setdefault(n, []).append(v)
        readers = {n for n, fr in reads.items() if fr}
        for n in readers:
            by_pass[n] += 1
        if not readers:
            cls = "a"
        elif readers & STREAM_HAS:
            cls = "b"
        else:
            cls = "c"
        classes[cls] += 1
        p = clip.params
        first = {n: fr[0] for n, fr in sorted(reads.items(), key=lambda kv: kv[1][:1] or [99])
                 if fr}
        print(f"{clip.kind:5} {clip.index:3d} {p['family']:8} {p['size'][0]:4} "
              f"af={int(p['autofocus'])} dim={int(p['dim'])} shutter={p['shutter_ms']}ms "
              f"gain={p['gain']} ppmod={p['px_per_module']:4} "
              f"blur={p['motion_blur_px'][:WITHIN:3]} defoc={p['defocus_radius_px'][:WITHIN:3]}"
              f" -> {cls} {dict(list(first.items())[:6])}" + (f" WRONG {wrong}" if wrong else ""),
              flush=True)
    print(f"classes: {dict(classes)}")
    print("clips each pass reads (of the missed): "
          + ", ".join(f"{n} {k}" for n, k in by_pass.most_common()))
    print("mean ms a frame per pass: "
          + ", ".join(f"{n} {statistics.fmean(v):.1f}" for n, v in sorted(costs.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
