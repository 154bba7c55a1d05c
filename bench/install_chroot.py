"""Prove systemd/install.sh --appliance on a real Debian 12 root (debootstrap + chroot).

    sudo python3 -m bench.install_chroot [--root DIR] [--cache DIR] [--mirror URL]
                                         [--report FILE] [--keep]

What it builds is Debian 12 bookworm for THIS machine's architecture (amd64 here), not
arm64 Raspberry Pi OS: the Pi-only packages (python3-picamera2, python3-libcamera,
raspi-config) do not exist in Debian's archive, and install.sh detects that with
``apt-cache show`` and skips them.  Debian's python3-gpiozero is 1.6 (Raspberry Pi OS has
2.x), so on Debian pip installs gpiozero 2.x into the venv; pygame and numpy come from
Debian as they do on the Pi.

Steps: debootstrap (minbase + systemd-sysv + udev, from a cached --make-tarball), a
Pi-like boot partition file, a clean ``git archive`` of the checkout (uncommitted changes
to tracked files included, via ``git stash create``), /proc, /sys and /dev mounted, then
inside the chroot with an empty environment: install, checks, a second install that must
change nothing (manifest of hashes, modes, owners, mtimes), provisioning-like state written
as the kiosk user, an upgrade with a bumped version that must keep
/etc/checkpoint-kiosk/* and /var/lib/checkpoint-kiosk/* byte for byte (and owners), and one
more run that must change nothing.  Mounts are undone on every exit path.  Exit 0 when
every check passed; the report (JSON) lists each check and the timings.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = "bookworm"
# minbase has no init; a Pi OS Lite image has systemd as PID 1 and udev.  python3 is left
# out on purpose so that install.sh has to bring everything it needs itself.
VARIANT = "minbase"
INCLUDE = ("systemd-sysv", "udev")
DEFAULT_ROOT = Path("/var/tmp/checkpoint-kiosk-chroot/root")
DEFAULT_CACHE = Path("/var/tmp/checkpoint-kiosk-cache")
SRC = "/home/pi/checkpoint-kiosk"
HOST_CA = "/root/host-ca-certificates.crt"  # where a technician would have cloned the repo
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}
UNITS = ("checkpoint-kiosk.service", "checkpoint-kiosk-provision.service",
         "checkpoint-kiosk-provision.path")
KIOSK_GROUPS = {"kiosk", "video", "render", "input", "gpio"}
# What install.sh installs or owns: compared before and after each re-run.
INSTALLED = ("opt/checkpoint-kiosk", "etc/checkpoint-kiosk", "etc/systemd/system",
             "etc/systemd/journald.conf.d", "etc/udev/rules.d", "boot/firmware/cmdline.txt",
             "var/lib/checkpoint-kiosk", "etc/passwd", "etc/group", "etc/shadow",
             "etc/gshadow")
KEPT = ("etc/checkpoint-kiosk", "var/lib/checkpoint-kiosk")
PI_CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootfstype=ext4 rootwait\n"


CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


class ChrootError(RuntimeError):
    """The harness itself could not do a step (not a finding about install.sh)."""


@dataclass
class Report:
    checks: list[dict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: object = "") -> bool:
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        shown = str(detail) if not ok else str(detail)[:200]
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {shown}" if shown else ""),
              flush=True)
        return bool(ok)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c["ok"] for c in self.checks)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checks": self.checks, "timings": self.timings,
                "facts": self.facts}


# ---- host side ---------------------------------------------------------------------------

def detect_mirror() -> str:
    """The Debian mirror this machine's apt uses for bookworm main (deb822 or one-line)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if SUITE in fields.get("Suites", "").split() and \
                        "main" in fields.get("Components", "").split():
                    return fields["URIs"].split()[0]
        else:
            for line in text.splitlines():
                m = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s+.*\bmain\b", line)
                if m:
                    return m.group(1)
    raise ChrootError("no 'bookworm main' entry in /etc/apt/sources.list*; pass --mirror URL")


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run(cmd, **kw)


