"""Prove systemd/install.sh --appliance on a real Debian 12 root (debootstrap + chroot).

    sudo python3 -m bench.install_chroot [--arch ARCH] [--tests {none,selection,all}]
                                         [--root DIR] [--cache DIR] [--mirror URL]
                                         [--report FILE] [--keep]

By default it builds Debian 12 bookworm for THIS machine's architecture (amd64 here).
``--arch arm64`` builds the Raspberry Pi's architecture instead and runs it under
qemu-user-static: binfmt_misc is mounted if it is not, an aarch64 handler
(qemu-aarch64-static, flags F and P) is registered if none is, and both are undone at
the end when this harness did them.  Either way it is Debian, not Raspberry Pi OS: the
Pi-only packages (python3-picamera2, python3-libcamera, python3-lgpio, raspi-config) do not
exist in Debian's archive, and install.sh detects that with ``apt-cache show`` and skips
them.  Debian's python3-gpiozero is 1.6 (Raspberry Pi OS has 2.x), so on Debian pip
installs gpiozero 2.x into the venv; pygame and numpy come from Debian as they do on the Pi.

Steps: debootstrap (minbase + systemd-sysv + udev, from a cached --make-tarball; for a
foreign architecture --foreign, qemu-ARCH-static copied in, then the second stage inside
the root under emulation), a Pi-like boot partition file, a clean ``git archive`` of the
checkout (uncommitted changes to tracked files included, via ``git stash create``), /proc,
/sys and /dev mounted, then inside the chroot with an empty environment: install, checks,
a second install that must change nothing (manifest of hashes, modes, owners, mtimes),
provisioning-like state written as the kiosk user, an upgrade with a bumped version that
must keep /etc/checkpoint-kiosk/* and /var/lib/checkpoint-kiosk/* byte for byte (and
owners), and one more run that must change nothing.  With ``--tests`` (the default for a
foreign architecture is ``selection``) the project's tests then run inside the root, in a
venv made with --system-site-packages beside the appliance's (Debian's pygame, numpy and
Pillow, the same aarch64 wheels), and the report says which wheels pip took from PyPI as
binaries and which it built.  Every subprocess has a time limit; mounts (and a binfmt
handler this harness registered) are undone on every exit path.  Exit 0 when every check
passed; the report (JSON) lists each check and the timings.
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
KIOSK_GROUPS = {"kiosk", "video", "render", "input", "gpio", "dialout"}
# What install.sh installs or owns: compared before and after each re-run.
INSTALLED = ("opt/checkpoint-kiosk", "etc/checkpoint-kiosk", "etc/systemd/system",
             "etc/systemd/journald.conf.d", "etc/udev/rules.d", "boot/firmware/cmdline.txt",
             "var/lib/checkpoint-kiosk", "etc/passwd", "etc/group", "etc/shadow",
             "etc/gshadow")
KEPT = ("etc/checkpoint-kiosk", "var/lib/checkpoint-kiosk")
PI_CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=1-02 rootfstype=ext4 rootwait\n"

# Foreign architectures this harness can run under qemu-user: Debian's name -> qemu's name
# and what ``uname -m`` says inside.  arm64 is the Raspberry Pi's (Pi OS Bookworm 64-bit).
QEMU_ARCH = {"arm64": "aarch64"}
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
# The CPU qemu emulates (QEMU_CPU, set in every chroot command's environment): the Pi 4's
# core by default, so that an aarch64 wheel using instructions a Pi 4 lacks (ARMv8.1 atomics,
# dot product, SVE) fails here as it would there.  qemu's own default, "max", has them all.
DEFAULT_CPU = {"arm64": "cortex-a72"}
ARMV80_CPUS = ("cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72")
# The low bits of AT_HWCAP on aarch64 (the kernel's asm/hwcap.h), as getauxval reports them.
AARCH64_HWCAP = ("fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32", "atomics",
                 "fphp", "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma", "lrcpc", "dcpop",
                 "sha3", "sm3", "sm4", "asimddp", "sha512", "sve")
# binfmt_misc magic and mask of a little-endian 64-bit ELF executable or shared object
# (ET_EXEC/ET_DYN) for e_machine EM_AARCH64 (183 = 0xb7): the first 20 bytes of the header.
ELF_AARCH64_MAGIC = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\xb7\x00"
ELF_AARCH64_MASK = b"\xff" * 7 + b"\x00" + b"\xff" * 8 + b"\xfe\xff\xff\xff"
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
BINFMT_NAME = "checkpoint-kiosk-qemu-aarch64"
# Limits for the host-side steps (seconds); in_chroot has its own per command.
DEBOOTSTRAP_DOWNLOAD_TIMEOUT = 1200
DEBOOTSTRAP_TIMEOUT = 3600  # the second stage of a foreign root runs dpkg under emulation


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


def sh(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run(cmd, timeout=timeout, **kw)


def debian_arch() -> str:
    return sh(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()


def tarball_path(cache: Path, arch: str) -> Path:
    return cache / f"debootstrap-{SUITE}-{arch}-{VARIANT}-{'+'.join(INCLUDE)}.tgz"


def bootstrap(root: Path, cache: Path, mirror: str, arch: str, qemu: Path | None,
              report: Report) -> None:
    """A fresh root from the cached tarball (made once with --make-tarball).

    For a foreign architecture (``qemu`` given) debootstrap only unpacks (--foreign), the
    emulator is copied into the root, and the second stage runs inside it under emulation.
    """
    report.facts["arch"] = arch
    report.facts["mirror"] = mirror
    opts = [f"--arch={arch}", f"--variant={VARIANT}", f"--include={','.join(INCLUDE)}"]
    tarball = tarball_path(cache, arch)
    if not tarball.exists():
        cache.mkdir(parents=True, exist_ok=True)
        t = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            part = tarball.with_suffix(".part.tgz")
            sh(["debootstrap", *opts, f"--make-tarball={part}", SUITE, scratch, mirror],
               timeout=DEBOOTSTRAP_DOWNLOAD_TIMEOUT)
            part.rename(tarball)
        report.timings["debootstrap_make_tarball_s"] = round(time.monotonic() - t, 1)
    if root.exists():
        assert_unmounted(root)
        shutil.rmtree(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    foreign = ["--foreign"] if qemu else []
    sh(["debootstrap", *opts, *foreign, f"--unpack-tarball={tarball}", SUITE, str(root),
        mirror], stdout=subprocess.DEVNULL, timeout=DEBOOTSTRAP_TIMEOUT)
    report.timings["debootstrap_unpack_s"] = round(time.monotonic() - t, 1)
    if qemu:
        # Inside the root as well, so that a handler registered without the F flag (the
        # kernel then looks the interpreter up at exec time, in the chroot) works too.
        inside = root / "usr/bin" / qemu.name
        shutil.copy2(qemu, inside)
        t = time.monotonic()
        proc = subprocess.run([CHROOT, str(root), "/debootstrap/debootstrap", "--second-stage"],
                              capture_output=True, text=True, timeout=DEBOOTSTRAP_TIMEOUT,
                              env={**CHROOT_ENV, "LANG": "C.UTF-8"})
        report.timings["debootstrap_second_stage_emulated_s"] = round(time.monotonic() - t, 1)
        if proc.returncode != 0:
            log = root / "debootstrap/debootstrap.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise ChrootError(f"debootstrap --second-stage in the {arch} root failed "
                              f"(exit {proc.returncode}): {(proc.stderr or tail)[-1500:]}")


def make_pi_like(root: Path) -> None:
    """What a fresh Raspberry Pi OS Lite has and a Debian chroot lacks, for the test only."""
    boot = root / "boot/firmware"
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "cmdline.txt").write_text(PI_CMDLINE)
    prepare_root(root)


def prepare_root(root: Path) -> None:
    """A fresh root made fit for a chroot run (bench/central_setup.py uses it too)."""
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


def copy_source(root: Path, repo: Path, where: str = SRC) -> str:
    """A clean git archive of the checkout at ``where`` in the root; tracked but uncommitted
    changes are included."""
    rev = sh(["git", "stash", "create"], cwd=repo, capture_output=True, text=True).stdout.strip()
    rev = rev or "HEAD"
    dest = root / where.lstrip("/")
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
        if subprocess.run(["umount", target], timeout=60).returncode != 0:
            subprocess.run(["umount", "-l", target], timeout=60)


# ---- a foreign architecture: qemu-user through binfmt_misc ---------------------------------

def binfmt_entries() -> dict[str, str]:
    """name -> text of each binfmt_misc handler registered now."""
    return {p.name: p.read_text(errors="replace") for p in BINFMT_DIR.iterdir()
            if p.name not in ("register", "status")}


def aarch64_handler(entries: dict[str, str]) -> str | None:
    """The name of an enabled handler for aarch64 ELF files, if any (e.g. qemu-aarch64)."""
    magic = ELF_AARCH64_MAGIC.hex()
    for name, text in entries.items():
        fields = dict(line.split(" ", 1) for line in text.splitlines() if " " in line)
        if text.startswith("enabled") and fields.get("magic") == magic:
            return name
    return None


# Complexity over 10 on purpose: each binfmt/qemu step sits next to its undo, in one place.
@contextlib.contextmanager
def emulation(arch: str, report: Report) -> Iterator[Path | None]:  # noqa: C901
    """Make ``arch`` binaries runnable here; yields the qemu-user binary (None: native).

    Mounts binfmt_misc if it is not, registers an aarch64 handler if none is, and undoes
    exactly what it did, whatever happens.
    """
    if arch == debian_arch():
        yield None
        return
    if arch not in QEMU_ARCH:
        raise ChrootError(f"--arch {arch}: this harness runs only {', '.join(QEMU_ARCH)} "
                          "under emulation (or this machine's own architecture)")
    found = shutil.which(f"qemu-{QEMU_ARCH[arch]}-static")
    if found is None:
        raise ChrootError(f"qemu-{QEMU_ARCH[arch]}-static is missing, needed to run an "
                          f"{arch} root here: apt-get install qemu-user-static")
    qemu = Path(found).resolve()
    cpu = CHROOT_ENV.get("QEMU_CPU")
    if cpu:
        models = subprocess.run([str(qemu), "-cpu", "help"], capture_output=True, text=True,
                                timeout=30).stdout.split()
        if cpu not in models:
            raise ChrootError(f"--cpu {cpu}: {qemu.name} has no such CPU model; it has "
                              f"{' '.join(m for m in models if m[0].islower())}")
        report.facts["qemu_cpu"] = cpu
    mounted_here = registered = False
    try:
        if not (BINFMT_DIR / "register").exists():
            proc = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_DIR)],
                                  capture_output=True, text=True, timeout=60)
            if proc.returncode != 0:
                raise ChrootError(
                    f"binfmt_misc is not mounted at {BINFMT_DIR} and mounting it failed "
                    f"({proc.stderr.strip()}): an {arch} root cannot run here (without it "
                    "each program's children fail with 'Exec format error'); run as root on a "
                    "machine or container allowed to mount binfmt_misc")
            mounted_here = True
        if (BINFMT_DIR / "status").read_text().strip() != "enabled":
            raise ChrootError(f"binfmt_misc is disabled ({BINFMT_DIR}/status); "
                              f"echo 1 > {BINFMT_DIR}/status to enable it")
        handler = aarch64_handler(binfmt_entries())
        if handler is None:
            # F: the kernel opens the interpreter now, so it works inside any chroot;
            # P: the program keeps its own argv[0] (qemu >= 6 reads AT_FLAGS for that).
            line = b":%s:M::%s:%s:%s:FP" % (BINFMT_NAME.encode(), escape(ELF_AARCH64_MAGIC),
                                             escape(ELF_AARCH64_MASK), bytes(qemu))
            try:
                (BINFMT_DIR / "register").write_bytes(line)
            except OSError as e:
                raise ChrootError(f"could not register qemu-aarch64 in {BINFMT_DIR}/register "
                                  f"({e}); apt-get install binfmt-support qemu-user-static "
                                  "registers it on a systemd host") from e
            registered, handler = True, BINFMT_NAME
        report.facts["binfmt"] = {
            "handler": handler, "registered_by_harness": registered,
            "binfmt_misc_mounted_by_harness": mounted_here,
            "entry": (BINFMT_DIR / handler).read_text().strip().splitlines()}
        report.facts["qemu"] = subprocess.run(
            [str(qemu), "--version"], capture_output=True, text=True,
            timeout=30).stdout.splitlines()[0]
        yield qemu
    finally:
        if registered:
            with contextlib.suppress(OSError):
                (BINFMT_DIR / BINFMT_NAME).write_text("-1")
        if mounted_here:
            subprocess.run(["umount", str(BINFMT_DIR)], timeout=60)


def escape(data: bytes) -> bytes:
    """\\xNN for every byte: binfmt_misc's register syntax."""
    return b"".join(b"\\x%02x" % b for b in data)


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


