import time

import numpy as np
import pytest
from PIL import Image

from hardware.camera import CameraSpec, EndOfStream, ReplayCamera, open_camera
from kiosk.errors import CameraError


def make_folder(tmp_path, n=3):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(np.full((48, 64, 3), i * 40, np.uint8)).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.parametrize("spec, parsed", [
    ("picamera2", CameraSpec("picamera2")),
    ("v4l2:/dev/video2", CameraSpec("v4l2", "/dev/video2")),
    ("replay:/x/y", CameraSpec("replay", "/x/y")),
    ("replay:/x/y,fps=12.5,loop", CameraSpec("replay", "/x/y", 12.5, True)),
])
def test_spec_parsing(spec, parsed):
    assert CameraSpec.parse(spec) == parsed


@pytest.mark.parametrize("spec, fragment", [
    ("webcam", "is not recognised"),
    ("v4l2:/dev/sda", "needs a device like /dev/video0"),
    ("replay:/x,fps=0", "fps='0'"),
    ("replay:/x,fps=fast", "fps='fast'"),
    ("replay:/x,speed=2", "unknown option 'speed=2'"),
])
def test_bad_specs_say_what_is_wrong(spec, fragment):
    with pytest.raises(CameraError, match=fragment):
        CameraSpec.parse(spec)


def test_replay_folder_in_name_order_then_end(tmp_path):
    folder = make_folder(tmp_path)
    with open_camera(f"replay:{folder}") as cam:
        frames = [cam.read() for _ in range(3)]
        assert [int(f.image[0, 0]) for f in frames] == [0, 40, 80]
        assert frames[0].image.dtype == np.uint8 and frames[0].image.ndim == 2
        assert [f.index for f in frames] == [1, 2, 3]
        with pytest.raises(EndOfStream):
            cam.read()


def test_replay_loops_and_paces(tmp_path):
    folder = make_folder(tmp_path)
    with ReplayCamera(folder, fps=20, loop=True) as cam:
        t0 = time.monotonic()
        values = [int(cam.read(timeout=1).image[0, 0]) for _ in range(7)]
        elapsed = time.monotonic() - t0
    assert values == [0, 40, 80, 0, 40, 80, 0]
    assert 0.25 <= elapsed < 1.0  # 7 frames at 20 fps: six periods of 50 ms


def test_replay_skips_files_that_are_not_images(tmp_path, caplog):
    folder = make_folder(tmp_path, 2)
    (folder / "000b.png").write_bytes(b"this is not a png at all")
    with ReplayCamera(folder) as cam:
        values = [int(cam.read().image[0, 0]) for _ in range(2)]
    assert values == [0, 40]
    assert "000b.png" in caplog.text and "not an image" in caplog.text


def test_replay_of_nothing_is_an_error(tmp_path):
    with pytest.raises(CameraError, match="does not exist"):
        open_camera(f"replay:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CameraError, match="has no files"):
        open_camera(f"replay:{tmp_path / 'empty'}")


def test_replay_video_file(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is the optional [v4l2] extra")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(4):
        writer.write(np.full((48, 64, 3), 50 * i, np.uint8))
    writer.release()
    with open_camera(f"replay:{path}") as cam:
        values = [int(cam.read().image[10, 10]) for _ in range(4)]
        with pytest.raises(EndOfStream):
            cam.read()
    assert values == pytest.approx([0, 50, 100, 150], abs=6)


def test_v4l2_missing_device_is_a_clear_error():
    pytest.importorskip("cv2", reason="OpenCV is the optional [v4l2] extra")
    with pytest.raises(CameraError, match="does not exist; is it plugged in"):
        open_camera("v4l2:/dev/video99")


def test_picamera2_off_a_pi_says_what_to_use_instead():
    try:
        import picamera2  # noqa: F401
    except ImportError:
        with pytest.raises(CameraError, match="only on Raspberry Pi"):
            open_camera("picamera2")
    else:
        pytest.skip("picamera2 is installed: this is a Pi, see the 'pi' tests")


@pytest.mark.pi
def test_picamera2_delivers_gray_frames_on_a_pi():
    pytest.importorskip("picamera2", reason="needs a Raspberry Pi with a camera")
    with open_camera("picamera2", width=640, height=480) as cam:
        frame = cam.read(timeout=5)
    assert frame.image.shape == (480, 640) and frame.image.dtype == np.uint8


@pytest.mark.pi
def test_picamera2_centre_crop_on_a_pi():
    pytest.importorskip("picamera2", reason="needs a Raspberry Pi with a camera")
    with open_camera("picamera2", width=640, height=480, crop=0.5) as cam:
        frame = cam.read(timeout=5)
        crop = cam._cam.capture_metadata()["ScalerCrop"]
        full = cam._cam.camera_properties["ScalerCropMaximum"]
    assert frame.image.shape == (480, 640)
    assert crop[2] == pytest.approx(full[2] / 2, rel=0.05)


class FakePicamera2:
    """What PiCamera uses of picamera2's Picamera2, recording the controls it is given."""

    instances: list["FakePicamera2"] = []

    def __init__(self, controls=("AeExposureMode", "AfMode")):
        self.camera_controls = {name: (0, 3, 0) for name in controls}
        self.camera_properties = {"ScalerCropMaximum": (0, 0, 3280, 2464)}
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

    def capture_array(self, name):
        return np.zeros((480 * 3 // 2, 640), np.uint8)

    def stop(self):
        pass

    def close(self):
        pass


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

    picamera2 = types.ModuleType("picamera2")
    picamera2.Picamera2 = FakePicamera2
    libcamera = types.ModuleType("libcamera")
    libcamera.controls = types.SimpleNamespace(AeExposureModeEnum=AeExposureModeEnum,
                                               AfModeEnum=AfModeEnum)
    monkeypatch.setitem(sys.modules, "picamera2", picamera2)
    monkeypatch.setitem(sys.modules, "libcamera", libcamera)
    FakePicamera2.instances = []
    return AeExposureModeEnum


@pytest.mark.parametrize("exposure, mode", [("normal", "Normal"), ("short", "Short")])
def test_the_exposure_setting_becomes_libcameras_ae_exposure_mode(fake_pi, exposure, mode):
    with open_camera("picamera2", exposure=exposure) as cam:
        assert cam.read().image.shape == (480, 640)
    assert FakePicamera2.instances[-1].set["AeExposureMode"] is fake_pi[mode]


def test_the_default_exposure_is_libcameras_default(fake_pi):
    with open_camera("picamera2"):
        pass
    assert FakePicamera2.instances[-1].set["AeExposureMode"] is fake_pi.Normal


def test_an_unknown_exposure_profile_is_refused_before_the_camera_opens(fake_pi):
    with pytest.raises(CameraError, match="exposure 'fast' is not one of 'normal', 'short'"):
        open_camera("picamera2", exposure="fast")
    assert FakePicamera2.instances == []


def test_the_runtime_passes_the_configured_exposure_to_the_camera(monkeypatch):
    import hardware.camera
    from kiosk.config import Config
    from kiosk.runtime.build import configured_camera

    seen: dict = {}
    monkeypatch.setattr(hardware.camera, "open_camera", lambda spec, **kw: seen.update(kw))
    configured_camera(Config().replace(camera={"exposure": "short"}))
    assert seen["exposure"] == "short"
    configured_camera(Config())
    assert seen["exposure"] == "normal"