def debian_arch() -> str:
    return sh(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()


def tarball_path(cache: Path, arch: str) -> Path:
    return cache / f"debootstrap-{SUITE}-{arch}-{VARIANT}-{'+'.join(INCLUDE)}.tgz"


def bootstrap(root: Path, cache: Path, mirror: str, report: Report) -> None:
    """A fresh root from the cached tarball (made once with --make-tarball)."""
    arch = debian_arch()
    report.facts["arch"] = arch
    report.facts["mirror"] = mirror
    opts = [f"--arch={arch}", f"--variant={VARIANT}", f"--include={','.join(INCLUDE)}"]
    tarball = tarball_path(cache, arch)
    if not tarball.exists():
        cache.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            part = tarball.with_suffix(".part.tgz")
            sh(["debootstrap", *opts, f"--make-tarball={part}", SUITE, scratch, mirror])
            part.rename(tarball)
        report.timings["debootstrap_make_tarball_s"] = round(time.monotonic() - t, 1)
    if root.exists():
        assert_unmounted(root)
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    sh(["debootstrap", *opts, f"--unpack-tarball={tarball}", SUITE, str(root), mirror],
       stdout=subprocess.DEVNULL)
    report.timings["debootstrap_unpack_s"] = round(time.monotonic() - t, 1)


def make_pi_like(root: Path) -> None:
    """What a fresh Raspberry Pi OS Lite has and a Debian chroot lacks, for the test only."""
    boot = root / "boot/firmware"
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "cmdline.txt").write_text(PI_CMDLINE)
    # No daemons started by package scripts inside the chroot (they would hold the mounts).
    # Images ship without package lists (debootstrap leaves its own): install.sh must
    # refresh them before it can tell which Pi-only packages the archive has.
    for lst in (root / "var/lib/apt/lists").glob("*_*"):
        lst.unlink()
    rc = root / "usr/sbin/policy-rc.d"
    rc.write_text("#!/bin/sh\n# checkpoint-kiosk chroot test: start no service\nexit 101\n")
    rc.chmod(0o755)
    # This machine reaches PyPI through a TLS proxy whose CA only the host's bundle has;
    # pip inside the chroot is given that bundle (PIP_CERT), the chroot's own is untouched.
    host_ca = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    if Path(host_ca).is_file():
        shutil.copyfile(host_ca, root / HOST_CA.lstrip("/"))
    if not (root / "etc/resolv.conf").exists():
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")


def copy_source(root: Path, repo: Path) -> str:
    """A clean git archive of the checkout; tracked but uncommitted changes are included."""
    rev = sh(["git", "stash", "create"], cwd=repo, capture_output=True, text=True).stdout.strip()
    rev = rev or "HEAD"
    dest = root / SRC.lstrip("/")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    archive = sh(["git", "archive", "--format=tar", rev], cwd=repo, capture_output=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(dest, filter="tar")
    return sh(["git", "rev-parse", "--short", rev], cwd=repo, capture_output=True,
              text=True).stdout.strip()


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


def assert_unmounted(root: Path) -> None:
    left = mounts_under(root)
    if left:
        raise ChrootError(f"{root} still has mounts {left!r}; umount them (umount -R) first")


def processes_in(root: Path) -> list[int]:
    """Processes whose root directory is the chroot: only ones this harness started."""
    found = []
    real = str(root.resolve())
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "root") == real:
                    found.append(int(entry.name))
    return found