def chroot_argv(root: Path, *cmd: str, user: str | None = None,
                env: dict | None = None) -> list[str]:
    """The argv that runs cmd inside the chroot, as ``user`` (uid, gid and groups) if given,
    with only CHROOT_ENV and ``env`` in its environment."""
    full_env = {**CHROOT_ENV, **(env or {})}
    prefix = [CHROOT, str(root)]
    if user:
        prefix += ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups"]
    return [*prefix, "env", "-i", *(f"{k}={v}" for k, v in full_env.items()), *cmd]


def in_chroot(root: Path, *cmd: str, user: str | None = None, env: dict | None = None,
              timeout: float = 1800, input: str | None = None) -> subprocess.CompletedProcess:
    """Run cmd inside the chroot with an empty environment (as a fresh login would);
    ``input`` is its stdin (else this process's)."""
    return subprocess.run(chroot_argv(root, *cmd, user=user, env=env), capture_output=True,
                          text=True, timeout=timeout, env={}, input=input)


def install(root: Path, report: Report, label: str, log_dir: Path,
            *extra: str) -> subprocess.CompletedProcess:
    t = time.monotonic()
    # From the checkout, as docs/appliance.md says (the current directory matters to Python).
    env = {"PIP_CERT": HOST_CA} if (root / HOST_CA.lstrip("/")).is_file() else {}
    command = " ".join(("exec bash systemd/install.sh --appliance", *extra))
    proc = in_chroot(root, "sh", "-c", f"cd {SRC} && {command}", env=env, timeout=3600)
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
    report.check("kiosk is in exactly kiosk video render input gpio dialout",
                 groups == KIOSK_GROUPS, " ".join(sorted(groups)))


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
import json, importlib, importlib.metadata as md, platform, sys
out = {"prefix": sys.prefix, "machine": platform.machine()}
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
libc = ctypes.CDLL(None)
libc.getauxval.restype = ctypes.c_ulong
out["hwcap"] = libc.getauxval(16)  # AT_HWCAP: what the (emulated) CPU says it can do
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
    machine = MACHINE.get(report.facts["arch"], report.facts["arch"])
    report.check(f"venv python runs as {machine} (platform.machine())",
                 got.get("machine") == machine, got.get("machine"))
    cpu = CHROOT_ENV.get("QEMU_CPU")
    if machine == "aarch64":
        names = [n for i, n in enumerate(AARCH64_HWCAP) if got.get("hwcap", 0) >> i & 1]
        report.facts["hwcap"] = names
        if cpu in ARMV80_CPUS:
            report.check(f"the emulated CPU is an ARMv8.0 {cpu}: AT_HWCAP has no atomics, "
                         "dot product or SVE", not {"atomics", "asimddp", "sve"} & set(names),
                         " ".join(names))
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


