"""The decoding benches' own logic: the photo bench's scoring, the clip generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import segno
from PIL import Image


def _photo(folder: Path, name: str, text: str, **how) -> None:
    qr = segno.make_qr(text, error="m", boost_error=False, **how)
    m = np.pad(np.array(qr.matrix, dtype=np.uint8), 4)
    img = np.kron(np.where(m > 0, 20, 230).astype(np.uint8), np.ones((5, 5), np.uint8))
    Image.fromarray(img).save(folder / f"{name}.png")
    # The blackbox sets store the expected text as UTF-8, often with a final newline.
    (folder / f"{name}.txt").write_text(text + "\n", encoding="utf-8", newline="")


def test_the_photo_bench_scores_right_text_in_every_charset(tmp_path: Path):
    from bench import photos

    sets = tmp_path / "qrcode-9"
    sets.mkdir()
    _photo(sets, "1", "Google モバイル", encoding="shift_jis", mode="byte")
    _photo(sets, "2", "Trần Thị Bích Ngọc", encoding="utf-8")
    _photo(sets, "3", "Łódź", encoding="iso-8859-2", eci=True)
    (sets / "4.txt").write_text("an expected text without its photo")
    scores = photos.run(tmp_path, None)
    for name in ("zxing", "auto", "held"):
        assert (scores[name].right, scores[name].wrong) == (3, 0), name
    assert scores["zxing"].photos == 3
    report = photos.report(scores)
    assert "held" in report and "missed" in report


def test_is_right_takes_the_text_with_or_without_the_final_newline():
    from bench.photos import is_right

    assert is_right("a\r\n", "a\r\n") and is_right("a\n", "a") and not is_right("a", "a\n")


def test_a_clip_is_the_same_every_time_and_settles():
    from bench.clipgen import make_clip

    a, b = make_clip("paper", 0, seed=5, n_frames=20), make_clip("paper", 0, seed=5, n_frames=20)
    assert all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames, strict=True))
    assert a.payload is not None and len(a.frames) == 20
    blur = a.params["motion_blur_px"]
    # Entering the view moving, then held: the motion blur falls to the hand's shake.
    assert blur[0] > 1.0 and max(blur[-5:]) < blur[0]
    empty = make_clip("no_code", 0, seed=5, n_frames=3)
    assert empty.payload is None


def test_the_autofocus_clips_see_through_a_camera_module_3():
    from bench import framegen as fg
    from bench.clipgen import make_clip

    # IMX708 behind a 4.74 mm lens: 1.4 um pixels, so a native-resolution window sees
    # focal / (distance * pixel) pixels a millimetre, a quarter more than a Module 2.
    assert abs(fg.px_per_mm(250, 640, fg.MODULE3.sensor_px / 640, fg.MODULE3) - 13.54) < 0.01
    assert abs(fg.px_per_mm(250, 640, fg.SENSOR_PX / 640) - 10.86) < 0.01
    assert fg.MODULE3.aperture_mm > fg.MODULE2.aperture_mm
    clips = [make_clip("card", i, seed=5, n_frames=2) for i in range(6)]
    assert {c.params["camera"] for c in clips if c.params["autofocus"]} == {"module3"}
    assert {c.params["camera"] for c in clips if not c.params["autofocus"]} == {"module2"}


# Frames of a few clips as the generator made them before it had an exposure option (commit
# 61f1e96, numpy 2.4 / opencv-python-headless 5.1): bright and dim, Module 2 and 3, raw and
# MJPEG.  The default profile must keep giving these pixels, or every figure measured on the
# clips before would have to be measured again.  (A numpy or OpenCV upgrade can change them
# too: then re-pin them from a checkout of that commit, with the new libraries.)
_PINNED = {
    ("card", 3): "cc7636e3877bb5139c64d20d13ad16124c1a1fa2eec2b9c94e2d4e41a7a37033",
    ("card", 0): "d38db48186cad5db1038b79dcae6c2564e198d560337b6c3771ec0053ec6b55c",
    ("card", 6): "063a09efccc7152f1bdee1cc430a4e464d234d325e697c368b7f032e192d4421",
    ("phone", 1): "d2f5eb3816d24e7d40109e3118d2c7a6a6feb66c7d4452573e6c5112ca463420",
    ("paper", 4): "f1aac760cd604580f8d55de5a4788cdffd465c6af56da8c0ccc77f63595c7797",
    ("no_code", 7): "41f60d53a4536f5eda70792bfc1da99d82ee8ff393afda16288d712579bdb1a6",
}


def _digest(clip) -> str:
    import hashlib

    return hashlib.sha256(b"".join(f.tobytes() for f in clip.frames)).hexdigest()


def test_the_default_exposure_profile_gives_the_clips_of_before():
    from bench.clipgen import make_clip

    got = {key: _digest(make_clip(*key, seed=5, n_frames=3, glare="fixed", af="libcamera"))
           for key in _PINNED}
    assert got == _PINNED
    # The lamps model changes a phone's glass and nothing else; the kiosk's autofocus set-up
    # changes the Module 3's clips and nothing else.
    lamps = {key: _digest(make_clip(*key, seed=5, n_frames=3, af="libcamera")) for key in _PINNED}
    assert {k for k in _PINNED if lamps[k] != _PINNED[k]} == {("phone", 1)}
    kiosk = {key: make_clip(*key, seed=5, n_frames=3, glare="fixed") for key in _PINNED}
    changed = {k for k, c in kiosk.items() if _digest(c) != _PINNED[k]}
    assert changed == {k for k, c in kiosk.items() if c.params["camera"] == "module3"}
    assert changed and len(changed) < len(_PINNED)
    normal = make_clip("card", 3, seed=5, n_frames=3, exposure="normal")
    assert _digest(normal) == _PINNED[("card", 3)]
    assert normal.params["shutter_ms"] == 33.33 and normal.params["dim"]


def test_an_unknown_exposure_profile_is_refused():
    import pytest

    from bench.clipgen import make_clip
    from bench.stream import main

    with pytest.raises(ValueError, match="'fast'.*normal.*short"):
        make_clip("card", 0, exposure="fast")
    with pytest.raises(SystemExit):
        main(["--exposure", "fast"])


def test_the_normal_profile_reproduces_the_models_shutter():
    from bench.clipgen import divide_exposure, scene_exposure

    for camera in ("module2", "module3"):
        shutter, _ = divide_exposure(scene_exposure(camera, False), camera, "normal")
        assert abs(shutter - 1 / 60) < 1e-9, camera
        shutter, gain = divide_exposure(scene_exposure(camera, True), camera, "normal")
        assert abs(shutter - 1 / 30) < 1e-9, camera
        # 2.5 times the noise of the bright entrance: 6.25 times its gain (shot noise).
        bright_gain = divide_exposure(scene_exposure(camera, False), camera, "normal")[1]
        assert abs(gain / bright_gain - 6.25) < 1e-9, camera


def test_the_short_profile_trades_shutter_for_gain_in_dim_light():
    from bench.clipgen import divide_exposure, make_clip, scene_exposure

    # libcamera's steps (vc4 tuning files): IMX219 normal reaches 30 ms at gain 2, short
    # stops at 10 ms and 20 ms and raises the gain first.
    assert divide_exposure(0.060, "module2", "normal") == (0.030, 2.0)
    shutter, gain = divide_exposure(0.060, "module2", "short")
    assert abs(shutter - 0.015) < 1e-12 and gain == 4.0
    for camera, darker in (("module2", 2), ("module2", 3), ("module2", 4),
                           ("module3", 2), ("module3", 4), ("module3", 8)):
        total = scene_exposure(camera, False) * darker
        normal = divide_exposure(total, camera, "normal")
        short = divide_exposure(total, camera, "short")
        assert short[0] < 0.7 * normal[0], (camera, darker)
        assert short[1] > 1.4 * normal[1], (camera, darker)
        assert abs(short[0] * short[1] - total) < 1e-12   # the same light either way
    # In the model's dim entrance (12.5 times darker) both profiles are at the 1/30 s frame
    # limit: the short profile's last step is a long shutter too.
    for camera in ("module2", "module3"):
        total = scene_exposure(camera, True)
        assert divide_exposure(total, camera, "short") == divide_exposure(total, camera, "normal")
    dim = make_clip("card", 3, seed=5, n_frames=3, exposure="short")
    assert dim.params["dim"] and _digest(dim) == _PINNED[("card", 3)]


def test_a_short_exposure_clip_is_the_same_scene_with_less_blur_and_more_noise():
    from bench.clipgen import make_clip

    normal = make_clip("phone", 0, seed=5, n_frames=6)          # bright, Module 2
    short = make_clip("phone", 0, seed=5, n_frames=6, exposure="short")
    assert short.payload == normal.payload and short.params["where_px"] == normal.params["where_px"]
    assert (normal.params["shutter_ms"], normal.params["gain"]) == (16.67, 2.0)
    assert (short.params["shutter_ms"], short.params["gain"]) == (10.0, 3.33)
    assert short.params["noise"] > normal.params["noise"]
    blur_n, blur_s = normal.params["motion_blur_px"], short.params["motion_blur_px"]
    assert blur_n[0] > 1
    assert all(abs(s - 0.6 * n) <= 0.1 for n, s in zip(blur_n, blur_s, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(normal.frames, short.frames, strict=True))


def test_the_exposure_bench_tabulates_both_profiles():
    from bench.exposure import light_table

    rows = light_table().splitlines()
    assert rows[1].split(" | ") == ["1/1", "16.7 ms x2.00", "10.0 ms x3.33", "16.7 ms x1.00",
                                    "8.3 ms x2.00"]
    dim = rows[-1].split(" | ")
    assert dim[0] == "1/12.5" and dim[1] == dim[2] and dim[3] == dim[4]


def test_a_lamp_shows_in_the_glass_where_a_mirror_puts_it():
    from bench.clipgen import Lamp, glass_normal, reflections

    focal, size = 500.0, (640, 480)
    facing = glass_normal(0.0, 0.0)
    assert np.allclose(facing, [0, 0, -1])
    # A lamp on the lens's axis behind the camera, a phone face-on in front of it: the
    # camera sees the lamp straight ahead, as big as it is at its mirror distance.
    behind = Lamp(0.0, 0.0, -1000.0, 100.0)
    (u, v, sigma), = reflections([behind], np.array([0.0, 0.0, 200.0]), facing, focal, size)
    assert (u, v) == (320.0, 240.0) and abs(sigma - focal * 100 / 1400) < 1e-9
    # Moving the phone in its own plane does not move the reflection (a far mirror image).
    (u2, v2, _), = reflections([behind], np.array([30.0, -20.0, 200.0]), facing, focal, size)
    assert (u2, v2) == (u, v)
    # Turning the mirror by a small angle turns the reflected ray of a far lamp by twice
    # that (a near one by less: its mirror image turns about the phone, not the lens).
    far = Lamp(0.0, 0.0, -1e7, 100.0)
    tilt = np.radians(2.0)
    (u3, v3, _), = reflections([far], np.array([0.0, 0.0, 200.0]),
                               glass_normal(tilt, 0.0), focal, size)
    seen = np.degrees(np.arctan2(v3 - 240.0, focal))
    assert u3 == pytest.approx(320.0) and abs(abs(seen) - 4.0) < 0.1
    # A ceiling lamp 1.5 m up and 0.5 m behind is out of view of a face-on phone, and
    # comes into view when the phone leans back (faces up, -y) far enough.
    ceiling = Lamp(0.0, -1500.0, -500.0, 150.0)
    assert reflections([ceiling], np.array([0.0, 0.0, 200.0]), facing, focal, size) == []
    back = glass_normal(np.radians(25.0), np.pi)
    assert back[1] < 0
    (_, v4, _), = reflections([ceiling], np.array([0.0, 0.0, 200.0]), back, focal, size)
    assert 0 < v4 < 240
    # A lamp behind the glass cannot shine on it.
    beyond = Lamp(0.0, -100.0, 900.0, 150.0)
    assert reflections([beyond], np.array([0.0, 0.0, 200.0]), facing, focal, size) == []


def test_the_lamps_model_lights_some_phones_and_not_others():
    from bench.clipgen import make_clip

    phones = [make_clip("phone", i, seed=5, n_frames=8) for i in range(12)]
    lit = [c.params["glare_frames"] for c in phones]
    assert 0 < sum(n > 0 for n in lit) < len(lit)
    assert all(c.params["glare"] == "lamps" for c in phones)
    card = make_clip("card", 0, seed=5, n_frames=3)
    assert card.params["glare_frames"] == 0
    with pytest.raises(ValueError, match="glare model 'mirror'.*lamps"):
        make_clip("phone", 0, seed=5, n_frames=1, glare="mirror")


def test_a_camera_can_be_forced_on_the_same_scenes():
    from bench.clipgen import make_clip

    for i in range(6):
        mix = make_clip("card", i, seed=5, n_frames=3)
        for camera in ("module3", "module2"):
            forced = make_clip("card", i, seed=5, n_frames=3, camera=camera)
            assert forced.params["camera"] == camera
            assert forced.params["autofocus"] == (camera == "module3")
            same = ("tau_s", "dim", "family", "shutter_ms", "noise", "size")
            assert {k: forced.params[k] for k in same} == {k: mix.params[k] for k in same}
            assert (forced.payload == mix.payload)
            if mix.params["camera"] == camera:
                assert _digest(forced) == _digest(mix)
            else:
                assert _digest(forced) != _digest(mix)
    with pytest.raises(ValueError, match="unknown camera 'module4'"):
        make_clip("card", 0, seed=5, n_frames=1, camera="module4")


def test_the_kiosks_autofocus_waits_near_and_reaches_a_code_sooner():
    from bench.clipgen import make_clip

    for i in range(8):
        kiosk = make_clip("phone", i, seed=5, n_frames=15, camera="module3")
        plain = make_clip("phone", i, seed=5, n_frames=15, camera="module3", af="libcamera")
        near, far = kiosk.params["defocus_radius_px"], plain.params["defocus_radius_px"]
        # Waiting at the macro range's far end (33 cm) instead of on the room (0.6-2 m),
        # with the faster loop: less out of focus in the first frames and over the clip.
        assert sum(near[:6]) < sum(far[:6]) and sum(near) < sum(far)
    with pytest.raises(ValueError, match="autofocus set-up 'fast'"):
        make_clip("card", 0, seed=5, n_frames=1, af="fast")


def test_the_kiosk_lamp_lights_cards_and_sheets_in_a_dim_entrance_and_shows_in_phones():
    from bench.clipgen import make_clip

    dim_cards = [c for c in (make_clip("card", i, seed=5, n_frames=2) for i in range(16))
                 if c.params["dim"]]
    assert dim_cards, "seed 5 has no dim card: pick another seed"
    for room in dim_cards:
        lit = make_clip("card", room.index, seed=5, n_frames=2, light="kiosk")
        # The same scene, hand and code; lit as a bright entrance is: half the shutter, the
        # bright entrance's noise.
        assert lit.params["dim_room"] and not lit.params["dim"]
        assert lit.params["shutter_ms"] == pytest.approx(room.params["shutter_ms"] / 2, abs=0.01)
        assert lit.params["noise"] < room.params["noise"]
        assert lit.payload == room.payload and lit.params["tau_s"] == room.params["tau_s"]
    # A phone's screen gives its own light: the lamp changes no exposure, only its glass.
    for i in range(8):
        room, lit = (make_clip("phone", i, seed=5, n_frames=6, light=light)
                     for light in ("room", "kiosk"))
        assert lit.params["dim"] == room.params["dim"]
        assert lit.params["shutter_ms"] == room.params["shutter_ms"]
        assert lit.params["glare_frames"] >= room.params["glare_frames"]
    with pytest.raises(ValueError, match="unknown light 'sun'.*room"):
        make_clip("card", 0, seed=5, n_frames=1, light="sun")


def test_the_kiosk_lamp_above_the_lens_misses_the_code_of_a_phone_held_face_on():
    from bench.clipgen import KIOSK_LAMP, glass_normal, reflections

    focal, size, d = 500.0, (640, 480), 200.0
    centre = np.array([0.0, 0.0, d])
    (u, v, _), = reflections([KIOSK_LAMP], centre, glass_normal(0.0, 0.0), focal, size)
    # Face-on, the lamp shows above the code, by more than half a 50 mm code at 200 mm.
    above_mm = (240 - v) / focal * d
    assert u == 320 and above_mm > 50
    # A phone that leans back to face halfway between lens and lamp shows it on its code.
    halfway = np.arctan2(-KIOSK_LAMP.y, d - KIOSK_LAMP.z) / 2
    (u, v, _), = reflections([KIOSK_LAMP], centre, glass_normal(halfway, np.pi), focal, size)
    assert abs(v - 240) < 1 and abs(u - 320) < 1e-6


def test_the_clip_score_puts_an_empty_view_between_two_clips():
    """A decoder that reads what it saw two frames ago (as ``stack`` can) must not have one
    clip's code counted as a wrong read of the next: a code is not handed from one person to
    the next between two frames; the view is empty for a moment, as in the live bench."""
    from bench.clipgen import Clip
    from bench.stream import score

    def frames(tag: int) -> list[np.ndarray]:
        out = []
        for _ in range(4):
            frame = np.full((8, 8), 128, np.uint8)
            frame[0, 0] = tag
            out.append(frame)
        return out

    codes = {10: b"A", 20: b"B"}
    seen: list[int] = []

    def late(frame: np.ndarray, main: np.ndarray | None) -> list[bytes]:
        seen.append(int(frame[0, 0]))
        back = seen[-3] if len(seen) >= 3 else None
        return [codes[back]] if back in codes else []

    scores = score({"late": late}, [Clip("card", 0, frames(10), b"A"),
                                    Clip("card", 1, frames(20), b"B")])
    assert scores["late"]["ALL"].wrong == 0
    assert scores["late"]["ALL"].within == 2
    assert len(scores["late"]["ALL"].cpu_ms) == 8  # the empty frames are not scored


def test_a_clip_with_the_cameras_main_stream_is_the_same_scene_at_twice_the_pixels():
    import cv2

    from bench.clipgen import make_clip

    one = make_clip("paper", 5, seed=3, n_frames=4, camera="module3")
    two = make_clip("paper", 5, seed=3, n_frames=4, camera="module3", detail=2)
    assert one.params["size"] == (640, 480) and one.detail is None
    assert two.params["where_px"] == one.params["where_px"]      # the same hand, the same code
    assert two.params["detail"] == 2 and len(two.detail) == 4
    for frame, main in zip(two.frames, two.detail, strict=True):
        assert main.shape == (960, 1280)
        # The frame is the main stream's area average (to a grey level: both are rounded).
        small = cv2.resize(main.astype(np.float32), (640, 480), interpolation=cv2.INTER_AREA)
        assert np.abs(small - frame).max() <= 1.0
    # A webcam sends one stream; a card through the native window has no finer pixels.
    webcam = make_clip("paper", 33, seed=3, n_frames=2, camera="module3", detail=2)
    card = make_clip("card", 0, seed=3, n_frames=2, camera="module3", detail=2)
    assert webcam.params["size"] == (1280, 720) and webcam.detail is None
    assert card.detail is None and card.params["detail"] == 1
    with pytest.raises(ValueError, match="detail must be 1 or more"):
        make_clip("paper", 5, seed=3, n_frames=1, detail=0)


def test_the_pixel_bench_compares_renders_of_one_clip(capsys):
    from bench import pixels

    assert pixels.main(["--clips", "paper:5", "--frame", "2", "--details", "2,1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[0] == "paper:5"
    # The finest render against itself: no difference; the point samples differ from it.
    cells = out[1].split()[2:]
    assert float(cells[0]) == 0.0 and float(cells[2]) > 0.0
    with pytest.raises(SystemExit, match="no main stream"):
        pixels.main(["--clips", "card:0", "--frame", "1", "--details", "2,1"])


def test_the_exposure_bench_scores_clips_with_both_decoders(monkeypatch, tmp_path):
    import bench.stream
    from bench.exposure import firsts

    monkeypatch.setattr(bench.stream, "CACHE", tmp_path)
    params, stream, plain = firsts(2, 1, "normal")
    assert len(params) == len(stream) == len(plain) == 3     # card, phone, sheet
    # Each is a first frame or None (never read), and the stream decoder reads whatever
    # plain zxing-cpp reads, no later.
    assert all(p is None or s is not None and s <= p for s, p in zip(stream, plain, strict=True))
