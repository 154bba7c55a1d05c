"""systemd/install.sh as far as this machine allows: shellcheck, dry runs, and the appliance
mode into a scratch root (files only; apt, useradd and systemctl are printed, not run)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "systemd" / "install.sh"


def sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(INSTALL), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean():
    proc = subprocess.run(["shellcheck", str(INSTALL)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_dev_dry_run_still_makes_the_readme_venv():
    proc = sh("--dev", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"+ {REPO}/.venv/bin/python -m pip install -q -e {REPO}[test,v4l2,systemd]" in \
        proc.stdout


def test_usage_errors():
    assert sh().returncode == 2
    assert "unknown option '--bogus'" in sh("--bogus").stderr


@pytest.fixture
def pi_root(tmp_path):
    """A scratch root that looks like a fresh Pi: just the boot partition's cmdline.txt."""
    root = tmp_path / "root"
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootfstype=ext4 rootwait\n")
    return root


def test_appliance_install_then_rerun_changes_nothing(pi_root):
    first = sh("--appliance", "--root", str(pi_root))
    assert first.returncode == 0, first.stderr
    files = tree(pi_root)
    for path in ("etc/systemd/system/checkpoint-kiosk.service",
                 "etc/systemd/system/checkpoint-kiosk-provision.service",
                 "etc/systemd/journald.conf.d/checkpoint-kiosk.conf",
                 "etc/udev/rules.d/99-checkpoint-kiosk-usb.rules",
                 "etc/checkpoint-kiosk/kiosk.toml", "opt/checkpoint-kiosk/docs/appliance.md"):
        assert path in files, path
    assert "etc/systemd/system.conf.d/checkpoint-kiosk-hardware-watchdog.conf" not in files
    cmdline = (pi_root / "boot/firmware/cmdline.txt").read_text()
    assert cmdline.count("consoleblank=0") == 1 and cmdline.count("\n") == 1
    assert "systemctl enable checkpoint-kiosk.service" in first.stdout
    assert "python3 -m venv --system-site-packages /opt/checkpoint-kiosk/venv" in first.stdout

    second = sh("--appliance", "--root", str(pi_root))
    assert second.returncode == 0, second.stderr
    assert "nothing changed" in second.stdout
    assert "systemctl" not in second.stdout
    assert tree(pi_root) == files


def test_upgrade_keeps_config_and_data_and_updates_units(pi_root):
    assert sh("--appliance", "--root", str(pi_root)).returncode == 0
    config = pi_root / "etc/checkpoint-kiosk/kiosk.toml"
    config.write_text('[device]\ncheckpoint_id = "LS-1"\n')
    token = pi_root / "etc/checkpoint-kiosk/device-token"
    token.write_text("dev-secret\n")
    data = pi_root / "var/lib/checkpoint-kiosk/checkins.db"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"SQLite format 3\0...")
    unit = pi_root / "etc/systemd/system/checkpoint-kiosk.service"
    unit.write_text(unit.read_text().replace("WatchdogSec=30", "WatchdogSec=99"))  # old version
    kept = {p: p.read_bytes() for p in (config, token, data)}

    upgrade = sh("--appliance", "--root", str(pi_root), "--hardware-watchdog")
    assert upgrade.returncode == 0, upgrade.stderr
    assert {p: p.read_bytes() for p in kept} == kept
    assert "WatchdogSec=30" in unit.read_text()
    assert "checkpoint-kiosk.service updated" in upgrade.stdout
    assert (pi_root / "etc/systemd/system.conf.d/checkpoint-kiosk-hardware-watchdog.conf").exists()
    assert "systemctl restart checkpoint-kiosk.service" in upgrade.stdout


def test_appliance_dry_run_writes_nothing(pi_root):
    before = tree(pi_root)
    proc = sh("--appliance", "--root", str(pi_root), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "+ install -D -m 0644" in proc.stdout
    assert tree(pi_root) == before
