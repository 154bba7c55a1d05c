"""Cameras behind one small interface, chosen by a spec string.

``picamera2``                      the Pi camera; lores YUV420 stream, its Y plane is the frame
``v4l2:/dev/videoN``               a USB webcam through OpenCV's V4L2 capture
``replay:PATH[,fps=N][,loop]``     a folder of images in name order, or a video file

Every camera yields 2-D ``uint8`` grayscale frames: QR decoding needs nothing else and the
preview draws gray.  ``read()`` raises :class:`CameraError` when the device is gone (the
scan loop reopens it with backoff) and :class:`EndOfStream` when a replay is over.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hardware.errors import CameraError

log = logging.getLogger(__name__)

# libcamera's automatic-exposure profiles the kiosk offers (AeExposureMode): how the wanted
# exposure is divided between shutter time and gain (docs/decoding.md, "Camera set-up:
# exposure profile").
EXPOSURE_PROFILES = ("normal", "short")


def check_exposure(exposure: str) -> None:
    """CameraError unless ``exposure`` is one of EXPOSURE_PROFILES."""
    if exposure not in EXPOSURE_PROFILES:
        raise CameraError(f"camera exposure {exposure!r} is not one of "
                          f"{', '.join(repr(p) for p in EXPOSURE_PROFILES)}")


# Where an autofocus lens may focus (libcamera's AfRange): "near" is its macro range (on a
# Camera Module 3, 3-15 dioptres: 7-33 cm, the Raspberry Pi tuning file imx708.json), where
# codes are shown; "full" is every distance, for a camera mounted farther from the codes.
FOCUS_RANGES = ("near", "full")


def check_focus_range(focus_range: str) -> None:
    """CameraError unless ``focus_range`` is one of FOCUS_RANGES."""
    if focus_range not in FOCUS_RANGES:
        raise CameraError(f"camera focus_range {focus_range!r} is not one of "
                          f"{', '.join(repr(p) for p in FOCUS_RANGES)}")


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".h264", ".mjpeg", ".webm"}


class EndOfStream(Exception):
    """A replayed recording has no more frames (not an error: headless runs then exit 0)."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # 2-D uint8 grayscale, C-contiguous
    t_ns: int  # time.monotonic_ns() when the frame was captured
    index: int  # running count since the camera was opened
    # The same exposure at a whole multiple of the image's size (a Pi camera's main stream,
    # luma), for decoders that look closer at a candidate; None from other cameras.
    detail: np.ndarray | None = None


# A shutter this long blurs a code the hand is still moving: at the hand speeds of
# bench/clipgen.py the codes the benches could not read in time were all taken at 30-33 ms
# (docs/decoding.md, "Why clips are missed").  libcamera's normal profile gets there in
# half the light of a bright entrance.
LONG_SHUTTER_S = 0.030


@dataclass(frozen=True)
class CameraSettings:
    """What the camera's automatic exposure and focus are doing (a Pi camera tells; others not).

    ``shutter_s`` and ``gain`` (analogue x digital) are what the automatic exposure chose
    for the last frame; ``autofocus`` is whether the lens focuses by itself (a Camera
    Module 3 in continuous autofocus) rather than being fixed (a Module 2).
    """

    shutter_s: float
    gain: float
    autofocus: bool

    def advice(self) -> list[str]:
        """What a technician should change, one sentence each; empty when nothing."""
        out = []
        if not self.autofocus:
            out.append("the lens has no autofocus (a Camera Module 2?): codes held nearer or "
                       "farther than its focus blur; a Camera Module 3 reads them "
                       "(docs/decoding.md, 'Camera set-up')")
        if self.shutter_s >= LONG_SHUTTER_S:
            out.append(f"little light: the shutter is at {1000 * self.shutter_s:.0f} ms "
                       f"(gain {self.gain:.1f}), so a code that still moves is blurred; "
                       "light the place where people hold their codes")
        return out

    def describe(self) -> str:
        focus = "autofocus" if self.autofocus else "fixed focus"
        return f"shutter {1000 * self.shutter_s:.1f} ms, gain {self.gain:.1f}, {focus}"


