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