def check_arch(root: Path, report: Report, arch: str) -> None:
    """The root is what was asked for, and its programs really run (natively or emulated)."""
    dpkg = in_chroot(root, "dpkg", "--print-architecture").stdout.strip()
    uname = in_chroot(root, "uname", "-m").stdout.strip()
    report.facts["uname_m_in_root"] = uname
    report.check(f"the root is Debian {arch}: dpkg --print-architecture and uname -m inside",
                 dpkg == arch and uname == MACHINE.get(arch, uname), f"{dpkg} / {uname}")


# ---- the project's tests inside the root ----------------------------------------------------

SHARED_IN_ROOT = "/home/pi/shared"  # beside the clone: where tests/conftest.py looks first
TEST_VENV = "/root/test-venv"
# --tests selection: what it runs and why.  Chosen to cover what depends on the machine's
# architecture (C extensions and native libraries: cryptography, cbor2, zxing-cpp, libzbar,
# numpy, SDL through pygame, SQLite) without the long end-to-end runs.
SELECTION: dict[str, str] = {
    "tests/test_credentials_cccd.py": "domain: ID card codes",
    "tests/test_credentials_other.py": "domain: other codes, masking",
    "tests/test_credentials_text.py": "domain: hostile text",
    "tests/test_dcc_signed.py": "EU DCC: COSE/CBOR, ES256 and PS256 (cryptography, cbor2)",
    "tests/test_dcc_conformance.py": "EU DCC: the official vectors (needs ../shared)",
    "tests/test_policy.py": "domain: decisions",
    "tests/test_watchlist.py": "domain: salted hashes",
    "tests/test_qr.py": "decoders on real images (zxing-cpp, libzbar via pyzbar, numpy)",
    "tests/test_cmd_decode.py": "decoders through the CLI, a real subprocess",
    "tests/test_store.py": "the SQLite store",
    "tests/test_scanloop.py": "scan loop with the real store and parsers",
    "tests/test_sync.py": "sync against the reference server on 127.0.0.1",
    "tests/test_sync_auth.py": "sync: refusals and the dead letter",
    "tests/test_sync_deadline.py": "sync: total deadline on a slow answer",
    "tests/test_config.py": "config parsing and defaults",
    "tests/test_ui_screens.py": "UI: every screen on pygame's dummy driver vs references",
    "tests/test_ui_text.py": "UI: catalogues, fonts, artwork (SDL_ttf)",
    "tests/test_ui_sound.py": "UI: tones and voice on SDL's dummy audio driver",
}
# Failures that are not about the architecture, each seen in the native amd64 root too
# (False) or only under emulation (True), and why (docs/appliance.md has the figures).  They
# are listed in the report; any other failure fails the check.
KNOWN_FAILURES: dict[str, tuple[str, bool]] = {
    "tests.test_crash::test_kill_9_loses_nothing_and_doubles_nothing":
        ("kills within 1.2 s of the start; the kiosk's imports take 1.5 s under qemu", True),
    "tests.test_soak::test_run_headless_memory_stays_flat_for_20_seconds":
        ("RSS grows ~18 MiB/min under qemu-user (its translation cache, most likely)", True),
    "tests.test_notify_run::test_pings_stop_while_the_camera_thread_hangs_and_resume_after":
        ("a watchdog-ping window of 0.6 s, missed by 0.04 s under emulation on 2 cores", True),
}
# Never run inside a root, whatever --tests says.
NEVER: dict[str, str] = {
    "tests/test_install_chroot.py": "this harness itself: it debootstraps and mounts from the "
                                   "host, not from inside a root",
}


