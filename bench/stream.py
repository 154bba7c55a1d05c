"""Benchmark: decoding presentation clips as a stream, against per-frame decoders.

    python -m bench.stream                       # 40 clips a kind, seed 1 (tuning seed)
    python -m bench.stream --seed 2              # the held-out seed
    python -m bench.stream --live --slow 4       # the kiosk's camera path, CPU 4x slower
    python -m bench.stream --exposure short      # the camera in libcamera's "short" profile

Clips come from ``bench/clipgen.py`` (30 frames at 30 fps: a code shown, braked, held with a
shaking hand; and cards without a code).  Every decoder sees every frame of a clip in order:

* ``stream``   the kiosk's camera decoder (``hardware.qr.stream.StreamDecoder``), one
               instance for the whole run, as a camera runs all day;
* ``auto``     today's per-frame multi-pass decoder;
* ``zxing``    plain zxing-cpp, one call a frame, library defaults;
* ``pyzbar``   plain pyzbar, as documented (zbar's text re-encoded as UTF-8).

Scores: a clip is read within N frames when the encoded bytes came back on one of its first
N frames; a wrong read is any other decode on a clip with a code, or any decode at all on a
clip without one.  Cost is CPU time of the decoding thread (``time.thread_time``), not wall
time: the machine is shared, and CPU time is what another process cannot inflate.

``--live`` runs the kiosk's own ``CapturePipeline`` (camera thread + decode thread that
always takes the newest frame) on the clips paced at 30 fps, and reports code-to-light:
from the capture of a clip's first frame to the ``Decoded`` event (the scan loop turns the
light on right after; its own few milliseconds are not included).  ``--slow K`` makes the
CPU K times slower for the decoder: after each decode the decode thread sleeps K-1 times
the CPU time it spent, and the stream decoder's clock counts that time too, so it sees
the slow CPU as it would on a Pi.

``--detail`` (default 2) gives each clip a Pi camera's main stream at twice the frame's size,
the frame being its area average, and the stream decoder the main stream with each frame
(``stream-frames`` is the same decoder without it, ``zxing-main`` plain zxing-cpp on the
main stream); ``--detail 1`` gives the point-sampled frames alone of the figures before
2026-12-07 (docs/decoding.md, "The camera's main stream").

``--exposure`` is the camera's AeExposureMode profile the clips are made with (``normal``,
libcamera's default, or ``short``: a shorter shutter and more gain in the same light; see
``bench/clipgen.py``).  The same seed gives the same scenes in both, so the two runs can be
compared clip by clip.
"""

from __future__ import annotations

import argparse
import hashlib
import queue
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench import clipgen, framegen
from bench.clipgen import CLIP_KINDS, Clip

CACHE = Path(__file__).parent / ".frames"
WITHIN = 15   # frames: 0.5 s at 30 fps
# Frames of an empty view between two clips (0.5 s): one person takes a code away before the
# next shows theirs.  Without it, a pass that uses the last frames (``stack``) could read
# the previous clip's code on the next clip's first frame, a read of a code really shown a
# frame or two before, counted as wrong (seed 3 had one on 2026-12-06).
GAP = 15


def gap_frame(clip: Clip) -> np.ndarray:
    """An empty view before ``clip``: a flat frame at the median of its first frame."""
    first = clip.frames[0]
    return np.full_like(first, np.median(first))


def show_gap(decode: Callable[[np.ndarray, np.ndarray | None], object], clip: Clip) -> None:
    """Feed ``decode`` the GAP empty frames that come before ``clip`` (not scored)."""
    empty = gap_frame(clip)
    for _ in range(GAP):
        decode(empty, None)


# A decoder under test: a frame, and the camera's main stream beside it when there is one.
DecodeFn = Callable[[np.ndarray, np.ndarray | None], list[bytes]]