class Camera(Protocol):
    """What the scan loop needs from a camera."""

    spec: str

    def read(self, timeout: float = 1.0) -> Frame | None:
        """The next frame, or None if none came within ``timeout`` seconds."""
        ...

    def settings(self) -> CameraSettings | None:
        """Exposure and focus as the camera reports them; None when it does not."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class CameraSpec:
    backend: str  # "picamera2" | "v4l2" | "replay"
    target: str = ""  # device or path
    fps: float | None = None
    loop: bool = False

    @classmethod
    def parse(cls, spec: str) -> CameraSpec:
        backend, _, rest = spec.partition(":")
        if backend == "picamera2" and not rest:
            return cls("picamera2")
        if backend == "v4l2":
            device = rest or "/dev/video0"
            if not re.fullmatch(r"/dev/video\d+|\d+", device):
                raise CameraError(
                    f"camera spec {spec!r}: v4l2 needs a device like /dev/video0, got {device!r}"
                )
            return cls("v4l2", device)
        if backend == "replay" and rest:
            path, *opts = rest.split(",")
            fps: float | None = None
            loop = False
            for opt in opts:
                key, _, value = opt.partition("=")
                if key == "loop" and not value:
                    loop = True
                elif key == "fps":
                    try:
                        fps = float(value)
                    except ValueError:
                        fps = -1.0
                    if not 0 < fps <= 240:
                        raise CameraError(
                            f"camera spec {spec!r}: fps={value!r} must be a number in (0, 240]"
                        )
                else:
                    raise CameraError(
                        f"camera spec {spec!r}: unknown option {opt!r} (valid: fps=N, loop)"
                    )
            return cls("replay", path, fps, loop)
        raise CameraError(
            f"camera spec {spec!r} is not recognised; use 'picamera2', 'v4l2:/dev/videoN' or "
            "'replay:PATH[,fps=N][,loop]'"
        )


def open_camera(spec: str, *, width: int = 640, height: int = 480, crop: float = 1.0,
                autofocus: bool = True, exposure: str = "normal",
                focus_range: str = "near") -> Camera:
    """Open the camera a spec string names; raises CameraError with what to check.

    ``crop``, ``autofocus``, ``exposure`` and ``focus_range`` apply to the Pi camera only
    (see :class:`PiCamera`).
    """
    check_exposure(exposure)
    check_focus_range(focus_range)
    parsed = CameraSpec.parse(spec)
    if parsed.backend == "replay":
        return ReplayCamera(parsed.target, fps=parsed.fps, loop=parsed.loop, spec=spec)
    if parsed.backend == "v4l2":
        return V4L2Camera(parsed.target, width=width, height=height, spec=spec)
    return PiCamera(width=width, height=height, crop=crop, autofocus=autofocus,
                    exposure=exposure, focus_range=focus_range, spec=spec)


def to_gray(image: Any) -> np.ndarray:
    """A PIL image or an array as a contiguous 2-D uint8 array."""
    arr = np.asarray(image)
    if arr.ndim == 3:
        # ITU-R 601 luma, as a camera's Y plane would be.
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        arr = np.clip(arr, 0, 255)
    return np.ascontiguousarray(arr, dtype=np.uint8)


class _Pacer:
    """Hands out frames no faster than ``fps`` (None = as fast as asked)."""

    def __init__(self, fps: float | None) -> None:
        self.period = 1.0 / fps if fps else 0.0
        self.next = time.monotonic()

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        delay = self.next - time.monotonic()
        if delay > timeout:
            stop.wait(timeout)
            return False
        if delay > 0:
            stop.wait(delay)
        self.next = max(self.next + self.period, time.monotonic() - self.period)
        return not stop.is_set()


class ReplayCamera:
    """Replays a folder of images (sorted by name) or a video file, optionally looping.

    Files that are not images are skipped with one warning each: a recording copied off a
    checkpoint may contain anything.  Decoded frames of a folder are cached so that a long
    looped replay (demo, soak bench) costs no decoding after the first pass.
    """

    CACHE_LIMIT_BYTES = 256 * 1024 * 1024

    def __init__(self, path: str | Path, *, fps: float | None = None, loop: bool = False,
                 spec: str | None = None) -> None:
        self.spec = spec or f"replay:{path}"
        self.path = Path(path)
        self.loop = loop
        # Without a frame rate a replay is not live: the scan loop decodes every frame.
        self.realtime = fps is not None
        self._pacer = _Pacer(fps)
        self._closed = threading.Event()
        self._index = 0
        self._video: Any = None
        self._cache: dict[Path, np.ndarray | None] = {}
        self._cache_bytes = 0
        if self.path.is_dir():
            self._files = sorted(
                p for p in self.path.iterdir() if p.is_file() and not p.name.startswith(".")
            )
            if not self._files:
                raise CameraError(f"replay folder {str(self.path)!r} has no files; add images")
            self._pos = 0
        elif self.path.is_file():
            self._files = []
            self._open_video()
        else:
            raise CameraError(
                f"replay path {str(self.path)!r} does not exist; give a folder of images or a video"
            )

    def _open_video(self) -> None:
        try:
            import cv2
        except ImportError as e:
            raise CameraError(
                f"replaying the video {str(self.path)!r} needs OpenCV: "
                "pip install 'checkpoint-kiosk[v4l2]' (or give a folder of images)"
            ) from e
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise CameraError(f"replay file {str(self.path)!r} is not a video OpenCV can read")
        self._video = cap

    def read(self, timeout: float = 1.0) -> Frame | None:
        if self._closed.is_set():
            raise CameraError(f"camera {self.spec!r} is closed")
        if not self._pacer.wait(timeout, self._closed):
            return None
        image = self._next_video() if self._video is not None else self._next_file()
        self._index += 1
        return Frame(image, time.monotonic_ns(), self._index)

    def _next_video(self) -> np.ndarray:
        import cv2

        ok, bgr = self._video.read()
        if not ok:
            if not self.loop or self._index == 0:
                raise EndOfStream(self.spec)
            self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, bgr = self._video.read()
            if not ok:
                raise EndOfStream(self.spec)
        return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))

    def _next_file(self) -> np.ndarray:
        for _ in range(2 * len(self._files)):
            if self._pos >= len(self._files):
                if not self.loop:
                    raise EndOfStream(self.spec)
                self._pos = 0
            path = self._files[self._pos]
            self._pos += 1
            image = self._load(path)
            if image is not None:
                return image
        raise EndOfStream(f"{self.spec}: none of its files is an image")

    def _load(self, path: Path) -> np.ndarray | None:
        if path in self._cache:
            return self._cache[path]
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                image: np.ndarray | None = to_gray(im.convert("L"))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            log.warning("replay: skipping %s: not an image Pillow can read (%s)", path, e)
            image = None
        size = image.nbytes if image is not None else 0
        if self._cache_bytes + size <= self.CACHE_LIMIT_BYTES:
            self._cache[path] = image
            self._cache_bytes += size
        return image

    def settings(self) -> CameraSettings | None:
        """A recording has no exposure to report: None."""
        return None

    def close(self) -> None:
        self._closed.set()
        if self._video is not None:
            self._video.release()
            self._video = None

    def __enter__(self) -> ReplayCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class V4L2Camera:
    """A USB webcam through OpenCV (``cv2.CAP_V4L2``), converted to grayscale."""

    def __init__(self, device: str, *, width: int = 640, height: int = 480,
                 spec: str | None = None) -> None:
        self.spec = spec or f"v4l2:{device}"
        try:
            import cv2
        except ImportError as e:
            raise CameraError(
                f"camera {self.spec!r} needs OpenCV: pip install 'checkpoint-kiosk[v4l2]' "
                "(or apt install python3-opencv)"
            ) from e
        self._cv2 = cv2
        index = int(device.removeprefix("/dev/video"))
        if device.startswith("/dev/") and not Path(device).exists():
            raise CameraError(f"camera {self.spec!r}: {device} does not exist; is it plugged in?")
        cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise CameraError(
                f"camera {self.spec!r} cannot be opened; check the cable and that the kiosk user "
                "is in the 'video' group"
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        # Keep only the newest frame: a stale buffered frame adds a frame period of latency.
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap: cv2.VideoCapture | None = cap
        self._index = 0

    def read(self, timeout: float = 1.0) -> Frame | None:
        if self._cap is None:
            raise CameraError(f"camera {self.spec!r} is closed")
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            raise CameraError(f"camera {self.spec!r} stopped delivering frames (unplugged?)")
        self._index += 1
        gray = self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr
        return Frame(np.ascontiguousarray(gray), time.monotonic_ns(), self._index)

    def settings(self) -> CameraSettings | None:
        """A webcam through OpenCV does not report its exposure: None."""
        return None

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self) -> V4L2Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def exposure_mode(profile: str) -> Any:
    """libcamera's ``AeExposureMode`` value for an exposure profile of EXPOSURE_PROFILES
    (libcamera is imported here: it exists only on a Pi)."""
    from libcamera import controls as lc

    return {"normal": lc.AeExposureModeEnum.Normal,
            "short": lc.AeExposureModeEnum.Short}[profile]


def _controls(cam: Any, *, crop: float, autofocus: bool, exposure: str,
              focus_range: str) -> dict[str, Any]:
    """The libcamera controls a started Picamera2 ``cam`` is given (those it has)."""
    controls: dict[str, Any] = {}
    if crop < 1.0:
        x, y, w, h = cam.camera_properties["ScalerCropMaximum"]
        cw, ch = int(w * crop), int(h * crop)
        controls["ScalerCrop"] = (x + (w - cw) // 2, y + (h - ch) // 2, cw, ch)
    if autofocus:
        from libcamera import controls as lc

        controls["AfMode"] = lc.AfModeEnum.Continuous
        if "AfSpeed" in cam.camera_controls:
            controls["AfSpeed"] = lc.AfSpeedEnum.Fast
        if "AfRange" in cam.camera_controls:
            controls["AfRange"] = (lc.AfRangeEnum.Macro if focus_range == "near"
                                   else lc.AfRangeEnum.Full)
    if "AeExposureMode" in cam.camera_controls:
        controls["AeExposureMode"] = exposure_mode(exposure)
    return controls


class PiCamera:
    """The Raspberry Pi camera through picamera2 (imported lazily: it exists only on a Pi).

    The ``lores`` stream is YUV420 at the analysis size and its first ``height`` rows are the
    Y (luma) plane: a grayscale frame with no colour conversion at all.  The ``main`` stream
    is the same exposure at ``detail`` times that size each way, also YUV420; its luma comes
    with each frame (``Frame.detail``) when the sensor has that many pixels across the
    field, so the stream decoder crops its candidates from it (a sheet's dense code at 1-2
    px a module in the frame has 2-4 in the main stream; docs/decoding.md, "The camera's
    main stream").  ``detail=1`` sends the frame alone.

    An 11 mm CCCD code at 25 cm spans well under one pixel per module in a full-field 640×480
    frame (``docs/decoding.md``, "optics").  ``crop`` < 1 keeps only the centre of the sensor
    (libcamera's ``ScalerCrop``), so the same lores frame sees the code at 2-3 pixels a module;
    with ``autofocus`` a Camera Module 3 focuses continuously, while a fixed-focus Module 2 must
    have its lens turned to about 25 cm with the focus tool.

    ``exposure`` picks libcamera's automatic-exposure profile (the ``AeExposureMode``
    control): ``"normal"`` (libcamera's default) lengthens the shutter to about 30 ms before
    it raises the gain; ``"short"`` raises the gain first, so a moving code blurs less and
    the frame is noisier.

    With autofocus, the lens moves at libcamera's fast speed (``AfSpeed``: a higher loop
    gain and slew limit) and, with ``focus_range="near"``, only over the macro range
    (``AfRange``: 7-33 cm on a Module 3) -- so between people it waits near the codes'
    distance instead of focusing on the room behind, and reaches the next code sooner
    (docs/decoding.md, "Camera set-up: focus").
    """

    def __init__(self, *, width: int = 640, height: int = 480, crop: float = 1.0,
                 autofocus: bool = True, exposure: str = "normal", focus_range: str = "near",
                 detail: int = 2, spec: str = "picamera2") -> None:
        self.spec = spec
        if detail < 1:
            raise CameraError(f"camera 'picamera2': detail must be 1 or more, got {detail!r}")
        check_exposure(exposure)
        check_focus_range(focus_range)
        try:
            from picamera2 import Picamera2
        except ImportError as e:
            raise CameraError(
                "camera 'picamera2' needs the picamera2 package, which exists only on Raspberry "
                "Pi OS (apt install python3-picamera2, venv with --system-site-packages); off a "
                "Pi use --camera v4l2:/dev/video0 or replay:PATH"
            ) from e
        # YUV420 planes need even dimensions.
        self.width, self.height = width - width % 2, height - height % 2
        try:
            cam = Picamera2()
            # The main stream is worth its memory only if the sensor has the pixels: the
            # field (crop of the sensor's width) at least ``detail`` times the frame's.
            sensor_w = int(cam.camera_properties.get("PixelArraySize", (0, 0))[0])
            if detail > 1 and sensor_w * crop < detail * self.width:
                detail = 1
            self.detail = detail
            config = cam.create_video_configuration(
                main={"size": (self.width * max(2, detail), self.height * max(2, detail)),
                      "format": "YUV420"},
                lores={"size": (self.width, self.height), "format": "YUV420"},
                buffer_count=4,
            )
            cam.configure(config)
            cam.start()
            self.autofocus = "AfMode" in cam.camera_controls
            controls = _controls(cam, crop=crop, autofocus=autofocus and self.autofocus,
                                 exposure=exposure, focus_range=focus_range)
            if controls:
                cam.set_controls(controls)
        except Exception as e:  # libcamera raises plain RuntimeError/IndexError for "no camera"
            raise CameraError(
                f"camera 'picamera2' cannot start: {e}; check the ribbon cable and "
                "'rpicam-hello --list-cameras'"
            ) from e
        self._cam: Any = cam
        self._index = 0
        # Only the technician can swap the module: said once, at start-up (the self-test
        # says it again with the exposure).
        if not self.autofocus:
            log.warning("camera 'picamera2' has no autofocus (a Camera Module 2?): codes held "
                        "off its focus distance read late or not at all; a Camera Module 3 is "
                        "recommended (docs/decoding.md, 'Camera set-up')")
        elif not autofocus:
            self.autofocus = False

    def read(self, timeout: float = 1.0) -> Frame | None:
        if self._cam is None:
            raise CameraError("camera 'picamera2' is closed")
        try:
            # One request holds both streams of the same exposure; make_array copies.
            request = self._cam.capture_request()
            try:
                yuv = request.make_array("lores")
                main = request.make_array("main") if self.detail > 1 else None
            finally:
                request.release()
        except Exception as e:
            raise CameraError(f"camera 'picamera2' stopped delivering frames: {e}") from e
        self._index += 1
        # A YUV420 array is (height * 3 / 2, stride); the luma plane is the top rows.
        y = yuv[: self.height, : self.width]
        detail = None
        if main is not None:
            detail = np.ascontiguousarray(
                main[: self.height * self.detail, : self.width * self.detail])
        return Frame(np.ascontiguousarray(y), time.monotonic_ns(), self._index, detail)

    def settings(self) -> CameraSettings | None:
        """The last frame's exposure from libcamera's metadata, and whether it autofocuses."""
        if self._cam is None:
            raise CameraError("camera 'picamera2' is closed")
        try:
            md = self._cam.capture_metadata()
            shutter = float(md["ExposureTime"]) / 1e6
            gain = float(md.get("AnalogueGain", 1.0)) * float(md.get("DigitalGain", 1.0))
        except (KeyError, TypeError, ValueError) as e:
            log.debug("camera 'picamera2' metadata without exposure: %s", e)
            return None
        except Exception as e:
            raise CameraError(f"camera 'picamera2' stopped delivering metadata: {e}") from e
        return CameraSettings(shutter, gain, self.autofocus)

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None

    def __enter__(self) -> PiCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
