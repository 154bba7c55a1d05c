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

    # An 11 mm CCCD code shown, braked and held in a dim entrance, through a Module 3
    # (seed 1 is the clip bench's tuning seed).
    return make_clip("card", 0, seed=1)


@pytest.fixture(scope="module")
def dim_card():
    from bench.clipgen import make_clip

    # The same kind of card in the same dim light, through a Module 2: its code is still
    # blurred by the hand on frames 5-12.
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


def test_the_scout_finds_a_dim_blurred_code_on_averaged_pixels(dim_card):
    from bench.clip_oracle import code_box
    from hardware.qr.zxing import texture_boxes

    def covered(boxes, i):
        # The box holds the code's centre and at least half of the code.
        x0, y0, x1, y1 = code_box(dim_card, i, margin=0.0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        for bx0, by0, bx1, by1 in boxes:
            overlap = (max(0, min(x1, bx1) - max(x0, bx0))
                       * max(0, min(y1, by1) - max(y0, by0)))
            if bx0 <= cx <= bx1 and by0 <= cy <= by1 and overlap >= (x1 - x0) * (y1 - y0) / 2:
                return True
        return False

    frames = range(5, 13)
    raw = [covered(texture_boxes(dim_card.frames[i], max_side=512), i) for i in frames]
    pooled = [covered(texture_boxes(dim_card.frames[i], max_side=512, pool=2), i)
              for i in frames]
    # At a dim entrance's gain, single pixels are noisy enough to score like the code.
    assert sum(raw) <= 2, raw
    assert sum(pooled) >= 7, pooled
    with pytest.raises(ValueError, match="pool must be 1 or 2, got 3"):
        texture_boxes(dim_card.frames[0], pool=3)


def test_a_card_without_a_code_gives_nothing():
    from bench.clipgen import make_clip

    clip = make_clip("no_code", 3, seed=1)
    decoder = StreamDecoder(clock=frozen_clock, every=1)
    assert [decoder.decode(f) for f in clip.frames] == [[]] * len(clip.frames)
    assert decoder.passes_run > 0   # it did try


def test_passes_are_few_while_a_candidate_arrives_dense_once_held_and_few_once_long_unread():
    # QR-like texture that is no code (random modules, no finder patterns): the scout
    # finds it, zxing locates nothing in it, and every pass fails.
    rng = np.random.default_rng(5)
    room = np.full((480, 640), 140, np.uint8)
    patch = room.copy()
    patch[140:240, 260:360] = np.kron(rng.integers(0, 2, (25, 25)), np.ones((4, 4))) * 200 + 20
    decoder = StreamDecoder(clock=frozen_clock, every=6, held_every=2, patience=12)
    ran = []
    for i, frame in enumerate([patch] * 40 + [room] * 20 + [patch] * 24):
        before = decoder.passes_run
        assert decoder.decode(frame) == []
        assert decoder._read_located(frame) == ([], [])
        if decoder.passes_run > before:
            ran.append(i)
    # With nothing in view the scout looks every third frame, and what it finds is tried at
    # once (frame 2); once the patch has been in view for 6 frames, one frame in two (8, 10,
    # 12) until it has been in view for 12 frames unread; then one in six. Frames 40-59 show
    # the room alone (one whole-frame zbar pass, its turn in the rotation, at 42); the patch
    # coming back is a new candidate, and the same pattern starts again (60; 66, 68, 70; 76,
    # 82).
    assert ran == [2, 8, 10, 12, 18, 24, 30, 36, 42, 60, 66, 68, 70, 76, 82]


def test_a_damaged_code_zxing_keeps_locating_stops_costing_a_pass_every_frame():
    # A real code with its middle scratched out: zxing finds its finder patterns on every
    # frame, and no pass can read it.
    code = np.array(qr_image("NGUYEN VAN A|001099012345|damaged card", module_px=6))
    h, w = code.shape
    rng = np.random.default_rng(1)
    code[h // 2 - 40:h // 2 + 40, w // 2 - 40:w // 2 + 40] = rng.choice([0, 255], (80, 80))
    frame = np.full((480, 640), 200, np.uint8)
    frame[100:100 + h, 150:150 + w] = code
    decoder = StreamDecoder(clock=frozen_clock)
    assert decoder._read_located(frame)[1]   # located, not decoded
    ran = []
    for i in range(30):
        before = decoder.passes_run
        assert decoder.decode(frame) == []
        if decoder.passes_run > before:
            ran.append(i)
    # A pass on each frame (the symbol located each time) while it has been in view for
    # under 15 frames (half a second), then one frame in 6, not one on every frame for as
    # long as it is held.
    assert ran == [*range(14), 19, 25]


def test_a_pass_on_a_larger_candidate_is_expected_to_cost_more():
    from hardware.qr.stream import _Focus

    now = [0.0]
    decoder = StreamDecoder(clock=lambda: now[0], every=1, stream_passes=("up3",))
    ran = []

    def run(name, frame, box):
        x0, y0, x1, y1 = box
        ran.append(box)
        now[0] += (x1 - x0) * (y1 - y0) * 1e-6   # 1 us a pixel: 10 ms for 100x100
        return []

    decoder._run = run
    decoder._scout = lambda frame: None           # the test places the candidates
    frame = np.full((480, 640), 128, np.uint8)
    small, large = (0, 0, 100, 100), (0, 0, 400, 400)
    for box in (small, small, large, large):
        decoder._focus = [_Focus(box)]
        decoder.decode(frame)
    # 10 ms measured on 100x100 px: 400x400 px is expected to take 160 ms, more than the
    # two frame periods a pass may borrow, so it is shed, not run on a 10 ms estimate.
    assert ran == [small, small]
    assert decoder.shed == 2
    decoder._focus = [_Focus((0, 0, 150, 150))]
    decoder.decode(frame)
    assert ran[-1] == (0, 0, 150, 150)            # 22.5 ms fits


def test_a_pass_is_not_spent_on_a_candidate_too_large_for_it():
    from hardware.qr.stream import _Focus

    decoder = StreamDecoder(clock=frozen_clock, every=1, stream_passes=("stack", "up2_soft"),
                            companion=None)
    ran = []
    decoder._run = lambda name, frame, box: ran.append((name, box)) or []
    decoder._scout = lambda frame: None
    frame = np.full((480, 640), 128, np.uint8)
    big = (0, 0, 400, 400)             # the stack pass stops at 320 px
    decoder._focus = [_Focus(big)]
    decoder.decode(frame)
    assert ran == [] and "stack" not in decoder._cost   # no turn wasted, no cost learnt
    decoder._focus = [_Focus(big)]
    decoder.decode(frame)
    assert ran == [("up2_soft", big)]                    # the next pass, on the next frame


def test_a_pass_that_reads_nothing_is_followed_by_the_cheap_upscale_on_the_same_frame():
    from hardware.qr.stream import _Focus

    decoder = StreamDecoder(clock=frozen_clock, every=1, stream_passes=("stack", "zbar"))
    ran = []
    decoder._run = lambda name, frame, box: ran.append((name, box)) or []
    decoder._scout = lambda frame: None
    frame = np.full((480, 640), 128, np.uint8)
    box = (100, 100, 260, 260)
    decoder._focus = [_Focus(box)]
    decoder.decode(frame)
    assert ran == [("stack", box), ("up3", box)]
    ran.clear()
    decoder.decode(frame)        # a whole-frame pass: the companion still takes the candidate
    assert ran == [("zbar", (0, 0, 640, 480)), ("up3", box)]
    # A rotation pass that reads a code needs no companion.
    from hardware.qr.base import Code

    code = Code("x", b"x", "QR_CODE", ((0, 0), (1, 0), (1, 1), (0, 1)))
    decoder._run = lambda name, frame, box: ran.append((name, box)) or [code]
    ran.clear()
    decoder.decode(frame)
    assert ran == [("stack", box)]


def test_the_companion_is_shed_when_the_pass_before_it_took_the_time_saved():
    from hardware.qr.stream import _Focus

    now = [0.0]
    decoder = StreamDecoder(clock=lambda: now[0], every=1, stream_passes=("stack",))
    ran = []

    def run(name, frame, box):
        ran.append(name)
        now[0] += 0.030 if name == "stack" else 0.001
        return []

    decoder._run = run
    decoder._scout = lambda frame: None
    frame = np.full((480, 640), 128, np.uint8)
    for _ in range(2):
        decoder._focus = [_Focus((0, 0, 160, 160))]
        decoder.decode(frame)
    # First frame: up3's cost is not known yet, so it is tried once.  Second frame: 30 ms
    # of stack leaves about 3 ms of the 33 ms saved, more than up3's 1 ms: it runs.
    assert ran == ["stack", "up3", "stack", "up3"]
    # Saved, with this frame's period: 30.5 ms; after the 30 ms stack, 0.5 ms is left.
    decoder._credit = 0.0305 - decoder.frame_period
    decoder._focus = [_Focus((0, 0, 160, 160))]
    shed = decoder.shed
    decoder.decode(frame)
    assert ran[-1] == "stack" and decoder.shed == shed + 1


def test_a_code_held_for_half_a_second_has_had_zbars_locator():
    # zbar on the whole frame is what reads the curved and wrinkled photos zxing-cpp
    # cannot (docs/decoding.md, "Real photos"): it has to come round within 15 frames.
    rng = np.random.default_rng(3)
    frame = np.full((480, 640), 200, np.uint8)
    frame[180:300, 260:380] = rng.choice([20, 230], size=(120, 120)).astype(np.uint8)
    decoder = StreamDecoder(clock=frozen_clock)
    ran = []
    run = decoder._run

    def record(name, f, box):
        ran.append(name)
        return run(name, f, box)

    decoder._run = record
    for _ in range(15):
        assert decoder.decode(frame) == []
    assert "zbar" in ran, ran
    assert ran.count("stack") >= 2, ran


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
    ({"held_every": 0}, "held_every must be 1 or more, got 0"),
    ({"patience": -1}, "patience must be 1 or more, got -1"),
    ({"look_every": 0}, "look_every must be 1 or more, got 0"),
    ({"companion": "zbar"}, "companion pass 'zbar'.*up3"),     # a whole-frame pass
    ({"companion": "up9"}, "companion pass 'up9'"),
])
def test_bad_options_are_clear_errors(options, match):
    with pytest.raises(DeviceSettingError, match=match):
        StreamDecoder(**options)


