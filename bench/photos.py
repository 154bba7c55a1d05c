"""Benchmark: real photos of QR codes, the zxing project's blackbox sets (qrcode-1 ... 6).

    python -m bench.photos PATH          # PATH holds qrcode-1 ... qrcode-6 (or any folders
                                         # of IMAGE + IMAGE.txt pairs)
    python -m bench.photos PATH --passes up3_hard,zbar   # stream passes to try

The photos are not in this repository (their licence is the zxing project's); make a local
copy, e.g. from a clone of github.com/zxing/zxing: core/src/test/resources/blackbox/.

Each photo has a .txt file with the expected text (UTF-8; the zxing tests drop one final
newline, so both forms count).  A photo is read when one of the returned texts is the
expected one; a wrong text is a photo where texts came back and none is the expected one.
Decoders, one after another on each photo:

* ``zxing``   plain zxing-cpp, library defaults, text with ``TextMode.Plain`` (the text mode
              only chooses how the decoded bytes are written out, not how hard it looks);
* ``pyzbar``  plain pyzbar as documented (zbar's text, re-encoded as UTF-8);
* ``auto``    our per-frame decoder (one photo, one call);
* ``held``    our stream decoder given the photo as 15 consecutive frames: a code held
              still for half a second in front of the kiosk's camera.

Cost: CPU time of this thread (``time.thread_time``) per photo; for ``held``, per frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware.images import load_gray

HELD_FRAMES = 15
SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp"}


@dataclass
class PhotoScore:
    photos: int = 0
    right: int = 0
    wrong: int = 0
    read: set[str] = field(default_factory=set)
    wrong_names: list[str] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)


def photos(root: Path) -> list[tuple[str, Path, str]]:
    """(name, image, expected text) for every image with a .txt beside it, in name order."""
    out = []
    for image in sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES):
        txt = image.with_suffix(".txt")
        if txt.exists():
            with open(txt, encoding="utf-8", newline="") as f:
                out.append((str(image.relative_to(root)), image, f.read()))
    return out


def is_right(expected: str, text: str) -> bool:
    return text == expected or (expected.endswith("\n") and text == expected[:-1])


def plain_zxing() -> Callable[[np.ndarray], list[str]]:
    import zxingcpp

    return lambda f: [b.text for b in zxingcpp.read_barcodes(
        f, formats=zxingcpp.BarcodeFormat.QRCode, text_mode=zxingcpp.TextMode.Plain)]


def plain_pyzbar() -> Callable[[np.ndarray], list[str]]:
    from pyzbar import pyzbar

    return lambda f: [d.data.decode("utf-8", "replace")
                      for d in pyzbar.decode(f, symbols=[pyzbar.ZBarSymbol.QRCODE])]


def ours() -> Callable[[np.ndarray], list[str]]:
    from hardware.qr import open_decoder

    d = open_decoder("auto")
    return lambda f: [c.text for c in d.decode(f)]


def run(root: Path, passes: list[str] | None) -> dict[str, PhotoScore]:
    from hardware.qr.stream import DEFAULT_STREAM_PASSES, StreamDecoder

    decoders = {"zxing": plain_zxing(), "pyzbar": plain_pyzbar(), "auto": ours()}
    scores = {n: PhotoScore() for n in (*decoders, "held")}
    stream = StreamDecoder(stream_passes=passes or DEFAULT_STREAM_PASSES)
    for name, path, expected in photos(root):
        frame = load_gray(path)
        for dec, fn in decoders.items():
            t = time.thread_time()
            texts = fn(frame)
            _add(scores[dec], name, expected, texts, 1000 * (time.thread_time() - t))
        stream.reset()
        texts = []
        for _ in range(HELD_FRAMES):
            t = time.thread_time()
            texts = [c.text for c in stream.decode(frame)]
            scores["held"].cpu_ms.append(1000 * (time.thread_time() - t))
            if texts:
                break
        _add(scores["held"], name, expected, texts, None)
    return scores


def _add(s: PhotoScore, name: str, expected: str, texts: list[str], ms: float | None) -> None:
    s.photos += 1
    if ms is not None:
        s.cpu_ms.append(ms)
    if any(is_right(expected, t) for t in texts):
        s.right += 1
        s.read.add(name)
    elif texts:
        s.wrong += 1
        s.wrong_names.append(name)


def report(scores: dict[str, PhotoScore]) -> str:
    zx, zb = scores["zxing"].read, scores["pyzbar"].read
    target = zx | zb
    lines = [f"{'decoder':<8} {'read':>5} {'of':>4} {'wrong':>5} {'cpu med':>8} {'mean':>6}  "
             f"missed of (zxing | zbar)"]
    for n, s in scores.items():
        missed = sorted(target - s.read)
        lines.append(f"{n:<8} {s.right:5d} {s.photos:4d} {s.wrong:5d} "
                     f"{statistics.median(s.cpu_ms):8.2f} {statistics.fmean(s.cpu_ms):6.2f}  "
                     f"{len(missed)}: {' '.join(missed)}")
    for n, s in scores.items():
        if s.wrong_names:
            lines.append(f"wrong texts from {n}: {' '.join(s.wrong_names)}")
    lines.append(f"zbar reads and plain zxing-cpp does not: {' '.join(sorted(zb - zx)) or '-'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("path", type=Path, help="folder holding the blackbox qrcode-N folders")
    ap.add_argument("--passes", help="comma-separated stream passes for 'held'")
    args = ap.parse_args(argv)
    if not photos(args.path):
        print(f"no image with a .txt beside it under {str(args.path)!r}", file=sys.stderr)
        return 2
    print(report(run(args.path, args.passes.split(",") if args.passes else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
