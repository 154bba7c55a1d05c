"""The decoding benches' own logic: the photo bench's scoring, the clip generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