def load_clips(per_kind: int, seed: int, cache: bool = True,
               exposure: str = "normal", glare: str = "lamps",
               camera: str = "mix", af: str = "kiosk", light: str = "room",
               detail: int = 2) -> list[Clip]:
    """The clip set, from the git-ignored cache when it was built before.  ``detail=2`` (the
    default since 2026-12-07) is the kiosk's Pi camera, with its main stream; 1 the
    point-sampled frames of before (``bench/clipgen.py``)."""
    src = Path(clipgen.__file__).read_bytes() + Path(framegen.__file__).read_bytes()
    version = hashlib.sha1(src).hexdigest()[:10]
    scene = f"{exposure}-{glare}-{camera}-{af}-{light}-detail{detail}"
    path = CACHE / f"clips-seed{seed}-n{per_kind}-{scene}-{version}.npz"
    if cache and path.exists():
        return list(np.load(path, allow_pickle=True)["clips"])
    out = list(clipgen.clips(per_kind, seed, exposure=exposure, glare=glare, camera=camera,
                             af=af, light=light, detail=detail))
    if cache:
        CACHE.mkdir(exist_ok=True)
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
        np.savez(path, clips=arr)
    return out


def stream_decoder(main: bool = True, **options: object) -> tuple[DecodeFn, object]:
    """The kiosk's stream decoder; with ``main=False`` it is not given the main stream."""
    from hardware.qr import open_decoder

    d = open_decoder("auto", stream=True, **options)
    return (lambda f, m=None: [c.raw for c in d.decode(f, m if main else None)]), d


def per_frame_auto() -> DecodeFn:
    from hardware.qr import open_decoder

    d = open_decoder("auto")
    return lambda f, m=None: [c.raw for c in d.decode(f)]


def plain_zxing(main: bool = False) -> DecodeFn:
    """Plain zxing-cpp on each frame; with ``main=True`` on the main stream's image instead,
    where the clip has one (what reading the larger stream whole would cost)."""
    import zxingcpp

    return lambda f, m=None: [bytes(b.bytes) for b in zxingcpp.read_barcodes(
        m if main and m is not None else f, formats=zxingcpp.BarcodeFormat.QRCode)]


def plain_pyzbar() -> DecodeFn:
    from pyzbar import pyzbar

    qr = [pyzbar.ZBarSymbol.QRCODE]
    return lambda f, m=None: [d.data for d in pyzbar.decode(f, symbols=qr)]


@dataclass
class ClipScore:
    clips: int = 0
    with_code: int = 0
    within: int = 0          # read within WITHIN frames
    ever: int = 0            # read at all in the clip
    wrong: int = 0           # wrong decodes (frames), clips with a code
    empty_reads: int = 0     # decodes (frames) on clips without a code
    first: list[int] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return 100.0 * self.within / self.with_code if self.with_code else float("nan")


def score(decoders: dict[str, DecodeFn], clips: list[Clip]) -> dict[str, dict[str, ClipScore]]:
    out: dict[str, dict[str, ClipScore]] = {n: {} for n in decoders}
    for clip in clips:
        for name, fn in decoders.items():
            show_gap(fn, clip)    # nobody in front of the camera
            _score_clip(fn, clip, (out[name].setdefault(clip.kind, ClipScore()),
                                   out[name].setdefault("ALL", ClipScore())))
    return out


def _score_clip(fn: DecodeFn, clip: Clip, scores: tuple[ClipScore, ...]) -> None:
    first = None
    for s in scores:
        s.clips += 1
        s.with_code += clip.payload is not None
    for i, frame in enumerate(clip.frames):
        main = clip.main(i)
        t = time.thread_time()
        found = fn(frame, main)
        ms = 1000 * (time.thread_time() - t)
        for s in scores:
            s.cpu_ms.append(ms)
            if clip.payload is None:
                s.empty_reads += len(found)
            else:
                s.wrong += sum(1 for f in found if f != clip.payload)
        if first is None and clip.payload is not None and clip.payload in found:
            first = i
    if first is not None:
        for s in scores:
            s.ever += 1
            s.within += first < WITHIN
            s.first.append(first)


