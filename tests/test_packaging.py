"""The package works from a built wheel, not only from the checkout."""

import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from kiosk.testing.samples import write_sequence

REPO = Path(__file__).resolve().parents[1]


def clean_source(dest: Path) -> Path:
    """The checkout's files as git sees them (tracked and new, never ignored), without the
    checkout's own build/ folder: setuptools never deletes from it, so a module moved or
    removed since the last build would otherwise still ship."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], check=True, capture_output=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    source = clean_source(tmp_path_factory.mktemp("source"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(source)],
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
    # Test-signing keys and the demo's samples never reach a kiosk.
    assert not [n for n in names if n.startswith("kiosk/testing/")]


def test_installed_package_runs_away_from_the_checkout(installed, tmp_path):
    _, site = installed
    probe = run_installed(site, "-c", "import kiosk, images; print(kiosk.__file__)", cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.startswith(str(site))
    version = run_installed(site, "-m", "kiosk", "--version", cwd=tmp_path)
    assert version.returncode == 0 and "0." in version.stdout
    # The whole kiosk with its screen, from the installed files only, on frames the
    # checkout's samples drew (the wheel has none).
    write_sequence(tmp_path / "frames", code_frames=3, gap_frames=3)
    config = tmp_path / "kiosk.toml"
    config.write_text('[policy]\nprofile = "hospital"\nwatchlist = false\n'
                      '[signals]\npin_factory = "mock"\n[ui]\nwidth = 800\nheight = 480\n',
                      encoding="utf-8")
    kiosk = run_installed(site, "-m", "kiosk", "run", "--config", str(config), "--windowed",
                          "--camera", f"replay:{tmp_path / 'frames'}", "--db",
                          str(tmp_path / "k.db"), cwd=tmp_path)
    assert kiosk.returncode == 0, kiosk.stderr
    assert "Traceback" not in kiosk.stderr
    with sqlite3.connect(tmp_path / "k.db") as conn:
        assert conn.execute("select count(*) from checkins").fetchone()[0] == 4


# A kiosk has the wheel only; this test's interpreter also has the checkout's editable
# install, whose import hook would find kiosk.testing in the checkout: drop that hook.
WHEEL_ONLY = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in f.__module__]
from kiosk.cli import main
main(sys.argv[1:])
"""


def test_the_demo_from_an_installed_wheel_says_it_runs_from_a_checkout(installed, tmp_path):
    _, site = installed
    demo = run_installed(site, "-c", WHEEL_ONLY, "demo", "--data-dir", str(tmp_path / "d"),
                         "--max-seconds", "4", cwd=tmp_path)
    assert demo.returncode == 1
    assert demo.stderr.strip() == (
        "checkpoint-kiosk: error: checkpoint-kiosk demo needs the demo samples (kiosk.testing), "
        "which are not installed on a kiosk: run it from a checkout of checkpoint-kiosk after "
        "systemd/install.sh --dev")
