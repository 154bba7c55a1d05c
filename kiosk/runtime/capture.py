"""Camera and decoder threads: frames in, decoded codes out as events.

Two threads, so that neither a slow decode nor a slow camera stalls the screen:

* the camera thread reads frames, keeps the newest one for the preview and hands it to the
  decoder; a camera that fails is closed and reopened with capped exponential backoff, and its
  state is posted as a :class:`CameraStatus` event — it never kills the process;
* the decode thread always takes the *newest* frame (a live camera's stale frames are dropped:
  latency matters more than throughput) and posts a :class:`Decoded` event per code.  The
  kiosk's decoder decodes the stream, not single frames (``hardware.qr.stream``: its costly
  passes are spread over consecutive frames and shed when a frame takes too long); it is
  reset whenever the camera is reopened, since what it remembers is of the old one.

A replay with no ``fps`` runs in lock-step instead (every frame is decoded), so a recording
replays the same way every time.  Both threads wait on events and stop within a fraction of a
second of :meth:`CapturePipeline.close`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hardware.camera import Camera, EndOfStream, Frame
from kiosk.errors import CameraError
from offline_queue.backoff import Backoff

log = logging.getLogger(__name__)

POLL = 0.2  # seconds a thread waits before re-checking that it should stop


@dataclass(frozen=True)
class Decoded:
    """A code found in a frame."""

    raw: bytes
    text: str
    position: tuple[tuple[int, int], ...]
    frame_ns: int  # monotonic time the frame was captured
    decoded_ns: int  # monotonic time decoding finished


@dataclass(frozen=True)
class CameraStatus:
    ok: bool
    message: str | None = None


@dataclass(frozen=True)
class StreamEnded:
    """A replayed recording is over and its last frame has been decoded."""


class EventSink(Protocol):
    """Where the pipeline posts what it sees: the scan loop's queue (it only ever puts)."""

    def put(self, item: Decoded | CameraStatus | StreamEnded, /) -> None: ...


