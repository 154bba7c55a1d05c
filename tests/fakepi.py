"""picamera2 and libcamera as a Pi has them, for tests off a Pi (they exist only there).

``fake_pi`` (a fixture, registered in conftest) puts both in ``sys.modules``; what the camera
is given (controls) and what it reports (metadata) are on ``FakePicamera2``.
"""

from __future__ import annotations

import numpy as np
import pytest


class FakePicamera2:
    """What PiCamera uses of picamera2's Picamera2, recording the controls it is given."""

    instances: list[FakePicamera2] = []
    # What libcamera reports with each frame (microseconds, gains); tests change it.
    metadata: dict = {"ExposureTime": 16667, "AnalogueGain": 2.0, "DigitalGain": 1.0}
    controls: tuple = ("AeExposureMode", "AfMode", "AfSpeed", "AfRange")

    def __init__(self, controls=None):
        controls = FakePicamera2.controls if controls is None else controls
        self.camera_controls = {name: (0, 3, 0) for name in controls}
        self.camera_properties = {"ScalerCropMaximum": (0, 0, 3280, 2464),
                                  "PixelArraySize": (3280, 2464)}
        self.set: dict = {}
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kw):
        return kw

    def configure(self, config):
        self.config = config

    def start(self):
        pass

    def set_controls(self, controls):
        self.set.update(controls)

    def capture_request(self):
        return FakeRequest(self.config)

    def capture_metadata(self):
        return dict(FakePicamera2.metadata)

    def stop(self):
        pass

    def close(self):
        pass


class FakeRequest:
    """A completed request: both streams of one exposure, as YUV420 arrays (the luma rows,
    then the chroma), the luma a ramp so that a test can tell which rows are which."""

    released = 0

    def __init__(self, config):
        self.config = config

    def make_array(self, name):
        w, h = self.config[name]["size"]
        assert self.config[name]["format"] == "YUV420"
        yuv = np.full((h * 3 // 2, w), 128, np.uint8)
        yuv[:h] = (np.arange(h)[:, None] * 255 // max(1, h - 1)).astype(np.uint8)
        return yuv

    def release(self):
        FakeRequest.released += 1


@pytest.fixture
def fake_pi(monkeypatch):
    """picamera2 and libcamera as on a Pi (they exist only there), in sys.modules."""
    import enum
    import sys
    import types

    class AeExposureModeEnum(enum.IntEnum):   # libcamera's values (control_ids_core.yaml)
        Normal = 0
        Short = 1
        Long = 2
        Custom = 3

    class AfModeEnum(enum.IntEnum):
        Manual = 0
        Auto = 1
        Continuous = 2

    class AfSpeedEnum(enum.IntEnum):
        Normal = 0
        Fast = 1

    class AfRangeEnum(enum.IntEnum):
        Normal = 0
        Macro = 1
        Full = 2

    picamera2 = types.ModuleType("picamera2")
    picamera2.Picamera2 = FakePicamera2
    libcamera = types.ModuleType("libcamera")
    libcamera.controls = types.SimpleNamespace(AeExposureModeEnum=AeExposureModeEnum,
                                               AfModeEnum=AfModeEnum,
                                               AfSpeedEnum=AfSpeedEnum,
                                               AfRangeEnum=AfRangeEnum)
    monkeypatch.setitem(sys.modules, "picamera2", picamera2)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
    FakePicamera2.instances = []
    monkeypatch.setattr(FakePicamera2, "metadata", dict(FakePicamera2.metadata))
    monkeypatch.setattr(FakePicamera2, "controls", FakePicamera2.controls)
    return AeExposureModeEnum
