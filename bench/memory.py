"""Resident memory of ``checkpoint-kiosk run --headless`` over a long looped replay.

    python -m bench.memory --minutes 10    (from the repo root; bench/inspect.py shadows the
                                            stdlib inspect when run as a script)

The real CLI runs in a child process on a looped, camera-paced replay of the sample
sequence (mock GPIO pins, the ``hospital`` policy, a real check-in database); its RSS is
sampled with psutil every few seconds.  The bench prints the samples, the slope over the
second half of the run (after the warm-up, in which the replay camera fills its frame cache)
and a verdict: *flat* when the slope and the growth since the warm-up both stay under their
bounds.  With the dedupe window, every loop round records each person again: real load.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MIB = 2**20

CONFIG = """\
[policy]
profile = "hospital"

[signals]
pin_factory = "mock"
enabled = {signals}
"""


@dataclass(frozen=True)
class Sample:
    """One look at the child process."""

    t: float  # seconds since the child was started
    rss: int  # bytes
    threads: int
    fds: int
    cpu: float  # user + system CPU seconds so far


@dataclass(frozen=True)
class Verdict:
    warmup_seconds: float
    warmup_mib: float  # median RSS just after the warm-up
    final_mib: float  # median RSS of the last few samples
    peak_mib: float
    slope_mib_per_min: float  # Theil-Sen slope over the second half of the run
    max_slope: float
    max_growth_mib: float

    @property
    def growth_mib(self) -> float:
        return self.final_mib - self.warmup_mib

    @property
    def flat(self) -> bool:
        return self.slope_mib_per_min <= self.max_slope and self.growth_mib <= self.max_growth_mib


@dataclass(frozen=True)
class MemoryReport:
    seconds: float
    exit_code: int | None
    samples: tuple[Sample, ...]
    verdict: Verdict
    checkins: int
    log_errors: int  # ERROR/Traceback lines in the child's log


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float:
    """Theil-Sen slope of (seconds, value) points, in value per minute.

    The median of the pairwise slopes, not least squares: with the mock lights RSS has short
    spikes of 2-3 MiB, and one spike caught near either end of the window tilts a
    least-squares line more than the real trend does (docs/measurements.md).
    """
    if len(points) < 2:
        raise ValueError(f"a slope needs at least 2 points, got {len(points)}; run longer")
    slopes = [(v2 - v1) / (t2 - t1) for i, (t1, v1) in enumerate(points)
              for t2, v2 in points[i + 1:] if t2 != t1]
    if not slopes:
        raise ValueError("all samples were taken at the same moment; sample at an interval")
    return statistics.median(slopes) * 60.0


def analyse(samples: Sequence[Sample], *, warmup_seconds: float, max_slope: float = 0.1,
            max_growth_mib: float = 2.0) -> Verdict:
    """Judge an RSS series: flat, or growing after the warm-up."""
    if not samples:
        raise ValueError("no RSS samples: the child process exited at once (see its log)")
    end = samples[-1].t
    if end <= warmup_seconds:
        raise ValueError(
            f"the run lasted {end:.0f} s, not longer than the warm-up ({warmup_seconds:.0f} s); "
            "run longer or shorten the warm-up"
        )
    # The level right after the warm-up: the median of the samples in the next warm-up-long
    # window, so one sample taken during a burst does not set it.
    after = [s.rss for s in samples if warmup_seconds <= s.t <= 2 * warmup_seconds]
    if not after:
        after = [next(s.rss for s in samples if s.t >= warmup_seconds)]
    half = max(warmup_seconds, end / 2)
    second_half = [(s.t, s.rss / MIB) for s in samples if s.t >= half]
    if len(second_half) < 2:
        second_half = [(s.t, s.rss / MIB) for s in samples[-2:]]
    return Verdict(
        warmup_seconds=warmup_seconds,
        warmup_mib=statistics.median(after) / MIB,
        final_mib=statistics.median(s.rss for s in samples[-3:]) / MIB,
        peak_mib=max(s.rss for s in samples) / MIB,
        slope_mib_per_min=slope_per_minute(second_half),
        max_slope=max_slope,
        max_growth_mib=max_growth_mib,
    )


def run_memory(seconds: float, workdir: Path, *, fps: float = 30.0, interval: float = 5.0,
               warmup_seconds: float | None = None, max_slope: float = 0.1,
               max_growth_mib: float = 2.0, signals: bool = True,
               on_sample: Callable[[Sample], None] = lambda s: None) -> MemoryReport:
    """Run the headless kiosk for ``seconds`` on a looped replay and sample its memory.

    ``signals=False`` runs without the lights: gpiozero's MockPin keeps every state change
    in a list (for tests to read), a slow growth that a Pi's real pins do not have.
    """
    import psutil

    from kiosk.testing.samples import write_sequence

    frames = workdir / "frames"
    write_sequence(frames)
    config = workdir / "kiosk.toml"
    config.write_text(CONFIG.format(signals=str(signals).lower()), encoding="utf-8")
    db = workdir / "checkins.db"
    log_path = workdir / "kiosk.log"
    env = {**os.environ, "CHECKPOINT_KIOSK_LOG_LEVEL": "INFO"}
    samples: list[Sample] = []
    # The log goes to a file: a pipe nobody reads fills up after ~1000 check-in lines and
    # then blocks the kiosk, which would measure the pipe, not the kiosk.
    with open(log_path, "w", encoding="utf-8") as log_file:
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "run", "--headless", "--config", str(config),
             "--camera", f"replay:{frames},fps={fps:g},loop", "--db", str(db),
             "--max-seconds", f"{seconds:g}"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
        )
        try:
            child = psutil.Process(proc.pid)
            next_at = started
            while proc.poll() is None:
                try:
                    with child.oneshot():
                        cpu = child.cpu_times()
                        sample = Sample(time.monotonic() - started, child.memory_info().rss,
                                        child.num_threads(), child.num_fds(),
                                        cpu.user + cpu.system)
                except psutil.NoSuchProcess:
                    break
                samples.append(sample)
                on_sample(sample)
                next_at += interval
                try:
                    proc.wait(timeout=max(0.0, next_at - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            exit_code = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    elapsed = time.monotonic() - started
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    log_errors = sum(1 for line in log_text.splitlines()
                     if " ERROR " in line or line.startswith("Traceback"))
    checkins = 0
    if db.exists():
        with sqlite3.connect(db) as conn:
            checkins = conn.execute("SELECT count(*) FROM checkins").fetchone()[0]
    warmup = warmup_seconds if warmup_seconds is not None else max(15.0, seconds / 10)
    verdict = analyse(samples, warmup_seconds=warmup, max_slope=max_slope,
                      max_growth_mib=max_growth_mib)
    return MemoryReport(elapsed, exit_code, tuple(samples), verdict, checkins, log_errors)


def print_sample(sample: Sample) -> None:
    cpu = 100 * sample.cpu / sample.t if sample.t > 0 else 0.0
    print(f"{sample.t:8.0f} {sample.rss / MIB:9.1f} {sample.threads:8d} {sample.fds:5d} "
          f"{cpu:6.0f}%", flush=True)


def print_report(report: MemoryReport) -> None:
    v = report.verdict
    print()
    print(f"run:           {report.seconds:.0f} s, exit code {report.exit_code}, "
          f"{report.checkins} check-ins recorded, {report.log_errors} error lines in the log")
    print(f"RSS after the warm-up ({v.warmup_seconds:.0f} s): {v.warmup_mib:.1f} MiB; "
          f"final {v.final_mib:.1f} MiB; peak {v.peak_mib:.1f} MiB")
    print(f"growth since the warm-up: {v.growth_mib:+.2f} MiB (bound {v.max_growth_mib:g})")
    print(f"slope over the second half: {v.slope_mib_per_min:+.3f} MiB/min "
          f"(bound {v.max_slope:g})")
    print(f"verdict: {'FLAT' if v.flat else 'GROWING'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run")
    parser.add_argument("--fps", type=float, default=30.0, help="replay frame rate")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--max-slope", type=float, default=0.1, help="MiB per minute")
    parser.add_argument("--max-growth", type=float, default=2.0, help="MiB since the warm-up")
    parser.add_argument("--no-signals", dest="signals", action="store_false",
                        help="run without the (mock) lights, whose pins keep a state history")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    print(f"{'seconds':>8} {'RSS MiB':>9} {'threads':>8} {'fds':>5} {'CPU':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        report = run_memory(options.minutes * 60, Path(tmp), fps=options.fps,
                            interval=options.interval, max_slope=options.max_slope,
                            max_growth_mib=options.max_growth, signals=options.signals,
                            on_sample=print_sample)
    print_report(report)
    return 0 if report.verdict.flat and report.exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