# Debian's packages the appliance's venv takes from the system (install.sh), pinned in the
# test venv.  requests and urllib3 too: the test extras (selenium, types-requests) would
# otherwise bring urllib3 2 under Debian's requests 2.28, a pair the kiosk never runs (it
# warned on every command's stderr and the sync tests ran on it).
PINNED = ("numpy", "pygame", "Pillow", "requests", "urllib3")


def pinned_system_packages(root: Path) -> dict[str, str]:
    """The versions of the Debian-packaged distributions the appliance's venv uses."""
    proc = in_chroot(root, "python3", "-c", (
        "import importlib.metadata as m, json\n"
        f"print(json.dumps({{d: m.version(d) for d in {PINNED!r}}}))"))
    if proc.returncode != 0:
        raise ChrootError(f"could not read the versions of Debian's {', '.join(PINNED)} in "
                          f"the root: {proc.stderr[-500:]}")
    return json.loads(proc.stdout)


def make_test_venv(root: Path, report: Report, log_dir: Path) -> bool:
    """A venv like the appliance's (--system-site-packages) with the test and central extras.

    Debian's numpy, pygame, Pillow, requests and urllib3 (``PINNED``) are pinned (a
    constraints file) so that pip keeps the appliance's stack: otherwise a newer
    opencv-python-headless would pull a numpy 2 wheel over Debian's numpy, selenium a
    urllib3 2 under Debian's requests, and the tests would run against something the
    kiosk never uses.
    """
    pins = pinned_system_packages(root)
    report.facts["test_venv_pins"] = pins
    (root / "root/test-constraints.txt").write_text(
        "".join(f"{name}=={version}\n" for name, version in pins.items()))
    env = {"PIP_CERT": HOST_CA} if (root / HOST_CA.lstrip("/")).is_file() else {}
    t = time.monotonic()
    steps = [["python3", "-m", "venv", "--system-site-packages", TEST_VENV],
             [f"{TEST_VENV}/bin/python", "-m", "pip", "install", "--progress-bar", "off",
              "-c", "/root/test-constraints.txt", "-e", f"{SRC}[test,central]"]]
    log = []
    ok = True
    for step in steps:
        proc = in_chroot(root, "sh", "-c", f"cd {SRC} && exec {' '.join(step)}", env=env,
                         timeout=3600)
        log.append(f"$ {' '.join(step)}  (exit {proc.returncode})\n{proc.stdout}\n"
                   f"--- stderr\n{proc.stderr}\n")
        if proc.returncode != 0:
            ok = False
            break
    text = "".join(log)
    (log_dir / "test-venv.log").write_text(text)
    report.timings["test_venv_s"] = round(time.monotonic() - t, 1)
    report.facts["test_venv_built_by_pip"] = sorted(set(
        re.findall(r"Building wheel for (\S+)", text)))
    report.check(f"test venv ({TEST_VENV}, --system-site-packages) with the test and "
                 "central extras (the sync tests start a central)", ok, text[-2000:])
    if ok:
        report.facts["test_venv_wheels"] = wheel_origins(
            root, TEST_VENV.lstrip("/"), MACHINE.get(report.facts["arch"], ""))
    return ok


