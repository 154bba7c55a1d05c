"""Latency from "a code appears in front of the camera" to "the light changes".

    python -m bench.latency --passes 10 --fps 30    (from the repo root; bench/inspect.py
                                                     shadows the stdlib inspect as a script)

The kiosk is assembled by :func:`kiosk.runtime.build.build` (real store with
``synchronous=FULL`` in a
temporary folder, the live policy checker, the recogniser, the signals on gpiozero's
MockFactory) and a :class:`~kiosk.runtime.capture.CapturePipeline` on a camera-paced replay of the
sample sequence, so the decode thread takes the newest frame as with a live camera.  The
loop is driven with ``ScanLoop.step(timeout=0.1)`` exactly as ``run_headless`` drives it.

* *appeared* = capture time (``Frame.t_ns``) of the first frame of each code's segment;
* *lights* = the moment the mock pin of the outcome's light went high (gpiozero's
  ``MockPin.states`` hold ``time.monotonic()`` deltas, so they share the frames' clock).

Stages: capture→decoded (frames that went by unread + decode), decoded→recorded (loop
wake-up, recognise, decide, commit with fsync), recorded→lights (``Signals.show``).
Target (issue 2): p95 ≤ one frame period + the median decode time of the replayed frames.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LIGHT_OF = {"pass": "green", "check": "amber", "stop": "red"}
MS = 1e6  # ns per ms


@dataclass(frozen=True)
class Segment:
    """A run of frames showing one code (one person holding it up)."""

    label: str
    readable: bool
    first: int  # Frame.index of its first frame
    last: int


@dataclass(frozen=True)
class Signalled:
    """One code, from its first frame to the light."""

    label: str
    outcome: str
    appeared_ns: int  # capture of the segment's first frame
    frame_ns: int  # capture of the frame the code was decoded from
    frames_late: int  # frames of the segment that went by before that one
    decoded_ns: int
    record_start_ns: int | None  # None: not a person, nothing recorded (venue)
    recorded_ns: int | None
    lights_ns: int  # the light's mock pin went high
    signalled_ns: int  # ScanResult.signalled_ns (after Signals.show returned)

    @property
    def latency_ms(self) -> float:
        return (self.lights_ns - self.appeared_ns) / MS

    @property
    def capture_to_decoded_ms(self) -> float:
        return (self.decoded_ns - self.appeared_ns) / MS

    @property
    def decoded_to_recorded_ms(self) -> float | None:
        return None if self.recorded_ns is None else (self.recorded_ns - self.decoded_ns) / MS

    @property
    def commit_ms(self) -> float | None:
        if self.recorded_ns is None or self.record_start_ns is None:
            return None
        return (self.recorded_ns - self.record_start_ns) / MS

    @property
    def recorded_to_lights_ms(self) -> float:
        return (self.lights_ns - (self.recorded_ns or self.decoded_ns)) / MS


@dataclass(frozen=True)
class LatencyReport:
    fps: float
    passes: int
    frames: int  # frames captured
    measured_period_ms: float  # median interval between captured frames
    decode_median_ms: float  # decoder.decode alone, every frame of the sequence
    decode_code_median_ms: float  # decoder.decode alone, frames showing a readable code
    events: tuple[Signalled, ...]
    missed: tuple[Segment, ...]  # readable codes never signalled
    unexpected: int  # results not traced to a readable segment (e.g. the unreadable card)
    decodes: int  # frames the decode thread actually decoded

    @property
    def frame_period_ms(self) -> float:
        return 1000.0 / self.fps

    @property
    def budget_ms(self) -> float:
        return self.frame_period_ms + self.decode_median_ms

    def percentile(self, q: float, values: Sequence[float] | None = None) -> float:
        data = sorted(values if values is not None else [e.latency_ms for e in self.events])
        if not data:
            raise ValueError("no code was signalled: nothing to take a percentile of")
        # Nearest rank: with few samples the p95 is an observed latency, never interpolated
        # below the slowest ones.
        rank = max(1, -(-len(data) * q // 100))
        return data[int(rank) - 1]

    @property
    def p50(self) -> float:
        return self.percentile(50)

    @property
    def p95(self) -> float:
        return self.percentile(95)

    @property
    def max(self) -> float:
        return self.percentile(100)

    @property
    def ok(self) -> bool:
        return bool(self.events) and not self.missed and self.p95 <= self.budget_ms


def write_frames(folder: Path, *, lead_in: int = 30, seed: int = 1,
                 **sequence_options: Any) -> list[str]:
    """The sample sequence as numbered PNGs after ``lead_in`` empty frames; returns labels.

    The empty lead-in lets the camera, decoder and lights settle (the fault blink of
    start-up) before the first card is shown, and puts a gap before each card when looping.
    """
    from PIL import Image

    from kiosk.testing.samples import frame, sequence

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    frames = [("", frame(None, rng)) for _ in range(lead_in)]
    frames += list(sequence(seed=seed, **sequence_options))
    for i, (_label, image) in enumerate(frames):
        Image.fromarray(image, "L").save(folder / f"{i:05d}.png", compress_level=1)
    return [label for label, _ in frames]


def segments(labels: Sequence[str], passes: int) -> list[Segment]:
    """The code segments of ``passes`` loop rounds; Frame.index counts from 1."""
    from kiosk.testing.samples import SAMPLES

    readable = {s.name: s.readable for s in SAMPLES}
    out = []
    n = len(labels)
    for p in range(passes):
        i = 0
        while i < n:
            label = labels[i]
            j = i
            while j + 1 < n and labels[j + 1] == label:
                j += 1
            if label:
                out.append(Segment(label, readable.get(label, True), p * n + i + 1, p * n + j + 1))
            i = j + 1
    return out


class _TimedCamera:
    """The replay camera, noting each frame's capture time; ends after ``limit`` frames."""

    def __init__(self, camera: Any, limit: int, times: dict[int, int]) -> None:
        self._camera = camera
        self.spec = camera.spec
        self.realtime = camera.realtime
        self._limit = limit
        self.times = times

    def read(self, timeout: float = 1.0) -> Any:
        from hardware.camera import EndOfStream

        if len(self.times) >= self._limit:
            raise EndOfStream(self.spec)
        frame = self._camera.read(timeout)
        if frame is not None:
            self.times[frame.index] = frame.t_ns
        return frame

    def close(self) -> None:
        self._camera.close()


