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
    pip = f"+ {REPO}/.venv/bin/python -m pip install -q -e {REPO}[test,v4l2,systemd,central]"
    assert pip in proc.stdout


def test_the_appliance_installs_no_extra_so_no_central_server():
    """Flask and waitress are the central's extra: a kiosk installs the plain package."""
    lines = [line.strip() for line in INSTALL.read_text(encoding="utf-8").splitlines()
             if "pip install" in line and "--upgrade" in line and "$here" in line]
    assert lines == ['run "$venv/bin/python" -m pip install -q --upgrade "$here"']


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


# ---- what apt will do, said before it does it (issue 9: libsystemd-dev upgraded PID 1) ----

APT_DATA = REPO / "tests" / "data" / "apt"


def sourced(script: str, stdin: str = "") -> subprocess.CompletedProcess:
    """Run ``script`` in bash after sourcing install.sh (which then only defines functions)."""
    return subprocess.run(["bash", "-c", f'source "{INSTALL}" && {script}'], cwd=REPO,
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_the_plan_names_every_upgrade_and_systemd_loudly():
    sim = (APT_DATA / "libsystemd-dev-upgrades-systemd.txt").read_text()
    proc = sourced("apt_plan", sim)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("install.sh: apt will install 1 new package(s): "
                        "libsystemd-dev 252.39-1~deb12u2")
    assert lines[1] == (
        "install.sh: apt will UPGRADE 4 installed package(s): "
        "systemd-sysv 252.38-1~deb12u1 -> 252.39-1~deb12u2, "
        "systemd 252.38-1~deb12u1 -> 252.39-1~deb12u2, "
        "libsystemd-shared 252.38-1~deb12u1 -> 252.39-1~deb12u2, "
        "libsystemd0 252.38-1~deb12u1 -> 252.39-1~deb12u2")
    assert lines[2].startswith("install.sh: WARNING: this upgrades systemd, the running init "
                               "(PID 1): systemd-sysv, systemd, libsystemd-shared, libsystemd0;")


def test_a_plan_that_removes_packages_is_refused():
    sim = ("Remv systemd-timesyncd [252.39-1~deb12u2]\n"
           "Inst systemd [252.39-1~deb12u2] (252.38-1~deb12u1 Debian-Security:12/oldstable-"
           "security [amd64]) []\n")
    proc = sourced("apt_plan", sim)
    assert proc.returncode == 1
    assert "apt would REMOVE systemd-timesyncd; not done as a side effect" in proc.stderr


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="not a Debian system")
def test_the_plan_reads_a_live_apt_simulation():
    sim = subprocess.run(["apt-get", "-s", "install", "--no-install-recommends", "sl"],
                         capture_output=True, text=True,
                         env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    if sim.returncode != 0 or "Inst sl " not in sim.stdout:
        pytest.skip("the package lists here do not offer 'sl' as a new package")
    proc = sourced("apt_plan", sim.stdout)
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"install.sh: apt will install {_new_count(sim.stdout)} "
                                  "new package(s): ")
    assert "sl " in proc.stdout.split(": ", 1)[1].split("\n")[0]


def _new_count(simulation: str) -> int:
    """How many packages apt's simulation installs new: 1 (sl) on most systems, more in a
    minimal root that lacks sl's libraries (a debootstrap minbase has no libncurses6)."""
    return sum(1 for line in simulation.splitlines()
               if line.startswith("Inst ") and "[" not in line.split("(", 1)[0])


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")
def test_libsystemd_dev_is_asked_for_at_the_installed_libsystemd0_version():
    have = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", "libsystemd0"],
                          capture_output=True, text=True).stdout
    if not have.startswith("install ok installed "):
        pytest.skip("libsystemd0 is not installed here")
    version = have.rsplit(" ", 1)[1]
    offered = subprocess.run(["apt-cache", "show", f"libsystemd-dev={version}"],
                             capture_output=True).returncode == 0
    proc = sourced("match_installed_runtime python3-dev libsystemd-dev gcc")
    assert proc.returncode == 0, proc.stderr
    pinned = f"libsystemd-dev={version}" if offered else "libsystemd-dev"
    assert proc.stdout.splitlines() == ["python3-dev", pinned, "gcc"]


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="not a Debian system")
def test_a_dry_run_says_what_apt_will_do_before_the_install_line():
    proc = sourced("dry_run=1; apt_install sl")
    if "apt will install" not in proc.stdout:
        pytest.skip("'sl' is installed here or not in the package lists")
    lines = proc.stdout.splitlines()
    sim = subprocess.run(["apt-get", "-s", "install", "--no-install-recommends", "sl"],
                         capture_output=True, text=True,
                         env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"}).stdout
    assert lines[0].endswith("apt-get update -qq")
    assert lines[1] == "install.sh: installing system packages: sl"
    assert lines[2].startswith(f"install.sh: apt will install {_new_count(sim)} "
                               "new package(s): ")
    assert "sl " in lines[2]
    assert lines[3].endswith("apt-get install -y -qq --no-install-recommends sl")