def wheel_origins(root: Path, venv: str, machine: str) -> dict[str, dict[str, str]]:
    """name -> version, wheel tag and where it came from, for each distribution in a venv.

    A wheel pip built here from an sdist is tagged plain ``linux_<machine>``; PyPI's binary
    wheels are ``manylinux``/``musllinux``; pure Python ones ``none-any``.
    """
    out: dict[str, dict[str, str]] = {}
    for info in sorted((root / venv).glob("lib/python3*/site-packages/*.dist-info")):
        meta = (info / "METADATA").read_text(errors="replace") if (info / "METADATA").exists() \
            else ""
        name = re.search(r"^Name: (.*)$", meta, re.M)
        version = re.search(r"^Version: (.*)$", meta, re.M)
        wheel = (info / "WHEEL").read_text(errors="replace") if (info / "WHEEL").exists() else ""
        tags = re.findall(r"^Tag: (.*)$", wheel, re.M)
        if (info / "direct_url.json").exists():
            origin = "the checkout (local path)"
        elif tags and all(t.endswith("-none-any") for t in tags):
            origin = "pure Python wheel"
        elif any("manylinux" in t or "musllinux" in t for t in tags):
            origin = "PyPI binary wheel"
        elif any(t.endswith(f"linux_{machine}") for t in tags):
            origin = "built from source here"
        else:
            origin = "unknown"
        key = name.group(1).strip() if name else info.name
        out[key] = {"version": version.group(1).strip() if version else "?",
                    "tag": tags[0] if tags else "", "origin": origin}
    return out


