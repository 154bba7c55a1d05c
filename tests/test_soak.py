"""Short versions of the latency and memory benches (the long ones: bench/latency.py,
bench/memory.py).  Bounds are generous for a loaded CI machine; docs/measurements.md has the
figures of the full runs."""

from __future__ import annotations

import pytest

from bench.latency import LIGHT_OF, run_latency, segments
from bench.memory import MIB, Sample, analyse, run_memory, slope_per_minute
from kiosk.testing.samples import SAMPLES

READABLE = [s.name for s in SAMPLES if s.readable]


def test_every_readable_code_lights_its_light_within_a_frame_or_so(tmp_path):
    # Shorter gaps than the bench's (0.3 s instead of 0.5 s) keep this under 10 s; they are
    # still far longer than the dedupe needs, as different codes follow each other.
    report = run_latency(tmp_path, fps=30, passes=1, lead_in=15, gap_frames=8)

    assert report.missed == ()
    assert [e.label for e in report.events] == READABLE  # in order, once each
    assert report.unexpected == 0  # the blurred card lit nothing
    outcomes = {e.label: e.outcome for e in report.events}
    assert outcomes["cccd"] == "pass" and outcomes["cccd_mismatch"] == "check"
    assert outcomes["venue"] == "check"  # a venue poster: "present a personal code"
    for e in report.events:
        # The stages are ordered in time and the light rose inside Signals.show() (the pin's
        # time is rebuilt from float seconds: allow it 50 µs).
        assert e.appeared_ns <= e.frame_ns < e.decoded_ns <= e.lights_ns, e
        assert e.lights_ns <= e.signalled_ns + 50_000, e
        assert e.outcome in LIGHT_OF
        assert (e.recorded_ns is None) == (e.label == "venue"), e
    bound = report.frame_period_ms + 5 * report.decode_median_ms + 100
    assert report.p95 <= bound, (report.p95, bound)
    assert report.frames == 15 + 6 * (6 + 8) and 25 < report.measured_period_ms < 45


def test_segments_follow_the_labels_across_loop_rounds():
    labels = ["", "a", "a", "", "unreadable", "b"]
    segs = segments(labels, passes=2)
    assert [(s.label, s.first, s.last, s.readable) for s in segs] == [
        ("a", 2, 3, True), ("unreadable", 5, 5, False), ("b", 6, 6, True),
        ("a", 8, 9, True), ("unreadable", 11, 11, False), ("b", 12, 12, True),
    ]


def _series(mib_at: list[float], step: float = 5.0) -> list[Sample]:
    return [Sample(i * step, int(m * MIB), 4, 6, 0.0) for i, m in enumerate(mib_at)]


def test_the_verdict_tells_flat_from_growing():
    flat = analyse(_series([3, 80, 100, 100.2, 100.1, 100.2, 100.1, 100.2, 100.2, 100.1]),
                   warmup_seconds=10)
    assert flat.flat and abs(flat.growth_mib) < 0.2 and flat.warmup_mib == pytest.approx(100.1)
    # 0.5 MiB a minute after the warm-up: a leak of a few KiB per check-in.
    growing = analyse(_series([3, 80, 100] + [100 + 0.5 * i / 12 for i in range(1, 60)]),
                      warmup_seconds=10)
    assert not growing.flat
    assert growing.slope_mib_per_min == pytest.approx(0.5, rel=0.01)
    assert slope_per_minute([(0, 1.0), (30, 2.0)]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="warm-up"):
        analyse(_series([3, 80]), warmup_seconds=10)


@pytest.mark.slow
def test_run_headless_memory_stays_flat_for_20_seconds(tmp_path):
    report = run_memory(20, tmp_path, fps=30, interval=1.0, warmup_seconds=8,
                        max_slope=10.0, max_growth_mib=5.0)
    v = report.verdict
    assert report.exit_code == 0 and report.log_errors == 0
    assert report.checkins >= 10  # it really was recording: several loop rounds of people
    # A leak of one frame per decoded frame (300 KB at 30 fps) would add ~100 MiB here.
    assert v.flat, v
    assert v.peak_mib - v.final_mib < 20, v