def _dense_sheet(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A sheet's dense code (version 10) as a Pi camera's two streams see it: 2.5 px a module
    in the main stream (1280x960, lens blur 1 px), 1.25 in the frame (its area average)."""
    import cv2

    payload = "HC1:" + "6BFOXN%TS3DHPVO13J /G-/2YRVA.Q/R8JF62FCXJ9M/9M+GX8JQ6WZ0I MB%D$.P9+HG7" * 4
    code = np.asarray(qr_image(payload, module_px=1)).astype(np.float32) / 255
    big = np.full((960, 1280), 0.55, np.float32)
    code = cv2.resize(code, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_NEAREST)
    big[300:300 + code.shape[0], 500:500 + code.shape[1]] = 0.1 + 0.8 * code
    big = cv2.GaussianBlur(big, (0, 0), 1.0) + rng.normal(0, 0.02, big.shape).astype(np.float32)
    small = cv2.resize(big, (640, 480), interpolation=cv2.INTER_AREA)
    return tuple(np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8) for a in (small, big))


def test_a_code_too_dense_for_the_frame_is_read_from_the_cameras_main_stream():
    rng = np.random.default_rng(1)
    shown = [_dense_sheet(rng) for _ in range(15)]
    alone = StreamDecoder(clock=frozen_clock)
    assert not any(alone.decode(frame) for frame, _ in shown)      # half a second, no read
    both = StreamDecoder(clock=frozen_clock)
    reads = [both.decode(frame, main) for frame, main in shown]
    first = next(i for i, codes in enumerate(reads) if codes)
    assert first < 5
    # Where it is comes back in the frame's pixels (the code spans x 250-331, y 150-231
    # there, quiet zone included).
    xs = [x for x, _ in reads[first][0].position]
    ys = [y for _, y in reads[first][0].position]
    assert 245 <= min(xs) and max(xs) <= 335 and 145 <= min(ys) and max(ys) <= 235


def test_a_main_stream_that_is_not_a_whole_multiple_of_the_frame_is_ignored(caplog):
    rng = np.random.default_rng(1)
    frame, main = _dense_sheet(rng)
    decoder = StreamDecoder(clock=frozen_clock)
    with caplog.at_level("WARNING"):
        assert decoder.decode(frame, main[:-1]) == []
    assert "not a whole multiple" in caplog.text
    assert decoder._details[-1] is None


def test_the_stack_pass_averages_the_main_streams_crops_when_every_frame_brought_one():
    rng = np.random.default_rng(2)
    shown = [_dense_sheet(rng) for _ in range(3)]
    decoder = StreamDecoder(clock=frozen_clock, stream_passes=("stack",), companion=None)
    for frame, main in shown:
        decoder.decode(frame, main)
    box = (240, 140, 340, 240)
    seen: list[tuple[tuple[int, ...], int]] = []
    decoder._passes = lambda image, passes, offset, finer=1: seen.append(   # type: ignore
        (image.shape, finer)) or []
    decoder._stack(box)
    assert seen == [((200, 200), 2)]
    decoder._details[0] = None       # one frame came alone: the frames' pixels are stacked
    decoder._stack(box)
    assert seen[-1] == ((100, 100), 1)