def test_files(tests: str) -> list[str]:
    if tests == "selection":
        return list(SELECTION)
    every = sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_*.py"))
    return [f for f in every if f not in NEVER]


def parse_junit(path: Path) -> dict[str, object] | None:
    import xml.etree.ElementTree as ET

    if not path.exists():
        return None
    try:
        cases = ET.parse(path).getroot().iter("testcase")
    except ET.ParseError:
        return None
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures: list[str] = []
    skips: dict[str, int] = {}
    times: list[tuple[float, str]] = []
    for case in cases:
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        times.append((float(case.get("time", 0) or 0), name))
        if case.find("failure") is not None:
            counts["failed"] += 1
            failures.append(name)
        elif case.find("error") is not None:
            counts["errors"] += 1
            failures.append(name)
        elif (skip := case.find("skipped")) is not None:
            counts["skipped"] += 1
            reason = (skip.get("message") or "")[:160]
            skips[reason] = skips.get(reason, 0) + 1
        else:
            counts["passed"] += 1
    return {**counts, "failures": failures, "skip_reasons": skips,
            "slowest": [f"{t:.1f} s {n}" for t, n in sorted(times, reverse=True)[:10]]}


def parse_verbose(text: str) -> dict[str, object]:
    """Counts from ``pytest -v`` lines, for a run that was stopped before its summary."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failures = []
    word = {"PASSED": "passed", "XFAIL": "skipped", "XPASS": "passed", "FAILED": "failed",
            "ERROR": "errors", "SKIPPED": "skipped"}
    for m in re.finditer(r"^(tests/\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b",
                         text, re.M):
        counts[word[m.group(2)]] += 1
        if m.group(2) in ("FAILED", "ERROR"):
            failures.append(m.group(1))
    return {**counts, "failures": failures}


def run_pytest(root: Path, report: Report, log_dir: Path, label: str, files: list[str],
               timeout: float) -> dict[str, object]:
    junit = root / f"root/junit-{label}.xml"
    junit.unlink(missing_ok=True)
    log = log_dir / f"tests-{label}.log"
    argv = [f"{TEST_VENV}/bin/python", "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rfEs",
            "--timeout=900", f"--junitxml=/root/{junit.name}", *files]
    env = {**CHROOT_ENV, "CHECKPOINT_KIOSK_SHARED": SHARED_IN_ROOT}
    cmd = [CHROOT, str(root), "sh", "-c", f"cd {SRC} && exec \"$@\"", "sh", *argv]
    t = time.monotonic()
    timed_out = False
    with log.open("w") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            rc: int | None = subprocess.run(
                [*cmd[:2], "env", "-i", *(f"{k}={v}" for k, v in env.items()), *cmd[2:]],
                stdout=out, stderr=subprocess.STDOUT, timeout=timeout, env={}).returncode
        except subprocess.TimeoutExpired:
            rc, timed_out = None, True
    seconds = round(time.monotonic() - t, 1)
    text = log.read_text(errors="replace")
    result = parse_junit(junit) or parse_verbose(text)
    summary = re.findall(r"^=+ (.*\d+ \w+.* in [\d.]+s.*) =+$", text, re.M)
    result.update({"files": len(files), "exit": rc, "timed_out": timed_out,
                   "seconds": seconds, "summary": summary[-1] if summary else None})
    report.timings[f"tests_{label}_s"] = seconds
    return result


def run_tests(root: Path, report: Report, log_dir: Path, tests: str, timeout: float) -> None:
    """The project's tests inside the root: the selection first, then (all) the rest."""
    shared = Path(os.environ.get("CHECKPOINT_KIOSK_SHARED") or REPO.parent / "shared")
    if shared.is_dir():
        dest = root / SHARED_IN_ROOT.lstrip("/")
        shutil.copytree(shared, dest, dirs_exist_ok=True)
    report.facts["shared"] = str(shared)
    report.check(f"the shared reference folder copied to {SHARED_IN_ROOT} in the root",
                 shared.is_dir(), "" if shared.is_dir() else
                 f"{shared} is missing: the EU DCC conformance tests need it; set "
                 "CHECKPOINT_KIOSK_SHARED=/path/to/shared")
    # The checkout as it was: the upgrade check bumped its version and changed a unit.
    copy_source(root, REPO)
    if not make_test_venv(root, report, log_dir):
        return
    arch = report.facts["arch"]
    files = test_files(tests)
    phases = [("selection", [f for f in files if f in SELECTION])]
    if tests == "all":
        phases.append(("rest", [f for f in files if f not in SELECTION]))
    report.facts["tests_never_run_in_root"] = NEVER
    report.facts["tests"] = {}
    deadline = time.monotonic() + timeout
    for label, chosen in phases:
        left = deadline - time.monotonic()
        if left < 60:
            report.check(f"tests ({label}) in the {arch} root", False,
                         f"not started: the --suite-timeout of {timeout:.0f} s was used up")
            continue
        result = run_pytest(root, report, log_dir, label, chosen, left)
        known = {name: why for name, (why, emulated_only) in KNOWN_FAILURES.items()
                 if not emulated_only or report.facts.get("qemu")}
        result["known"] = {f: known[f] for f in result["failures"] if f in known}
        result["unexpected"] = [f for f in result["failures"] if f not in known]
        report.facts["tests"][label] = result
        report.check(
            f"tests ({label}, {len(chosen)} files) in the {arch} root: {result['passed']} "
            f"passed, {result['skipped']} skipped, {result['failed']} failed, "
            f"{result['errors']} errors in {result['seconds']} s; no failure but "
            f"the {len(result['known'])} known ones",
            not result["timed_out"] and not result["unexpected"] and result["passed"] > 0,
            {"unexpected": result["unexpected"][:30], "known": list(result["known"]),
             "timed_out": result["timed_out"], "summary": result["summary"]})


