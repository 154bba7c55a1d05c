import time

import numpy as np
import pytest
from PIL import Image

from hardware.camera import CameraSpec, EndOfStream, ReplayCamera, open_camera
from kiosk.errors import CameraError
from tests.fakepi import FakePicamera2


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
    assert seen["exposure"] == "normal" and seen["focus_range"] == "near"
    configured_camera(Config().replace(camera={"focus_range": "full"}))
    assert seen["focus_range"] == "full"


def test_the_autofocus_is_fast_and_kept_near_the_codes(fake_pi):
    import sys

    lc = sys.modules["libcamera"].controls
    with open_camera("picamera2"):
        pass
    got = FakePicamera2.instances[-1].set
    assert got["AfMode"] == lc.AfModeEnum.Continuous
    assert got["AfSpeed"] == lc.AfSpeedEnum.Fast
    assert got["AfRange"] == lc.AfRangeEnum.Macro
    with open_camera("picamera2", focus_range="full"):
        pass
    assert FakePicamera2.instances[-1].set["AfRange"] == lc.AfRangeEnum.Full
    with open_camera("picamera2", autofocus=False):
        pass
    assert not {"AfMode", "AfSpeed", "AfRange"} & set(FakePicamera2.instances[-1].set)


def test_an_unknown_focus_range_is_refused_before_the_camera_opens(fake_pi):
    with pytest.raises(CameraError, match="focus_range 'macro' is not one of 'near', 'full'"):
        open_camera("picamera2", focus_range="macro")
    assert FakePicamera2.instances == []


def test_a_pi_camera_reports_its_exposure_and_focus(fake_pi):
    from hardware.camera import CameraSettings

    with open_camera("picamera2") as cam:
        got = cam.settings()
    assert got == CameraSettings(shutter_s=0.016667, gain=2.0, autofocus=True)
    assert got.advice() == []
    assert "shutter 16.7 ms, gain 2.0, autofocus" == got.describe()


def test_a_dark_entrance_and_a_fixed_lens_are_told_to_the_technician(fake_pi, monkeypatch, caplog):
    FakePicamera2.metadata.update(ExposureTime=33333, AnalogueGain=6.0, DigitalGain=1.3)
    monkeypatch.setattr(FakePicamera2, "controls", ("AeExposureMode",))   # a Module 2
    with caplog.at_level("WARNING", logger="hardware.camera"):
        with open_camera("picamera2") as cam:
            got = cam.settings()
    assert got is not None and not got.autofocus and got.gain == pytest.approx(7.8)
    advice = got.advice()
    assert len(advice) == 2
    assert "no autofocus" in advice[0] and "Module 3" in advice[0]
    assert "33 ms" in advice[1] and "gain 7.8" in advice[1] and "light" in advice[1]
    assert any("no autofocus" in r.getMessage() for r in caplog.records)


def test_a_module_3_with_autofocus_turned_off_is_fixed_focus_and_not_warned(fake_pi, caplog):
    with caplog.at_level("WARNING", logger="hardware.camera"):
        with open_camera("picamera2", autofocus=False) as cam:
            assert "AfMode" not in FakePicamera2.instances[-1].set
            got = cam.settings()
    assert got is not None and not got.autofocus
    assert not caplog.records


def test_metadata_without_an_exposure_is_no_settings(fake_pi):
    FakePicamera2.metadata.clear()
    with open_camera("picamera2") as cam:
        assert cam.settings() is None


def test_replays_and_webcams_report_no_settings(tmp_path):
    from PIL import Image

    Image.new("L", (64, 48), 128).save(tmp_path / "a.png")
    with open_camera(f"replay:{tmp_path}") as cam:
        assert cam.settings() is None


def test_a_pi_camera_sends_its_main_streams_luma_with_each_frame(fake_pi):
    """The decoder crops candidates from the main stream: the same exposure at twice the
    frame's size, its luma rows only, from the same request (released every time)."""
    from tests.fakepi import FakeRequest

    released = FakeRequest.released
    with open_camera("picamera2", width=640, height=480) as cam:
        frame = cam.read()
    assert frame.image.shape == (480, 640)
    assert frame.detail is not None and frame.detail.shape == (960, 1280)
    # Luma rows only: the ramp reaches its end on the last row (no chroma rows of 128).
    assert frame.detail[-1, 0] == 255 and frame.image[-1, 0] == 255
    assert FakeRequest.released == released + 1
    assert FakePicamera2.instances[-1].config["main"]["format"] == "YUV420"


def test_a_pi_camera_cropped_below_twice_the_frame_sends_the_frame_alone(fake_pi):
    # 3280 sensor pixels at crop 0.3 are 984 across: fewer than 2 x 640, so a main stream
    # would only be the frame upscaled.
    with open_camera("picamera2", width=640, height=480, crop=0.3) as cam:
        assert cam.read().detail is None
    with open_camera("picamera2", width=640, height=480, crop=0.5) as cam:
        assert cam.read().detail is not None
