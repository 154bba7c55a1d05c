"""The unit files, linted by systemd's own tools (no running systemd needed)."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SYSTEMD = REPO / "systemd"
EXEC = "/opt/checkpoint-kiosk/venv/bin/checkpoint-kiosk"
UNITS = ["checkpoint-kiosk.service", "checkpoint-kiosk-provision.service",
         "checkpoint-kiosk-provision.path"]

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed")


@pytest.fixture(scope="module")
def units(tmp_path_factory) -> Path:
    """The units with ExecStart= pointing at an executable that exists here (verify checks)."""
    folder = tmp_path_factory.mktemp("units")
    exe = folder / "checkpoint-kiosk"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    for name in UNITS:
        (folder / name).write_text((SYSTEMD / name).read_text().replace(EXEC, str(exe)))
    return folder


def directives(name: str) -> dict[str, list[str]]:
    """KEY -> values (repeated keys kept) of every section merged."""
    out: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


@needs_analyze
def test_systemd_analyze_verify_is_clean(units):
    proc = subprocess.run(["systemd-analyze", "verify", *UNITS], cwd=units,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@needs_analyze
@pytest.mark.parametrize(("unit", "threshold"), [("checkpoint-kiosk.service", 20),
                                                 ("checkpoint-kiosk-provision.service", 30)])
def test_security_exposure_is_low(units, unit, threshold):
    # --threshold is exposure x 10: 20 = "2.0 OK"; above it the command fails.
    proc = subprocess.run(["systemd-analyze", "security", "--offline=true",
                           f"--threshold={threshold}", "--no-pager", unit],
                          cwd=units, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-400:] + proc.stderr
    assert "Overall exposure level" in proc.stdout


def test_kiosk_unit_is_notify_with_watchdog_restart_and_a_reboot_budget():
    d = directives("checkpoint-kiosk.service")
    assert d["Type"] == ["notify"] and d["NotifyAccess"] == ["main"]
    assert d["WatchdogSec"] == ["30"] and d["Restart"] == ["always"]
    assert d["StartLimitBurst"] == ["5"] and d["StartLimitAction"] == ["reboot"]
    # Comes up with no network and no NTP.
    after = " ".join(d["After"] + d.get("Wants", []) + d.get("Requires", []))
    assert "time-set.target" in after
    assert "network" not in after and "time-sync" not in after
    assert d["User"] == ["kiosk"]
    assert set(d["SupplementaryGroups"][0].split()) == {"video", "render", "input", "gpio"}


def test_hardening_does_not_hide_camera_gpio_or_display():
    d = directives("checkpoint-kiosk.service")
    assert "PrivateDevices" not in d
    allowed = " ".join(d["DeviceAllow"])
    for device in ("char-drm", "char-video4linux", "char-media", "char-gpiochip", "char-input",
                   "/dev/dma_heap"):
        assert device in allowed
    assert d["DevicePolicy"] == ["closed"] and d["ProtectSystem"] == ["strict"]


def test_every_directive_has_a_reason_just_above_it():
    """Each directive is at most five directive lines below a comment in its section."""
    for name in UNITS:
        since_comment = None
        for number, line in enumerate((SYSTEMD / name).read_text().splitlines(), 1):
            if line.startswith("#"):
                since_comment = 0
            elif line.startswith("["):
                since_comment = None
            elif line.strip() and not line.startswith(" "):
                assert since_comment is not None and since_comment < 5, (
                    f"{name}:{number}: {line!r} has no comment saying why just above it")
                since_comment += 1


def test_journald_cap_and_hardware_watchdog_drop_ins_parse():
    journald = configparser.ConfigParser()
    journald.read(SYSTEMD / "journald.conf.d" / "checkpoint-kiosk.conf")
    assert journald["Journal"]["SystemMaxUse"] == "64M"
    system = configparser.ConfigParser()
    system.read(SYSTEMD / "system.conf.d" / "checkpoint-kiosk-hardware-watchdog.conf")
    # The BCM2835 watchdog cannot be set above ~15 s.
    assert int(system["Manager"]["RuntimeWatchdogSec"].rstrip("s")) <= 15