# ---- the whole run -----------------------------------------------------------------------

def run(root: Path, cache: Path, mirror: str, log_dir: Path, report: Report, arch: str,
        qemu: Path | None, tests: str, suite_timeout: float) -> None:
    bootstrap(root, cache, mirror, arch, qemu, report)
    make_pi_like(root)
    report.facts["source"] = copy_source(root, REPO)
    version = source_version(root)
    with mounted(root, cache):
        check_arch(root, report, arch)
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
        report.facts["appliance_venv_wheels"] = wheel_origins(
            root, "opt/checkpoint-kiosk/venv", MACHINE.get(arch, arch))

        if tests != "none":
            run_tests(root, report, log_dir, tests, suite_timeout)


# Complexity over 10 on purpose: a script's flat argument checks, then the one run.

def preflight(prog: str, root: Path) -> str | None:
    """Why a root-building harness cannot run here (not root, a tool missing, a --root
    that is not a scratch folder), or None."""
    if os.geteuid() != 0:
        return f"{prog}: needs root (debootstrap, mount, chroot)"
    for tool in ("debootstrap", "git", "chroot", "mount"):
        if shutil.which(tool) is None:
            return f"{prog}: {tool!r} is missing; apt-get install {tool}"
    if root in (Path("/"), Path("/var/tmp"), Path("/tmp")) or \
            not str(root).startswith(("/var/tmp/", "/tmp/")):
        return f"{prog}: --root {str(root)!r} must be a folder under /var/tmp or /tmp"
    return None