class _TimedStore:
    """The real store; notes when each ``record()`` started and returned (after the fsync)."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.records: dict[str, tuple[int, int]] = {}

    def record(self, entry: Any) -> str:
        start = time.monotonic_ns()
        checkin_id = self._store.record(entry)
        self.records[checkin_id] = (start, time.monotonic_ns())
        return checkin_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class _Tap:
    """Between the camera pipeline and the loop's event queue: keeps the Decoded events
    (they carry decoded_ns) and passes everything on."""

    def __init__(self) -> None:
        self.events: Any = None
        self.decoded: dict[int, Any] = {}

    def put(self, item: Any, /) -> None:
        if type(item).__name__ == "Decoded":
            self.decoded.setdefault(item.frame_ns, item)
        self.events.put(item)


def _rises(pin: Any, base: float) -> list[int]:
    """Monotonic ns at which a MockPin went high (its states hold deltas since ``base``)."""
    t = base
    out = []
    for delta, state in pin.states[1:]:
        t += delta
        if state:
            out.append(round(t * 1e9))
    return out


def measure_decode(folder: Path, labels: Sequence[str], backend: str) -> tuple[float, float]:
    """Median ms of ``decoder.decode`` alone over every frame, and over readable-code frames."""
    from hardware.camera import ReplayCamera
    from hardware.qr import open_decoder
    from kiosk.testing.samples import SAMPLES

    readable = {s.name for s in SAMPLES if s.readable}
    every, coded = [], []
    decoder = open_decoder(backend)
    try:
        with ReplayCamera(folder) as camera:
            images = [camera.read().image for _ in labels]  # type: ignore[union-attr]
        decoder.decode(images[0])  # the first call loads the library
        for label, image in zip(labels, images, strict=True):
            start = time.perf_counter_ns()
            decoder.decode(image)
            ms = (time.perf_counter_ns() - start) / MS
            every.append(ms)
            if label in readable:
                coded.append(ms)
    finally:
        decoder.close()
    return statistics.median(every), statistics.median(coded)


def run_latency(workdir: Path, *, fps: float = 30.0, passes: int = 1,
                policy: str = "hospital", backend: str = "auto", lead_in: int = 30,
                gap_frames: int = 14) -> LatencyReport:
    """Replay the sample sequence ``passes`` times at ``fps`` and time every code to its light.

    ``workdir`` holds the frames and the check-in database: put it on the disk whose fsync
    you want to measure (the Pi's SD card).  No watchlist is synced here, so the policy's
    watchlist check is off; with it every person would get ``check: watchlist_missing`` and
    only the amber light would ever be timed.
    """
    from hardware.camera import ReplayCamera
    from hardware.qr import open_decoder
    from kiosk.config import Config
    from kiosk.runtime.build import Supplied, build, open_store
    from kiosk.runtime.capture import CapturePipeline
    from kiosk.runtime.events import ScanResult

    folder = workdir / "frames"
    labels = write_frames(folder, lead_in=lead_in, gap_frames=gap_frames)
    limit = passes * len(labels)
    cfg = Config().replace(
        store={"path": str(workdir / "checkins.db")},
        signals={"pin_factory": "mock"},
        decoder={"backend": backend},
        policy={"profile": policy, "watchlist": False},
    )
    times: dict[int, int] = {}
    results: list[ScanResult] = []
    tap = _Tap()
    with contextlib.ExitStack() as stack:

        def timed_camera(events: Any) -> CapturePipeline:
            # The kiosk's pipeline and decoder (a stream, as build() opens it) on a replay
            # camera that notes when each frame was taken; build() starts it.
            tap.events = events
            pipeline = CapturePipeline(
                open_camera=lambda: _TimedCamera(ReplayCamera(folder, fps=fps, loop=True),
                                                 limit, times),
                open_decoder=lambda: open_decoder(cfg.decoder.backend, stream=True),
                events=tap,
                retry_max=cfg.camera.retry_max_seconds,
            )
            stack.callback(pipeline.close)
            return pipeline

        store = _TimedStore(open_store(cfg, stack))
        parts = build(cfg, stack, parts=Supplied(store=store, pipeline=timed_camera))
        loop = parts.loop
        assert isinstance(parts.pipeline, CapturePipeline)
        pipeline = parts.pipeline
        pins = {name: getattr(parts.signals.lights, name).pin for name in LIGHT_OF.values()}
        before = time.monotonic()
        for pin in pins.values():
            pin.clear_states()
        base = (before + time.monotonic()) / 2  # within microseconds of the pins' own stamp
        deadline = time.monotonic() + limit / fps + 30
        while not loop.ended and time.monotonic() < deadline:
            for event in loop.step(timeout=0.1):
                if isinstance(event, ScanResult):
                    results.append(event)
        if not loop.ended:
            raise RuntimeError(f"the replay did not end within {limit / fps + 30:.0f} s")
        rises = {name: _rises(pin, base) for name, pin in pins.items()}
        decodes = pipeline.decodes

    by_index = {t: i for i, t in times.items()}
    segs = segments(labels, passes)
    seg_of = {i: s for s in segs for i in range(s.first, s.last + 1)}
    events: list[Signalled] = []
    seen: set[Segment] = set()
    unexpected = 0
    previous_ns = 0
    for result in results:
        assert result.frame_ns is not None and result.signalled_ns is not None
        seg = seg_of.get(by_index.get(result.frame_ns, -1))
        light = LIGHT_OF[str(result.decision.outcome)]
        # show() switches every light off, then this one on; its rise lies between the
        # previous result's signal and this one's.
        rise = [t for t in rises[light] if previous_ns < t <= result.signalled_ns + 50_000]
        previous_ns = result.signalled_ns
        if seg is None or not seg.readable or seg in seen or not rise:
            unexpected += 1
            continue
        seen.add(seg)
        record = store.records.get(result.checkin_id) if result.checkin_id else None
        events.append(Signalled(
            label=seg.label, outcome=str(result.decision.outcome),
            appeared_ns=times[seg.first], frame_ns=result.frame_ns,
            frames_late=by_index[result.frame_ns] - seg.first,
            decoded_ns=tap.decoded[result.frame_ns].decoded_ns,
            record_start_ns=record[0] if record else None,
            recorded_ns=record[1] if record else None,
            lights_ns=rise[-1], signalled_ns=result.signalled_ns,
        ))
    missed = tuple(s for s in segs if s.readable and s not in seen)
    stamps = sorted(times.values())
    intervals = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    decode_all, decode_coded = measure_decode(folder, labels, backend)
    return LatencyReport(
        fps=fps, passes=passes, frames=len(times),
        measured_period_ms=statistics.median(intervals) / MS if intervals else float("nan"),
        decode_median_ms=decode_all, decode_code_median_ms=decode_coded,
        events=tuple(events), missed=missed, unexpected=unexpected, decodes=decodes,
    )


def _stats(values: Sequence[float]) -> str:
    if not values:
        return "-"
    data = sorted(values)
    p95 = data[max(0, -(-len(data) * 95 // 100) - 1)]
    return f"p50 {statistics.median(data):7.2f}  p95 {p95:7.2f}  max {data[-1]:7.2f}"


def print_report(report: LatencyReport) -> None:
    ev = report.events
    print(f"{'code':<14} {'outcome':<6} {'late':>4} {'→decoded':>9} {'→recorded':>10} "
          f"{'commit':>7} {'→lights':>8} {'total ms':>9}")
    for e in ev:
        rec = e.decoded_to_recorded_ms
        commit = e.commit_ms
        print(f"{e.label:<14} {e.outcome:<6} {e.frames_late:>4} {e.capture_to_decoded_ms:9.2f} "
              f"{'-' if rec is None else f'{rec:.2f}':>10} "
              f"{'-' if commit is None else f'{commit:.2f}':>7} {e.recorded_to_lights_ms:8.2f} "
              f"{e.latency_ms:9.2f}")
    print()
    print(f"frames: {report.frames} captured at {report.fps:g} fps (median interval "
          f"{report.measured_period_ms:.2f} ms), {report.decodes} decoded by the decode thread")
    print(f"codes signalled: {len(ev)}, readable codes missed: {len(report.missed)}, "
          f"results not traced to a readable code: {report.unexpected}")
    print(f"decode alone: median {report.decode_median_ms:.2f} ms over every frame, "
          f"{report.decode_code_median_ms:.2f} ms over frames showing a code")
    print(f"capture→decoded:   {_stats([e.capture_to_decoded_ms for e in ev])}")
    recorded = [e.decoded_to_recorded_ms for e in ev if e.decoded_to_recorded_ms is not None]
    print(f"decoded→recorded:  {_stats(recorded)}")
    print(f"  of which commit: {_stats([e.commit_ms for e in ev if e.commit_ms is not None])}")
    print(f"recorded→lights:   {_stats([e.recorded_to_lights_ms for e in ev])}")
    print(f"code→lights:       {_stats([e.latency_ms for e in ev])}")
    if ev:
        print(f"target: p95 {report.p95:.2f} ms ≤ frame period {report.frame_period_ms:.2f} + "
              f"decode median {report.decode_median_ms:.2f} = {report.budget_ms:.2f} ms: "
              f"{'PASS' if report.ok else 'FAIL'}")
    else:
        print("target: FAIL (no code was signalled)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fps", type=float, default=30.0, help="replay frame rate")
    parser.add_argument("--passes", type=int, default=10, help="rounds of the sample sequence")
    parser.add_argument("--policy", default="hospital", help="policy profile")
    parser.add_argument("--decoder", default="auto", help="decoder backend")
    parser.add_argument("--dir", type=Path, help="where the frames and the database go "
                        "(default: a temporary folder); the commit's fsync is this disk's")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(dir=options.dir) as tmp:
        report = run_latency(Path(tmp), fps=options.fps, passes=options.passes,
                             policy=options.policy, backend=options.decoder)
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