def release(root: Path) -> None:
    """End what runs in the chroot, then unmount everything under it, deepest first.

    Also catches debootstrap's own /proc and /sys mounts when it was interrupted.
    """
    for pid in processes_in(root):
        print(f"install_chroot: ending leftover process {pid} in the chroot", flush=True)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # A killed process lets go of its mounts only once it is gone.
    deadline = time.monotonic() + 10
    while processes_in(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    for target in sorted(mounts_under(root), key=len, reverse=True):
        if subprocess.run(["umount", target]).returncode != 0:
            subprocess.run(["umount", "-l", target])


@contextlib.contextmanager
def mounted(root: Path, cache: Path) -> Iterator[None]:
    """/proc, /sys, /dev (+pts) and the apt/pip caches; undone whatever happens."""

    def mount(args: list[str], target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        sh(["mount", *args, str(target)])

    apt_cache = cache / "apt-archives"
    pip_cache = cache / "pip"
    (apt_cache / "partial").mkdir(parents=True, exist_ok=True)
    pip_cache.mkdir(parents=True, exist_ok=True)
    try:
        mount(["-t", "proc", "proc"], root / "proc")
        mount(["-t", "sysfs", "-o", "ro", "sysfs"], root / "sys")
        mount(["--bind", "/dev"], root / "dev")
        mount(["-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts"], root / "dev/pts")
        # Reruns download no .deb or wheel twice; neither path is in the manifest.
        mount(["--bind", str(apt_cache)], root / "var/cache/apt/archives")
        mount(["--bind", str(pip_cache)], root / "root/.cache/pip")
        yield
    finally:
        release(root)


def in_chroot(root: Path, *cmd: str, user: str | None = None, env: dict | None = None,
              timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run cmd inside the chroot with an empty environment (as a fresh login would)."""
    full_env = {**CHROOT_ENV, **(env or {})}
    prefix = [CHROOT, str(root)]
    if user:
        prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]
    argv = [*prefix, "env", "-i", *(f"{k}={v}" for k, v in full_env.items()), *cmd]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={})


def install(root: Path, report: Report, label: str, log_dir: Path,
            *extra: str) -> subprocess.CompletedProcess:
    t = time.monotonic()
    # From the checkout, as docs/appliance.md says (the current directory matters to Python).
    env = {"PIP_CERT": HOST_CA} if (root / HOST_CA.lstrip("/")).is_file() else {}
    command = " ".join(("exec bash systemd/install.sh --appliance", *extra))
    proc = in_chroot(root, "sh", "-c", f"cd {SRC} && {command}", env=env)
    report.timings[f"install_{label}_s"] = round(time.monotonic() - t, 1)
    (log_dir / f"install-{label}.log").write_text(
        f"$ {command}  (exit {proc.returncode})\n{proc.stdout}\n"
        f"--- stderr\n{proc.stderr}")
    report.check(f"{label}: install.sh --appliance exits 0", proc.returncode == 0,
                 "" if proc.returncode == 0 else (proc.stderr or proc.stdout)[-2000:])
    return proc


def manifest(root: Path, paths: tuple[str, ...]) -> dict[str, tuple]:
    """path -> (type, mode, uid, gid, mtime_ns, sha256 or link target) for every entry."""
    out: dict[str, tuple] = {}
    for rel in paths:
        top = root / rel
        if not top.exists() and not top.is_symlink():
            continue
        entries = [top] if not top.is_dir() or top.is_symlink() else [top, *top.rglob("*")]
        for p in entries:
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                what: object = ("link", os.readlink(p))
            elif stat.S_ISREG(st.st_mode):
                what = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            else:
                what = ("dir", "")
            # Directory mtimes are left out: listing a directory never changes them, but
            # Python writing a __pycache__ would; files keep theirs.
            mtime = 0 if stat.S_ISDIR(st.st_mode) else st.st_mtime_ns
            out[str(p.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                             mtime, *what)
    return out


def diff(before: dict, after: dict) -> list[str]:
    changes = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            changes.append(f"removed {path}")
        elif path not in before:
            changes.append(f"added {path}")
        elif before[path] != after[path]:
            changes.append(f"changed {path}: {before[path]} -> {after[path]}")
    return changes


# ---- checks ------------------------------------------------------------------------------

def check_user(root: Path, report: Report) -> None:
    pw = in_chroot(root, "getent", "passwd", "kiosk").stdout.strip().split(":")
    report.check("user kiosk exists, system uid, no login shell",
                 len(pw) == 7 and int(pw[2]) < 1000 and pw[6] == "/usr/sbin/nologin",
                 ":".join(pw))
    groups = set(in_chroot(root, "id", "-nG", "kiosk").stdout.split())
    report.check("kiosk is in exactly kiosk video render input gpio", groups == KIOSK_GROUPS,
                 " ".join(sorted(groups)))


def check_units(root: Path, report: Report) -> None:
    system = root / "etc/systemd/system"
    for unit in UNITS:
        report.check(f"{unit} installed 0644 root",
                     (system / unit).is_file() and
                     stat.S_IMODE((system / unit).stat().st_mode) == 0o644 and
                     (system / unit).stat().st_uid == 0)
        link = system / "multi-user.target.wants" / unit
        report.check(f"{unit} enabled (multi-user.target.wants symlink)",
                     link.is_symlink() and os.readlink(link) == f"/etc/systemd/system/{unit}",
                     os.readlink(link) if link.is_symlink() else "no link")
        state = in_chroot(root, "systemctl", "is-enabled", unit).stdout.strip()
        report.check(f"systemctl is-enabled {unit} (offline)", state == "enabled", state)
    getty = in_chroot(root, "systemctl", "is-enabled", "getty@tty1.service").stdout.strip()
    report.check("getty@tty1.service disabled", getty == "disabled", getty)
    for rel in ("etc/systemd/journald.conf.d/checkpoint-kiosk.conf",
                "etc/udev/rules.d/99-checkpoint-kiosk-usb.rules"):
        report.check(f"/{rel} installed", (root / rel).is_file())
    cmdline = (root / "boot/firmware/cmdline.txt").read_text()
    report.check("cmdline.txt: one line, consoleblank=0 once",
                 cmdline.count("\n") == 1 and cmdline.split().count("consoleblank=0") == 1,
                 cmdline.strip())
    # verify loads each unit with systemd's own parser: unknown directives, bad paths
    # (ExecStart must exist and be executable) and missing dependencies all show up.
    proc = in_chroot(root, "systemd-analyze", "verify",
                     *(f"/etc/systemd/system/{u}" for u in UNITS))
    report.check("systemd-analyze verify on the installed units (in the chroot)",
                 proc.returncode == 0 and not proc.stderr.strip(),
                 (proc.stdout + proc.stderr).strip()[-2000:])
    proc = in_chroot(root, "systemd-analyze", "security", "--offline=true",
                     "/etc/systemd/system/checkpoint-kiosk.service")
    m = re.search(r"Overall exposure level for \S+: ([\d.]+) (\w+)", proc.stdout)
    report.facts["security_exposure"] = f"{m.group(1)} {m.group(2)}" if m else proc.stdout[-300:]
    report.check("systemd-analyze security --offline=true: exposure below 3.0",
                 m is not None and float(m.group(1)) < 3.0,
                 report.facts["security_exposure"])


PROBE = """
import json, importlib, importlib.metadata as md, sys
out = {"prefix": sys.prefix}
for name, dist in (("pygame", "pygame"), ("numpy", "numpy"), ("gpiozero", "gpiozero"),
                   ("PIL", "pillow"), ("systemd.daemon", "systemd-python"), ("kiosk", None)):
    try:
        mod = importlib.import_module(name)
        out[name] = {"file": mod.__file__,
                     "version": md.version(dist) if dist else mod.__version__}
    except Exception as e:
        out[name] = {"error": repr(e)}
import ctypes, pygame
out["sdl"] = ".".join(map(str, pygame.get_sdl_version()))
# The video drivers compiled into the SDL that pygame links (SDL_GetVideoDriver).
sdl = ctypes.CDLL("libSDL2-2.0.so.0")
sdl.SDL_GetVideoDriver.restype = ctypes.c_char_p
out["sdl_video_drivers"] = [sdl.SDL_GetVideoDriver(i).decode()
                            for i in range(sdl.SDL_GetNumVideoDrivers())]
print(json.dumps(out))
"""


def check_venv(root: Path, report: Report, want_version: str) -> None:
    cfg = (root / "opt/checkpoint-kiosk/venv/pyvenv.cfg").read_text()
    report.check("venv made with --system-site-packages",
                 "include-system-site-packages = true" in cfg)
    proc = in_chroot(root, "/opt/checkpoint-kiosk/venv/bin/python", "-c", PROBE,
                     user="kiosk", env={"HOME": "/nonexistent", "SDL_VIDEODRIVER": "dummy"})
    if not report.check("venv python imports the stack as the kiosk user", proc.returncode == 0,
                        proc.stderr[-1500:]):
        return
    got = json.loads(proc.stdout.splitlines()[-1])
    report.facts["imports"] = got
    debian = "/usr/lib/python3/dist-packages/"
    venv = "/opt/checkpoint-kiosk/venv/lib/"
    for name in ("pygame", "numpy", "PIL", "systemd.daemon"):
        report.check(f"{name} comes from Debian's package (dist-packages)",
                     got[name].get("file", "").startswith(debian), got[name])
    # Debian 12 ships gpiozero 1.6.2; setup.py wants >= 2.0, so here pip puts 2.x in the
    # venv.  Raspberry Pi OS Bookworm ships 2.x and the Debian one is used there.
    deb_gpiozero = in_chroot(root, "dpkg-query", "-W", "-f=${Version}",
                             "python3-gpiozero").stdout.strip()
    report.facts["debian_python3_gpiozero"] = deb_gpiozero
    expect = debian if not deb_gpiozero.startswith("1.") else venv
    report.check(f"gpiozero from {'Debian' if expect == debian else 'the venv'} "
                 f"(Debian's is {deb_gpiozero or 'absent'}; kiosk needs >= 2.0)",
                 got["gpiozero"].get("file", "").startswith(expect), got["gpiozero"])
    report.check("kiosk comes from the venv at the checkout's version",
                 got["kiosk"].get("file", "").startswith(venv) and
                 got["kiosk"].get("version") == want_version, got["kiosk"])
    # KMSDRM is the reason for Debian's pygame: its SDL must carry the driver.
    report.check("Debian's SDL2 (the one pygame links) has the kmsdrm video driver",
                 # SDL matches SDL_VIDEODRIVER case-insensitively; 2.26 names it "KMSDRM".
                 "kmsdrm" in [d.lower() for d in got.get("sdl_video_drivers", [])],
                 f"SDL {got.get('sdl')}: {got.get('sdl_video_drivers')}")


def check_cli(root: Path, report: Report, want_version: str) -> None:
    env = {"HOME": "/nonexistent"}
    proc = in_chroot(root, "/opt/checkpoint-kiosk/venv/bin/checkpoint-kiosk", "--version",
                     user="kiosk", env=env)
    report.check("checkpoint-kiosk --version (as kiosk)",
                 proc.returncode == 0 and want_version in proc.stdout,
                 (proc.stdout + proc.stderr).strip()[-500:])
    proc = in_chroot(root, "/opt/checkpoint-kiosk/venv/bin/checkpoint-kiosk", "config", "check",
                     "--config", "/etc/checkpoint-kiosk/kiosk.toml", user="kiosk", env=env)
    report.check("checkpoint-kiosk config check /etc/checkpoint-kiosk/kiosk.toml (as kiosk)",
                 proc.returncode == 0, (proc.stdout + proc.stderr).strip()[-800:])


# ---- provisioning-like state and the upgrade ---------------------------------------------

STATE = """
import os, pathlib, json
from offline_queue.records import CheckIn
from offline_queue.store import Store
with Store("/var/lib/checkpoint-kiosk/checkins.db", device_id="dev-chroot",
           checkpoint_id="LS-HUUNGHI") as store:
    for decision in ("pass", "check", "stop"):
        store.record(CheckIn(direction="in", kind="cccd", person_key="001085012345",
                             display={"name": "Lê Hạnh"}, decision=decision))
"""


def write_state(root: Path, report: Report) -> None:
    """What provisioning and a day of check-ins leave, written the way the kiosk writes it."""
    pw = in_chroot(root, "getent", "passwd", "kiosk").stdout.split(":")
    uid, gid = int(pw[2]), int(pw[3])
    etc = root / "etc/checkpoint-kiosk"
    # provision --owner kiosk: token 0600 and config 0640, both owned by kiosk.
    config = etc / "kiosk.toml"
    text = config.read_text().replace('checkpoint_id = ""', 'checkpoint_id = "LS-HUUNGHI"')
    text = text.replace('id = ""', 'id = "dev-chroot"', 1)
    config.write_text("# provisioned (chroot test)\n" + text)
    os.chown(config, uid, gid)
    config.chmod(0o640)
    token = etc / "device-token"
    token.write_text("dev-secret-chroot\n")
    os.chown(token, uid, gid)
    token.chmod(0o600)
    # StateDirectory= creates this at the first start; the chroot never starts the service.
    state = root / "var/lib/checkpoint-kiosk"
    state.mkdir(mode=0o750, exist_ok=True)
    os.chown(state, uid, gid)
    proc = in_chroot(root, "/opt/checkpoint-kiosk/venv/bin/python", "-c", STATE, user="kiosk",
                     env={"HOME": "/var/lib/checkpoint-kiosk"})
    report.check("kiosk user records 3 check-ins in a real store", proc.returncode == 0,
                 proc.stderr[-1500:])
    (state / "provision-result.json").write_text('{"ok": true, "source": "chroot"}\n')
    os.chown(state / "provision-result.json", uid, gid)


def bump_version(root: Path) -> str:
    init = root / SRC.lstrip("/") / "kiosk/__init__.py"
    text = init.read_text()
    old = re.search(r'^__version__ = "(.*)"$', text, re.M).group(1)
    new = f"{old}.post1"
    init.write_text(text.replace(f'__version__ = "{old}"', f'__version__ = "{new}"'))
    # A changed unit too, as a real upgrade would bring.
    unit = root / SRC.lstrip("/") / "systemd/checkpoint-kiosk.service"
    unit.write_text(unit.read_text() + "# upgraded (chroot test)\n")
    return new


def source_version(root: Path) -> str:
    text = (root / SRC.lstrip("/") / "kiosk/__init__.py").read_text()
    return re.search(r'^__version__ = "(.*)"$', text, re.M).group(1)


# ---- the whole run -----------------------------------------------------------------------

def run(root: Path, cache: Path, mirror: str, log_dir: Path, report: Report) -> None:
    bootstrap(root, cache, mirror, report)
    make_pi_like(root)
    report.facts["source"] = copy_source(root, REPO)
    version = source_version(root)
    with mounted(root, cache):
        first = install(root, report, "first", log_dir)
        # Debian's archive has none of the Pi-only packages: skipped, said, not installed.
        skipped = re.search(r"skipped: (python3-picamera2 python3-libcamera python3-lgpio);",
                            first.stdout)
        report.facts["skipped_pi_packages"] = skipped.group(1) if skipped else None
        report.check("Pi-only packages (picamera2, libcamera, lgpio) skipped with a message",
                     skipped is not None and not any(
                         (root / f"var/lib/dpkg/info/{p}.list").exists() or
                         (root / f"var/lib/dpkg/info/{p}:{report.facts['arch']}.list").exists()
                         for p in ("python3-picamera2", "python3-libcamera", "python3-lgpio")))
        report.check("systemd is not PID 1: no start/restart attempted, said so",
                     "systemd is not running" in first.stdout, first.stdout.strip()[-300:])
        if first.returncode != 0:
            return
        check_user(root, report)
        check_units(root, report)
        check_venv(root, report, version)
        check_cli(root, report, version)

        before = manifest(root, INSTALLED)
        second = install(root, report, "second", log_dir)
        changes = diff(before, manifest(root, INSTALLED))
        report.check("second run: prints 'nothing changed'", "nothing changed" in second.stdout,
                     second.stdout.strip()[-500:])
        report.check(f"second run: manifest of {len(before)} installed paths unchanged",
                     not changes, changes[:20])

        write_state(root, report)
        kept = manifest(root, KEPT)
        new_version = bump_version(root)
        upgrade = install(root, report, "upgrade", log_dir)
        lost = diff(kept, manifest(root, KEPT))
        report.check(f"upgrade to {new_version}: {len(kept)} paths under /etc/checkpoint-kiosk "
                     "and /var/lib/checkpoint-kiosk kept byte for byte (owner, mode, mtime)",
                     not lost, lost[:20])
        report.check("upgrade: unit file updated", "checkpoint-kiosk.service updated"
                     in upgrade.stdout and (root / "etc/systemd/system/checkpoint-kiosk.service")
                     .read_text().endswith("# upgraded (chroot test)\n"))
        check_venv(root, report, new_version)
        check_cli(root, report, new_version)
        after = manifest(root, INSTALLED)
        again = install(root, report, "after-upgrade", log_dir)
        changes = diff(after, manifest(root, INSTALLED))
        report.check("run after the upgrade changes nothing",
                     "nothing changed" in again.stdout and not changes, changes[:20])
        dry = install(root, report, "dry-run", log_dir, "--dry-run")
        changes = diff(after, manifest(root, INSTALLED))
        report.check("--dry-run on the installed system: 'nothing changed', nothing touched",
                     "nothing changed" in dry.stdout and "+ " not in dry.stdout and not changes,
                     changes[:20] or dry.stdout[-300:])

        # A lost enablement (someone ran systemctl disable) is repaired without a restart.
        (root / "etc/systemd/system/multi-user.target.wants/checkpoint-kiosk-provision.path"
         ).unlink()
        repair = install(root, report, "repair", log_dir)
        state = in_chroot(root, "systemctl", "is-enabled",
                          "checkpoint-kiosk-provision.path").stdout.strip()
        report.check("a disabled unit is enabled again by the next run", state == "enabled"
                     and "systemctl" not in repair.stdout.replace("systemctl enable", ""),
                     repair.stdout.strip()[-300:])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                    help=f"chroot folder, made afresh (default {DEFAULT_ROOT})")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help=f"debootstrap tarball, .deb and wheel cache (default {DEFAULT_CACHE})")
    ap.add_argument("--mirror", help="Debian mirror (default: the one this machine's apt uses)")
    ap.add_argument("--report", type=Path, help="write the JSON report here")
    ap.add_argument("--keep", action="store_true", help="keep the chroot folder afterwards")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("install_chroot: needs root (debootstrap, mount, chroot)", file=sys.stderr)
        return 2
    for tool in ("debootstrap", "git", "chroot", "mount"):
        if shutil.which(tool) is None:
            print(f"install_chroot: {tool!r} is missing; apt-get install {tool}", file=sys.stderr)
            return 2
    root = args.root.resolve()
    if root in (Path("/"), Path("/var/tmp"), Path("/tmp")) or \
            not str(root).startswith(("/var/tmp/", "/tmp/")):
        print(f"install_chroot: --root {str(root)!r} must be a folder under /var/tmp or /tmp",
              file=sys.stderr)
        return 2

    # SIGTERM/SIGHUP unwind through the finally blocks (mounts) like Ctrl-C does.
    def stop(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)

    report = Report()
    report.facts["host"] = f"{platform.system()} {platform.machine()}"
    log_dir = root.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    try:
        run(root, args.cache, args.mirror or detect_mirror(), log_dir, report)
    except (ChrootError, OSError, subprocess.SubprocessError) as e:
        report.check("harness", False, str(e))
    finally:
        release(root)
        report.timings["total_s"] = round(time.monotonic() - t, 1)
        report.facts["logs"] = str(log_dir)
        if not mounts_under(root) and not args.keep and root.exists():
            shutil.rmtree(root)
    if args.report:
        args.report.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    failed = [c["name"] for c in report.checks if not c["ok"]]
    print(f"install_chroot: {len(report.checks) - len(failed)} passed, {len(failed)} failed "
          f"in {report.timings['total_s']} s; logs in {log_dir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