def _p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def table(scores: dict[str, dict[str, ClipScore]]) -> str:
    names = list(scores)
    kinds = [k for k in (*CLIP_KINDS, "ALL") if k in scores[names[0]]]
    lines = [f"{'kind':<8}" + "".join(f" | {n:>40}" for n in names),
             f"{'':<8}" + f" | {'<15f%':>7} {'ever%':>6} {'wrong':>5} {'empty':>5} "
             f"{'cpu med':>7} {'mean':>5}" * len(names)]
    for k in kinds:
        row = f"{k:<8}"
        for n in names:
            s = scores[n][k]
            rate = "   -   " if not s.with_code else f"{s.rate:7.1f}"
            ever = "   -  " if not s.with_code else f"{100 * s.ever / s.with_code:6.1f}"
            row += (f" | {rate} {ever} {s.wrong:5d} {s.empty_reads:5d} "
                    f"{statistics.median(s.cpu_ms):7.2f} {statistics.fmean(s.cpu_ms):5.1f}")
        lines.append(row)
    if "stream" in scores and "zxing" in scores:
        ours, base = scores["stream"]["ALL"], scores["zxing"]["ALL"]
        med = statistics.median(ours.cpu_ms) / statistics.median(base.cpu_ms)
        mean = statistics.fmean(ours.cpu_ms) / statistics.fmean(base.cpu_ms)
        p95 = _p95(ours.cpu_ms) / _p95(base.cpu_ms)
        lines.append(f"median CPU a frame: stream / plain zxing-cpp = {med:.2f}x "
                     f"(target <= 1.5x); p95 {p95:.2f}x; mean {mean:.2f}x")
        if "pyzbar" in scores:
            pz = scores["pyzbar"]["ALL"]
            lines.append(f"median CPU a frame: stream / plain pyzbar = "
                         f"{statistics.median(ours.cpu_ms) / statistics.median(pz.cpu_ms):.2f}x")
    return "\n".join(lines)


# -- the live camera path ----------------------------------------------------------------------

class ClipCamera:
    """The clips one after another at ``fps``, with ``gap`` frames of the last clip's
    background between them (nobody in front of the camera); realtime like a camera."""

    realtime = True

    def __init__(self, clips: list[Clip], fps: float = 30.0, gap: int = GAP) -> None:
        from hardware.camera import Frame

        self._Frame = Frame
        self.spec = "bench-clips"
        self.period = 1 / fps
        self.schedule: list[tuple[int, int]] = []   # (clip, frame) or (-1, clip) for a gap
        for c, clip in enumerate(clips):
            self.schedule += [(-1, c)] * gap + [(c, i) for i in range(len(clip.frames))]
        self.clips = clips
        self.first_ns: dict[int, int] = {}
        self.i = 0
        self.next = time.monotonic()

    def read(self, timeout: float = 1.0) -> object:
        from hardware.camera import EndOfStream

        if self.i >= len(self.schedule):
            raise EndOfStream(self.spec)
        delay = self.next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        self.next = max(self.next + self.period, time.monotonic() - self.period)
        c, i = self.schedule[self.i]
        self.i += 1
        detail = None
        if c < 0:
            image = gap_frame(self.clips[i])
        else:
            image, detail = self.clips[c].frames[i], self.clips[c].main(i)
        now = time.monotonic_ns()
        if c >= 0 and i == 0:
            self.first_ns[c] = now
        return self._Frame(image, now, self.i, detail)

    def close(self) -> None:
        pass


class SlowCPU:
    """A decoder on a CPU ``k`` times slower: sleeps k-1 times the CPU time each decode spent."""

    def __init__(self, decoder: object, k: float) -> None:
        self.decoder, self.k = decoder, k
        self.name = getattr(decoder, "name", "?")
        self.cpu_ms: list[float] = []

    def decode(self, image: np.ndarray, detail: np.ndarray | None = None) -> list:
        t = time.thread_time()
        codes = self.decoder.decode(image, detail)   # type: ignore[attr-defined]
        spent = time.thread_time() - t
        self.cpu_ms.append(1000 * spent)
        time.sleep((self.k - 1) * spent)
        return codes

    def close(self) -> None:
        self.decoder.close()   # type: ignore[attr-defined]