def unwind_on_signals() -> None:
    """SIGTERM/SIGHUP unwind through the finally blocks (mounts) like Ctrl-C does."""
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)


def finish(prog: str, report: Report, path: Path | None, log_dir: Path) -> int:
    """Write the JSON report (when asked), print the one-line summary, give the exit status."""
    if path:
        path.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    failed = [c["name"] for c in report.checks if not c["ok"]]
    print(f"{prog}: {len(report.checks) - len(failed)} passed, {len(failed)} failed "
          f"in {report.timings['total_s']} s; logs in {log_dir}")
    return 0 if report.ok else 1

def main(argv: list[str] | None = None) -> int:  # noqa: C901
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                    help=f"chroot folder, made afresh (default {DEFAULT_ROOT})")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                    help=f"debootstrap tarball, .deb and wheel cache (default {DEFAULT_CACHE})")
    ap.add_argument("--mirror", help="Debian mirror (default: the one this machine's apt uses)")
    ap.add_argument("--report", type=Path, help="write the JSON report here")
    ap.add_argument("--keep", action="store_true", help="keep the chroot folder afterwards")
    ap.add_argument("--arch", help="Debian architecture of the root (default: this machine's); "
                    f"foreign ones ({', '.join(QEMU_ARCH)}) run under qemu-user-static")
    ap.add_argument("--cpu", help="the CPU qemu emulates for a foreign --arch (QEMU_CPU): "
                    f"default {DEFAULT_CPU['arm64']} (Raspberry Pi 4); cortex-a76 is the Pi 5's, "
                    "cortex-a53 the Pi 3's and Zero 2 W's, max qemu's own default")
    ap.add_argument("--tests", choices=("none", "selection", "all"),
                    help="run the project's tests inside the root afterwards: the documented "
                    "selection, or all of them (selection first); default: selection for a "
                    "foreign architecture, none for this machine's")
    ap.add_argument("--suite-timeout", type=float, default=5400,
                    help="limit for all the tests inside the root, seconds (default 5400)")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    problem = preflight("install_chroot", root)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    unwind_on_signals()

    host_arch = debian_arch()
    arch = args.arch or host_arch
    if arch != host_arch and arch not in QEMU_ARCH:
        print(f"install_chroot: --arch {arch}: only this machine's ({host_arch}) or "
              f"{', '.join(QEMU_ARCH)} under qemu-user-static", file=sys.stderr)
        return 2
    tests = args.tests or ("selection" if arch != host_arch else "none")
    if arch != host_arch:
        # qemu-user reads QEMU_CPU from each program's environment, so every command run in
        # the root carries it (a process that empties its environment gets qemu's "max").
        CHROOT_ENV["QEMU_CPU"] = args.cpu or DEFAULT_CPU[arch]
    elif args.cpu:
        print("install_chroot: --cpu is for a foreign --arch (emulated) only", file=sys.stderr)
        return 2

    report = Report()
    report.facts["host"] = f"{platform.system()} {platform.machine()}"
    log_dir = root.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    try:
        with emulation(arch, report) as qemu:
            try:
                run(root, args.cache, args.mirror or detect_mirror(), log_dir, report, arch,
                    qemu, tests, args.suite_timeout)
            finally:
                release(root)  # before an emulator this run registered goes away
    except (ChrootError, OSError, subprocess.SubprocessError) as e:
        report.check("harness", False, str(e))
    finally:
        release(root)
        report.timings["total_s"] = round(time.monotonic() - t, 1)
        report.facts["logs"] = str(log_dir)
        if not mounts_under(root) and not args.keep and root.exists():
            shutil.rmtree(root)
    return finish("install_chroot", report, args.report, log_dir)


if __name__ == "__main__":
    sys.exit(main())
