"""Benchmark: our QR decoder against plain pyzbar, plain zxing-cpp and OpenCV on the same frames.

    python -m bench.decode                      # 40 frames a category, seed 1
    python -m bench.decode -n 10 --seed 7       # another, smaller set
    python -m bench.decode --region-passes upscale2,sharpen --frame-passes half   # tune "ours"
    python -m bench.decode --explore            # what each single pass adds to one zxing call

A read is right when the bytes equal the encoded payload; a wrong read is any other
decode on a frame with a code, or any decode on a frame without one.  Times are wall
milliseconds per frame on this machine, decoders run one after another (not in parallel).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import framegen
from bench.framegen import CATEGORIES, Frame, frames

CACHE = Path(__file__).parent / ".frames"

# A decode function returns the raw bytes of every code it found.
DecodeFn = Callable[[np.ndarray], list[bytes]]


@dataclass
class Score:
    frames: int = 0
    with_code: int = 0
    right: int = 0
    decoded: int = 0      # frames with a code where anything at all came back
    wrong: int = 0
    ms: list[float] = field(default_factory=list)

    def add(self, payload: bytes | None, found: list[bytes], ms: float) -> None:
        self.frames += 1
        self.ms.append(ms)
        if payload is None:
            self.wrong += len(found)
            return
        self.with_code += 1
        self.decoded += bool(found)
        self.right += payload in found
        self.wrong += sum(1 for f in found if f != payload)

    @property
    def rate(self) -> float:
        return 100.0 * self.right / self.with_code if self.with_code else float("nan")

    @property
    def decoded_rate(self) -> float:
        return 100.0 * self.decoded / self.with_code if self.with_code else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.ms) if self.ms else float("nan")

    @property
    def p95(self) -> float:
        return float(np.percentile(self.ms, 95)) if self.ms else float("nan")


def load_frames(per_category: int, seed: int, cache: bool = True) -> list[Frame]:
    """The frame set, from the git-ignored cache when it was built before."""
    # The generator's own hash in the name: a changed generator never reuses old frames.
    version = hashlib.sha1(Path(framegen.__file__).read_bytes()).hexdigest()[:10]
    path = CACHE / f"seed{seed}-n{per_category}-{version}.npz"
    if cache and path.exists():
        data = np.load(path, allow_pickle=True)
        return list(data["frames"])
    out = list(frames(per_category, seed))
    if cache:
        CACHE.mkdir(exist_ok=True)
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
        np.savez(path, frames=arr)
    return out


def ours(region: Sequence[str] | None = None, frame: Sequence[str] | None = None) -> DecodeFn:
    from hardware.qr import open_decoder

    options = {}
    if region is not None:
        options["region_passes"] = region
    if frame is not None:
        options["frame_passes"] = frame
    d = open_decoder("auto", **options)
    return lambda f: [c.raw for c in d.decode(f)]


def our_pyzbar() -> DecodeFn:
    from hardware.qr import open_decoder

    d = open_decoder("pyzbar")
    return lambda f: [c.raw for c in d.decode(f)]


def plain_zxing() -> DecodeFn:
    import zxingcpp

    def run(f: np.ndarray) -> list[bytes]:
        found = zxingcpp.read_barcodes(f, formats=zxingcpp.BarcodeFormat.QRCode)
        return [bytes(b.bytes) for b in found]

    return run


def plain_pyzbar() -> DecodeFn:
    from pyzbar import pyzbar

    # What a program gets from pyzbar as documented: zbar's text, re-encoded as UTF-8.
    return lambda f: [d.data for d in pyzbar.decode(f, symbols=[pyzbar.ZBarSymbol.QRCODE])]


def opencv() -> DecodeFn:
    import cv2

    det = cv2.QRCodeDetector()

    def run(f: np.ndarray) -> list[bytes]:
        try:
            ok, texts, _, _ = det.detectAndDecodeMulti(f)
        except cv2.error:
            return []
        return [t.encode("utf-8") for t in texts if t] if ok else []

    return run


DECODERS: dict[str, Callable[[], DecodeFn]] = {
    "ours": ours,
    "pyzbar-fixed": our_pyzbar,
    "zxing": plain_zxing,
    "pyzbar": plain_pyzbar,
    "opencv": opencv,
}


def run(decoders: dict[str, DecodeFn], frame_set: list[Frame]) -> dict[str, dict[str, Score]]:
    """Scores by decoder, then by category (plus "ALL" and "ALL_CODE")."""
    scores: dict[str, dict[str, Score]] = {n: {} for n in decoders}
    for fr in frame_set:
        for name, fn in decoders.items():
            t = time.perf_counter()
            found = fn(fr.image)
            ms = 1000 * (time.perf_counter() - t)
            for key in (fr.category, "ALL"):
                scores[name].setdefault(key, Score()).add(fr.payload, found, ms)
    return scores


def table(scores: dict[str, dict[str, Score]]) -> str:
    names = list(scores)
    cats = [c for c in (*CATEGORIES, "ALL") if any(c in s for s in scores.values())]
    head = f"{'category':<14}" + "".join(f" | {n:>33}" for n in names)
    # dec% counts any decode, right or wrong: the "plain pyzbar reads 51 %".
    cols = f" | {'read%':>6} {'dec%':>6} {'wrong':>5} {'med':>6} {'p95':>6}"
    sub = f"{'':<14}" + cols * len(names)
    lines = [head, sub, "-" * len(sub)]
    for c in cats:
        row = f"{c:<14}"
        for n in names:
            s = scores[n].get(c, Score())
            rate = "  -   " if not s.with_code else f"{s.rate:6.1f}"
            dec = "  -   " if not s.with_code else f"{s.decoded_rate:6.1f}"
            row += f" | {rate} {dec} {s.wrong:5d} {s.median:6.1f} {s.p95:6.1f}"
        lines.append(row)
    if "ours" in scores and "zxing" in scores:
        r = scores["ours"]["ALL"].median / scores["zxing"]["ALL"].median
        lines.append(f"median time ours / plain zxing-cpp = {r:.2f}x (target <= 3x)")
        e = scores["ours"].get("no_code")
        z = scores["zxing"].get("no_code")
        if e and z:
            lines.append(f"frames without a code: ours {e.median:.1f} ms, plain zxing-cpp "
                         f"{z.median:.1f} ms median ({e.median / z.median:.1f}x)")
    return "\n".join(lines)


def explore(frame_set: list[Frame]) -> str:
    """What each pass adds to one plain zxing call, as a region pass and as a frame pass."""
    from hardware.qr.zxing import PREPARE

    base = ours([], [])
    plain_ok = {i for i, fr in enumerate(frame_set) if fr.payload in base(fr.image)}
    lines = [f"plain zxing reads {len(plain_ok)} of "
             f"{sum(fr.payload is not None for fr in frame_set)} frames with a code",
             f"{'pass':<10} {'as':<7} {'adds':>5} {'wrong':>5} {'med ms (failed frames)':>24}"]
    for name in PREPARE:
        for where, fn in (("region", ours([name], [])), ("frame", ours([], [name]))):
            s, adds = Score(), 0
            for i, fr in enumerate(frame_set):
                if i in plain_ok:
                    continue
                t = time.perf_counter()
                found = fn(fr.image)
                s.add(fr.payload, found, 1000 * (time.perf_counter() - t))
                adds += fr.payload in found
            lines.append(f"{name:<10} {where:<7} {adds:5d} {s.wrong:5d} {s.median:24.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--per-category", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--decoders", default="ours,zxing,pyzbar,pyzbar-fixed,opencv")
    ap.add_argument("--region-passes", help="comma-separated region passes for 'ours'")
    ap.add_argument("--frame-passes", help="comma-separated frame passes for 'ours'")
    ap.add_argument("--explore", action="store_true")
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    frame_set = load_frames(args.per_category, args.seed, cache=not args.no_cache)
    print(f"{len(frame_set)} frames (seed {args.seed}, {args.per_category} a category) "
          f"ready in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    if args.explore:
        print(explore(frame_set))
        return 0
    decoders = {}
    for name in args.decoders.split(","):
        if name == "ours":
            lists = [None if a is None else [p for p in a.split(",") if p]
                     for a in (args.region_passes, args.frame_passes)]
            decoders[name] = ours(*lists)
        else:
            decoders[name] = DECODERS[name]()
    print(table(run(decoders, frame_set)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