def live(clips: list[Clip], backend: str, k: float) -> str:
    from hardware.qr import open_decoder
    from kiosk.runtime.capture import CapturePipeline, Decoded, StreamEnded

    def slow_clock() -> float:
        # What a CPU k times slower would show: every CPU second takes k wall seconds.
        return time.perf_counter() + (k - 1) * time.thread_time()

    def make() -> SlowCPU:
        if backend == "stream":
            return SlowCPU(open_decoder("auto", stream=True, clock=slow_clock), k)
        return SlowCPU(open_decoder(backend), k)

    camera = ClipCamera(clips)
    events: queue.Queue = queue.Queue()
    holder: list[SlowCPU] = []

    def opened() -> SlowCPU:
        holder.append(make())
        return holder[-1]

    pipeline = CapturePipeline(open_camera=lambda: camera, open_decoder=opened, events=events)
    found: dict[int, int] = {}
    wrong = 0
    with pipeline:
        while True:
            e = events.get(timeout=60)
            if isinstance(e, StreamEnded):
                break
            if isinstance(e, Decoded):
                # Which clip was on screen when this frame was captured.
                c = max((c for c, t in camera.first_ns.items() if t <= e.frame_ns), default=-1)
                if c >= 0 and clips[c].payload == e.raw:
                    found.setdefault(c, e.decoded_ns - camera.first_ns[c])
                elif c >= 0:
                    wrong += 1
    with_code = [c for c, clip in enumerate(clips) if clip.payload is not None]
    lat = sorted(found.get(c, 10**12) / 1e6 for c in with_code)
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]   # noqa: E731
    dec = holder[-1] if holder else None
    shed = getattr(dec.decoder, "shed", "-") if dec else "-"
    ran = getattr(dec.decoder, "passes_run", "-") if dec else "-"
    decoded = len(dec.cpu_ms) if dec else 0
    fmt = lambda v: "never" if v >= 10**6 else f"{v:.0f}"   # noqa: E731
    read = sorted(v / 1e6 for v in found.values())
    p95_read = read[min(len(read) - 1, int(0.95 * len(read)))] if read else 10**12
    return (f"{backend:<7} CPU x{k:<4g} read {len(found)}/{len(with_code)} clips, wrong {wrong}; "
            f"code-to-light median {fmt(p(0.5))} ms, p95 {fmt(p(0.95))} ms "
            f"(p95 of the clips read {fmt(p95_read)} ms); "
            f"{decoded} of {len(camera.schedule)} frames decoded, costly passes run {ran}, "
            f"shed {shed}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--per-kind", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--decoders", default="stream,auto,zxing,pyzbar")
    ap.add_argument("--live", action="store_true", help="the kiosk's capture pipeline at 30 fps")
    ap.add_argument("--slow", type=float, default=1.0, help="with --live: CPU K times slower")
    clipgen.add_scene_options(ap)
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    t = time.perf_counter()
    scene = clipgen.scene_options(args)
    clips = load_clips(args.per_kind, args.seed, cache=not args.no_cache, **scene)
    print(f"{len(clips)} clips (seed {args.seed}, {args.per_kind} a kind, "
          f"{clipgen.describe(scene)}) ready in "
          f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
    if args.live:
        for name in args.decoders.split(","):
            print(live(clips, name, args.slow), flush=True)
        return 0
    makers: dict[str, Callable[[], DecodeFn]] = {
        "stream": lambda: stream_decoder()[0],
        "stream-frames": lambda: stream_decoder(main=False)[0], "auto": per_frame_auto,
        "zxing": plain_zxing, "zxing-main": lambda: plain_zxing(main=True),
        "pyzbar": plain_pyzbar}
    decoders = {n: makers[n]() for n in args.decoders.split(",")}
    print(table(score(decoders, clips)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
