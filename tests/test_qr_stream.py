"""The stream decoder (hardware/qr/stream.py) on presentation clips from bench/clipgen.py."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hardware.errors import DeviceSettingError
from hardware.images import qr_image
from hardware.qr import open_decoder
from hardware.qr.stream import StreamDecoder


def frozen_clock() -> float:
    # Every decode looks instant: no pass is ever shed, so the schedule is deterministic
    # however busy the test machine is.
    return 0.0


@pytest.fixture(scope="module")
def held_card():
    from bench.clipgen import make_clip

    # An 11 mm CCCD code shown, braked and held (seed 1 is the clip bench's tuning seed).
    return make_clip("card", 10, seed=1)


def test_a_held_card_plain_zxing_never_reads_is_read_within_half_a_second(held_card):
    import zxingcpp

    qr = zxingcpp.BarcodeFormat.QRCode
    plain = [[bytes(b.bytes) for b in zxingcpp.read_barcodes(f, formats=qr)]
             for f in held_card.frames]
    assert not any(held_card.payload in found for found in plain)   # the clip is hard
    decoder = StreamDecoder(clock=frozen_clock)
    reads = [[c.raw for c in decoder.decode(f)] for f in held_card.frames]
    first = next(i for i, found in enumerate(reads) if found)
    assert first < 15
    # Only ever the whole payload: nothing partial, nothing else.
    assert all(found in ([], [held_card.payload]) for found in reads)


def test_a_card_without_a_code_gives_nothing():
    from bench.clipgen import make_clip

    clip = make_clip("no_code", 3, seed=1)
    decoder = StreamDecoder(clock=frozen_clock, every=1)
    assert [decoder.decode(f) for f in clip.frames] == [[]] * len(clip.frames)
    assert decoder.passes_run > 0   # it did try


def test_costly_passes_are_shed_when_a_frame_takes_longer_than_the_frame_period(held_card):
    ticks = itertools.count()

    def slow_clock() -> float:
        return next(ticks) * 0.05   # every reading of the clock 50 ms later: a slow CPU

    decoder = StreamDecoder(clock=slow_clock)
    for f in held_card.frames:
        decoder.decode(f)
    assert decoder.passes_run == 0 and decoder.shed > 0
    # The plain call stays: a clean code is still read on a slow CPU.
    clean = np.asarray(qr_image("Lê Hạnh", module_px=4))
    assert [c.text for c in decoder.decode(clean)] == ["Lê Hạnh"]


def test_the_same_clip_gives_the_same_reads_after_reset(held_card):
    decoder = StreamDecoder(clock=frozen_clock)
    first = [[c.raw for c in decoder.decode(f)] for f in held_card.frames]
    decoder.reset()
    again = [[c.raw for c in decoder.decode(f)] for f in held_card.frames]
    assert first == again


def test_frames_of_another_size_start_a_new_stream():
    decoder = StreamDecoder(clock=frozen_clock, every=1)
    rng = np.random.default_rng(0)
    for shape in ((480, 640), (720, 1280), (480, 640), (1, 1), (0, 5)):
        assert decoder.decode(rng.integers(0, 256, shape, dtype=np.uint8)) == []


def test_open_decoder_gives_the_stream_decoder_for_a_camera():
    with open_decoder("auto", stream=True) as d:   # type: ignore[attr-defined]
        assert d.name == "stream"
    with open_decoder("zxing", stream=True) as d:   # type: ignore[attr-defined]
        assert d.name == "zxing"   # the plain baseline stays plain


@pytest.mark.parametrize("options,match", [
    ({"stream_passes": ["up3_hard", "sharpn"]}, "'sharpn'"),
    ({"frame_period": 0}, "frame_period"),
    ({"every": 0}, "every"),
])
def test_bad_options_are_clear_errors(options, match):
    with pytest.raises(DeviceSettingError, match=match):
        StreamDecoder(**options)
