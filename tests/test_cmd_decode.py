"""``checkpoint-kiosk decode``: one exact JSON line per image, errors as lines, exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosk.cli import cli

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "qr"
CCCD = ("001085012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|"
        "Số 8 Ngõ 12, Phường Láng Hạ, Quận Đống Đa, Hà Nội|10052021")


def test_subprocess_prints_one_json_line_per_image_and_fails_on_a_bad_file(tmp_path: Path):
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("L", (64, 48), 200).save(blank)
    files = [str(DATA / "cccd.png"), str(DATA / "not_an_image.png"), str(blank)]
    out = subprocess.run([sys.executable, "-m", "kiosk", "decode", *files], cwd=REPO,
                         capture_output=True, timeout=60)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.decode("utf-8").splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert list(first) == ["file", "codes", "ms"]
    assert first["file"] == files[0]
    assert first["codes"] == [{"text": CCCD, "format": "QR_CODE",
                               "position": first["codes"][0]["position"]}]
    assert len(first["codes"][0]["position"]) == 4
    assert all(len(p) == 2 and all(isinstance(v, int) for v in p)
               for p in first["codes"][0]["position"])
    assert isinstance(first["ms"], float | int) and first["ms"] >= 0
    # ensure_ascii=False: the Vietnamese name is printed as UTF-8, not \u escapes.
    assert "Trần Thị Bích Ngọc".encode() in out.stdout
    assert set(second) == {"file", "error"} and "not an image" in second["error"]
    assert third["codes"] == []


@pytest.mark.parametrize("backend", ["auto", "zxing", "pyzbar"])
def test_json_flag_and_backends_give_the_same_text(backend: str):
    result = CliRunner().invoke(cli, ["decode", "--json", "--backend", backend,
                                      str(DATA / "short_vi.png")])
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    assert [c["text"] for c in json.loads(line)["codes"]] == ["Lê Hạnh"]


def test_all_good_files_exit_zero():
    result = CliRunner().invoke(cli, ["decode", str(DATA / "cccd_photo.jpg")])
    assert result.exit_code == 0, result.output


def test_unknown_backend_is_a_usage_error():
    result = CliRunner().invoke(cli, ["decode", "--backend", "zbar", str(DATA / "cccd.png")])
    assert result.exit_code == 2
    assert "zbar" in result.output


def test_no_image_is_a_usage_error():
    result = CliRunner().invoke(cli, ["decode"])
    assert result.exit_code == 2


def test_missing_libzbar_is_one_clear_line(tmp_path: Path):
    # A Python that cannot find libzbar: find_library patched before anything loads it.
    script = ("import ctypes.util, sys; ctypes.util.find_library = lambda name: None; "
              "from kiosk.cli import main; main(sys.argv[1:])")
    out = subprocess.run([sys.executable, "-c", script, "decode", "--backend", "pyzbar",
                          str(DATA / "cccd.png")], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "apt-get install libzbar0" in out.stderr
    assert "Traceback" not in out.stderr


def _stream_frames(tmp_path: Path) -> list[str]:
    """Blank, code, code, blank, code: a code shown, taken away, shown again."""
    import numpy as np
    from PIL import Image

    from hardware.images import qr_image

    code = qr_image("Lê Hạnh", module_px=5)
    canvas = Image.new("L", (320, 240), 190)
    with_code = canvas.copy()
    with_code.paste(code, (40, 20))
    files = []
    for i, image in enumerate((canvas, with_code, with_code, canvas, with_code)):
        path = tmp_path / f"{i:03d}.png"
        Image.fromarray(np.asarray(image)).save(path)
        files.append(str(path))
    return files


def test_stream_prints_one_line_a_frame_with_the_codes_the_kiosk_acts_on(tmp_path: Path):
    files = _stream_frames(tmp_path)
    result = CliRunner().invoke(cli, ["decode", "--stream", "--json", *files])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [list(line) for line in lines] == [["frame", "file", "codes", "ms"]] * 5
    assert [line["frame"] for line in lines] == [0, 1, 2, 3, 4]
    assert [line["file"] for line in lines] == files
    # Acted on once: the same code again within 3 s (at 30 fps) is the same scan.
    assert [[c["text"] for c in line["codes"]] for line in lines] == [[], ["Lê Hạnh"], [], [], []]
    assert all(line["ms"] >= 0 for line in lines)
    every = CliRunner().invoke(cli, ["decode", "--stream", "--dedupe", "0", *files])
    texts = [[c["text"] for c in json.loads(line)["codes"]] for line in every.output.splitlines()]
    assert texts == [[], ["Lê Hạnh"], ["Lê Hạnh"], [], ["Lê Hạnh"]]


def test_stream_reads_a_video_file_frame_by_frame(tmp_path: Path):
    cv2 = pytest.importorskip("cv2")
    import numpy as np

    files = _stream_frames(tmp_path)
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240),
                             False)
    for f in files:
        writer.write(np.asarray(cv2.imread(f, cv2.IMREAD_GRAYSCALE)))
    writer.release()
    result = CliRunner().invoke(cli, ["decode", "--stream", "--dedupe", "0", str(video)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [(line["frame"], line["file"]) for line in lines] == [(i, str(video)) for i in range(5)]
    assert [bool(line["codes"]) for line in lines] == [False, True, True, False, True]


def test_stream_reports_a_bad_frame_and_goes_on(tmp_path: Path):
    files = _stream_frames(tmp_path)
    files.insert(2, str(DATA / "not_an_image.png"))
    result = CliRunner().invoke(cli, ["decode", "--stream", *files])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert set(lines[2]) == {"frame", "file", "error"} and lines[2]["frame"] == 2
    assert len(lines) == 6