class CapturePipeline:
    """Runs the camera and decode threads; events go to ``events``."""

    def __init__(self, *, open_camera: Callable[[], Camera], open_decoder: Callable[[], Any],
                 events: EventSink, retry_initial: float = 0.5,
                 retry_max: float = 30.0) -> None:
        self._open_camera = open_camera
        self._open_decoder = open_decoder
        self._decoder: Any = None
        self.decoder_message: str | None = None
        self._events = events
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._stop = threading.Event()
        self._frame_ready = threading.Event()
        self._frame_taken = threading.Event()
        self._lock = threading.Lock()
        self._latest: Frame | None = None
        self._pending: Frame | None = None
        self._lockstep = False
        self._ended = False
        self._last_index = 0
        self.camera_ok = False
        self.camera_message: str | None = "starting"
        self.frames = 0
        self.decodes = 0
        self.camera_heartbeat = time.monotonic()
        self.decode_heartbeat = time.monotonic()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        for name, target in (("camera", self._camera_loop), ("decoder", self._decode_loop)):
            thread = threading.Thread(target=target, name=f"kiosk-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def latest_frame(self) -> Frame | None:
        with self._lock:
            return self._latest

    @property
    def ok(self) -> bool:
        return self.camera_ok and self.decoder_message is None

    @property
    def message(self) -> str | None:
        if self.decoder_message:
            return f"QR decoder unavailable: {self.decoder_message}"
        return self.camera_message

    def alive(self, *, max_age: float = 10.0) -> bool:
        """Both threads have turned within ``max_age`` seconds (the watchdog asks this)."""
        now = time.monotonic()
        return (all(t.is_alive() for t in self._threads) and bool(self._threads)
                and now - self.camera_heartbeat < max_age
                and now - self.decode_heartbeat < max_age) or self._ended

    # -- camera thread -------------------------------------------------------------------------

    def _set_camera(self, ok: bool, message: str | None) -> None:
        if ok != self.camera_ok or message != self.camera_message:
            self.camera_ok, self.camera_message = ok, message
            self._events.put(CameraStatus(ok, message))

    def _camera_loop(self) -> None:
        retry = Backoff(first=self.retry_initial, cap=self.retry_max)
        while not self._stop.is_set():
            self.camera_heartbeat = time.monotonic()
            try:
                camera = self._open_camera()
            except CameraError as e:
                self._stop.wait(self._camera_failed(e, retry.failed()))
                continue
            self._lockstep = not getattr(camera, "realtime", True)
            try:
                self._set_camera(True, None)
                log.info("camera %s open", getattr(camera, "spec", camera))
                while not self._stop.is_set():
                    self.camera_heartbeat = time.monotonic()
                    frame = camera.read(timeout=POLL)
                    if frame is None:
                        continue
                    retry.reset()
                    self._hand_over(frame)
            except EndOfStream:
                log.info("camera %s: end of recording", getattr(camera, "spec", camera))
                with self._lock:
                    self._ended = True
                self._frame_ready.set()
                return
            except CameraError as e:
                self._camera_failed(e, delay := retry.failed())
            except Exception as e:  # a driver returning garbage must not end the thread
                log.exception("camera %s failed unexpectedly", getattr(camera, "spec", camera))
                self._camera_failed(e, delay := retry.failed())
            else:
                delay = 0.0  # the reading loop ends only on stop
            finally:
                try:
                    camera.close()
                except Exception:
                    log.exception("closing the camera failed")
            self._stop.wait(delay)

    def _camera_failed(self, error: Exception, delay: float) -> float:
        """Show and log the fault once; returns ``delay`` (the wait before reopening)."""
        message = str(error) or type(error).__name__
        if self.camera_ok or self.camera_message != message:
            log.error("camera lost: %s (retrying every %.1f s at most %.0f s)", message, delay,
                      self.retry_max)
        self._set_camera(False, message)
        return delay

    def _hand_over(self, frame: Frame) -> None:
        with self._lock:
            self._latest = frame
            self._pending = frame
            self.frames += 1
        self._frame_ready.set()
        if self._lockstep:
            # Replays without a frame rate wait for the decoder: every frame gets decoded.
            while not self._stop.is_set():
                if self._frame_taken.wait(POLL):
                    self._frame_taken.clear()
                    break
                self.camera_heartbeat = time.monotonic()

    # -- decode thread -------------------------------------------------------------------------

    def _decode_loop(self) -> None:
        failures: dict[str, int] = {}
        retry = Backoff(first=self.retry_initial, cap=self.retry_max)
        while self._decoder is None and not self._stop.is_set():
            # A missing libzbar0 (say) is shown on screen and retried: the kiosk keeps running
            # and an officer can still type numbers in.
            self.decode_heartbeat = time.monotonic()
            try:
                self._decoder = self._open_decoder()
                self.decoder_message = None
            except Exception as e:
                if self.decoder_message != str(e):
                    log.error("QR decoder unavailable: %s", e)
                self.decoder_message = str(e)
                self._events.put(CameraStatus(False, f"QR decoder unavailable: {e}"))
                self._stop.wait(retry.failed())
        while not self._stop.is_set():
            self.decode_heartbeat = time.monotonic()
            if not self._frame_ready.wait(POLL):
                continue
            with self._lock:
                self._frame_ready.clear()
                frame, self._pending = self._pending, None
                ended = self._ended
            if frame is not None:
                self._decode(frame, failures)
                self._frame_taken.set()
            if ended and frame is None:
                self._events.put(StreamEnded())
                return
            if ended:
                self._frame_ready.set()  # drain: come round once more to post StreamEnded

    def _decode(self, frame: Frame, failures: dict[str, int]) -> None:
        # A reopened camera counts its frames from 1 again: a new stream.
        if frame.index <= self._last_index and hasattr(self._decoder, "reset"):
            self._decoder.reset()
        self._last_index = frame.index
        try:
            codes = self._decoder.decode(frame.image, frame.detail)
        except Exception as e:
            # A decoder bug on one odd frame must not stop scanning; say it once per kind.
            kind = type(e).__name__
            failures[kind] = failures.get(kind, 0) + 1
            if failures[kind] == 1:
                log.exception("decoding a frame failed (%s); later ones are counted", kind)
            return
        self.decodes += 1
        done = time.monotonic_ns()
        for code in codes:
            self._events.put(Decoded(bytes(code.raw), code.text, tuple(code.position),
                                     frame.t_ns, done))

    def close(self) -> None:
        self._stop.set()
        self._frame_ready.set()
        for thread in self._threads:
            thread.join(timeout=5)
            if thread.is_alive():
                log.error("thread %s did not stop within 5 s", thread.name)
        self._threads.clear()
        if self._decoder is not None:
            self._decoder.close()
            self._decoder = None

    def __enter__(self) -> CapturePipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
