import queue
import random
import time

import numpy as np
import pytest
from PIL import Image

from hardware.camera import Frame, ReplayCamera
from hardware.qr import open_decoder
from kiosk.errors import CameraError, DecoderError
from kiosk.runtime.capture import CameraStatus, CapturePipeline, Decoded, StreamEnded
from kiosk.testing.samples import SAMPLES, frame


def drain(events, until, timeout=10.0):
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            continue
        got.append(event)
        if isinstance(event, until):
            return got
    raise AssertionError(f"no {until.__name__} within {timeout} s; got {got!r}")


@pytest.fixture
def folder(tmp_path):
    rng = random.Random(5)
    readable = [s for s in SAMPLES if s.readable][:3]
    for i, sample in enumerate(readable):
        Image.fromarray(frame(sample, rng)).save(tmp_path / f"{i:03d}a.png")
        Image.fromarray(frame(None, rng)).save(tmp_path / f"{i:03d}b.png")
    return tmp_path, readable


def test_replay_without_fps_decodes_every_frame_in_order(folder):
    path, readable = folder
    events = queue.Queue()
    with CapturePipeline(open_camera=lambda: ReplayCamera(path), open_decoder=open_decoder,
                         events=events):
        got = drain(events, StreamEnded)
    decoded = [e for e in got if isinstance(e, Decoded)]
    assert [d.raw.decode("utf-8") for d in decoded] == [s.payload for s in readable]
    assert all(d.decoded_ns >= d.frame_ns for d in decoded)
    assert CameraStatus(True, None) in got


class FlakyCamera:
    """A camera that delivers two frames then fails, as a pulled USB cable does."""

    opened = 0

    def __init__(self, image):
        FlakyCamera.opened += 1
        if FlakyCamera.opened == 2:
            raise CameraError("camera 'flaky': /dev/video0 does not exist; is it plugged in?")
        self.spec, self.image, self.n = "flaky", image, 0

    def read(self, timeout=1.0):
        self.n += 1
        if self.n > 2:
            raise CameraError("camera 'flaky' stopped delivering frames (unplugged?)")
        return Frame(self.image, time.monotonic_ns(), self.n)

    def close(self):
        pass


def test_a_lost_camera_is_reported_and_reopened_with_backoff():
    image = frame(SAMPLES[0], random.Random(1))
    events = queue.Queue()
    FlakyCamera.opened = 0
    pipeline = CapturePipeline(open_camera=lambda: FlakyCamera(image), open_decoder=open_decoder,
                               events=events, retry_initial=0.05, retry_max=0.2)
    with pipeline:
        deadline = time.monotonic() + 10
        while FlakyCamera.opened < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pipeline.alive()
    statuses = []
    while not events.empty():
        e = events.get()
        if isinstance(e, CameraStatus):
            statuses.append(e)
    assert statuses[0] == CameraStatus(True, None)
    assert any(not s.ok and "unplugged" in s.message for s in statuses)
    assert any(not s.ok and "plugged in" in s.message for s in statuses)
    assert statuses.count(CameraStatus(True, None)) >= 2  # it came back
    assert FlakyCamera.opened >= 4


def test_garbage_frames_and_a_broken_decoder_do_not_stop_the_threads(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (480, 640), dtype=np.uint8)).save(
            tmp_path / f"{i}.png")

    class Exploding:
        calls = 0

        def decode(self, image, detail=None):
            Exploding.calls += 1
            if Exploding.calls % 2:
                raise RuntimeError("decoder bug")
            return []

        def close(self):
            pass

    events = queue.Queue()
    with CapturePipeline(open_camera=lambda: ReplayCamera(tmp_path), open_decoder=Exploding,
                         events=events):
        got = drain(events, StreamEnded)
    assert Exploding.calls == 5
    assert not [e for e in got if isinstance(e, Decoded)]


def test_a_missing_decoder_library_is_reported_and_retried(folder):
    path, _ = folder
    attempts = []

    def broken():
        attempts.append(1)
        raise DecoderError("pyzbar needs libzbar0: apt-get install libzbar0")

    events = queue.Queue()
    pipeline = CapturePipeline(open_camera=lambda: ReplayCamera(path, fps=5, loop=True),
                               open_decoder=broken, events=events, retry_initial=0.05,
                               retry_max=0.1)
    with pipeline:
        time.sleep(0.6)
        assert not pipeline.ok and "libzbar0" in pipeline.message
        assert pipeline.latest_frame() is not None  # the preview keeps running
    assert len(attempts) >= 3


def test_the_kiosk_decodes_the_stream_and_reads_every_code(folder):
    path, readable = folder
    events = queue.Queue()
    opened = []

    def stream_decoder():
        opened.append(open_decoder("auto", stream=True))
        return opened[-1]

    with CapturePipeline(open_camera=lambda: ReplayCamera(path), open_decoder=stream_decoder,
                         events=events):
        got = drain(events, StreamEnded)
    assert opened[0].name == "stream"
    assert [d.raw.decode("utf-8") for d in got if isinstance(d, Decoded)] == [
        s.payload for s in readable]


def test_a_reopened_camera_starts_a_new_stream():
    image = frame(SAMPLES[0], random.Random(1))

    class Recording:
        def __init__(self):
            self.resets = 0
            self.frames = 0

        def decode(self, image, detail=None):
            self.frames += 1
            return []

        def reset(self):
            self.resets += 1

        def close(self):
            pass

    decoder = Recording()
    events = queue.Queue()
    FlakyCamera.opened = 0
    with CapturePipeline(open_camera=lambda: FlakyCamera(image), open_decoder=lambda: decoder,
                         events=events, retry_initial=0.05, retry_max=0.1):
        deadline = time.monotonic() + 10
        while FlakyCamera.opened < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
    # Each reopened camera numbers its frames from 1 again: the decoder forgets the old one.
    assert decoder.frames >= 2
    assert decoder.resets >= 1


def test_the_camera_main_stream_reaches_the_stream_decoder_and_reads_what_the_frame_cannot():
    """A Pi camera's frame with its main stream, through the real pipeline and the kiosk's
    stream decoder: a dense code at 1.25 px a module in the frame is read from the main
    stream (2.5 px a module), as the decode thread hands both over."""
    from tests.test_qr_stream import _dense_sheet

    rng = np.random.default_rng(1)
    shown = [_dense_sheet(rng) for _ in range(6)]

    class TwoStreams:
        spec = "two-streams"
        realtime = False    # every frame is decoded, in order (as a replay without fps)

        def __init__(self):
            self.n = 0

        def read(self, timeout=1.0):
            from hardware.camera import EndOfStream

            if self.n >= len(shown):
                raise EndOfStream(self.spec)
            small, main = shown[self.n]
            self.n += 1
            return Frame(small, time.monotonic_ns(), self.n, main)

        def close(self):
            pass

    def run(main: bool) -> list[Decoded]:
        camera = TwoStreams()
        if not main:
            shown[:] = [(small, None) for small, _ in shown]
        events = queue.Queue()
        with CapturePipeline(open_camera=lambda: camera,
                             open_decoder=lambda: open_decoder("auto", stream=True),
                             events=events):
            return [e for e in drain(events, StreamEnded) if isinstance(e, Decoded)]

    assert [e.raw[:4] for e in run(main=True)] == [b"HC1:"]
    assert run(main=False) == []
