"""The package works from a built wheel, not only from the checkout."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(REPO)],
        check=True, capture_output=True, text=True)
    [wheel] = out.glob("checkpoint_kiosk-*.whl")
    site = out / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, text=True)
    return wheel, site


def run_installed(site, *args, cwd):
    env = {**os.environ, "PYTHONPATH": str(site), "SDL_VIDEODRIVER": "dummy",
           "SDL_AUDIODRIVER": "dummy"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_wheel_carries_the_artwork_font_and_catalogues(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("images/fonts/NotoSans-Regular.ttf", "images/icon-pass.png",
                   "kiosk/locale/vi/LC_MESSAGES/checkpoint-kiosk.mo"):
        assert needed in names
    assert [n for n in names if n.endswith(".po")] == []  # translators' sources stay in git
    entry = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "checkpoint-kiosk = kiosk.cli:main" in entry


def test_installed_package_runs_away_from_the_checkout(installed, tmp_path):
    _, site = installed
    probe = run_installed(site, "-c", "import kiosk, images; print(kiosk.__file__)", cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(site))
    version = run_installed(site, "-m", "kiosk", "--version", cwd=tmp_path)
    assert version.returncode == 0 and "0." in version.stdout
    # The whole kiosk with its screen, from the installed files only.
    demo = run_installed(site, "-m", "kiosk", "demo", "--data-dir", str(tmp_path / "d"),
                         "--max-seconds", "4", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
