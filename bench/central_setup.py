"""Prove docs/central.md's setup of a province's central on a fresh Debian 12 root.

    sudo python3 -m bench.central_setup [--root DIR] [--cache DIR] [--mirror URL]
                                        [--report FILE] [--keep]

The steps are not kept here: the ```sh block under "## Setting up a province's central on a
fresh Debian 12 machine" in docs/central.md is read, its two placeholders (the checkout's
path and the admin token) are filled in, and it runs with ``sh -e -x`` as root (from /root,
the directory a root login starts in) in a fresh
debootstrap root of this machine's architecture (minbase, from bench/install_chroot.py's
cached tarball), the checkout copied to /root/checkpoint-kiosk as a technician's clone.
The "Serve it" paragraph after the block gives two more commands that run as written:
``systemctl enable --now`` of the server unit and the ``enrol-token`` line.

A chroot has no systemd as PID 1.  What that changes is done explicitly and reported under
``facts.chroot_substitutions``: package scripts start no daemon (policy-rc.d), so the
PostgreSQL cluster the postgresql unit would start is started with ``pg_ctlcluster`` right
after the block's ``apt-get install``; systemctl cannot reach a manager ("System has not been
booted with systemd"), so ``daemon-reload`` is skipped and ``enable --now`` runs as
``enable`` (which works offline).  The units are checked where ``cp`` put them, with their
enablement links and ``systemd-analyze verify``, and then their ExecStart lines run by
hand the way systemd would run them (User=, Group=, WorkingDirectory=, Environment=,
EnvironmentFile=, ``${VAR}`` substitution, LimitNOFILE=, NoNewPrivileges=): the server, then
the weekly report's and retention's oneshots.  Their sandbox (ProtectSystem=strict with
ReadWritePaths=, ProtectHome=, PrivateTmp=) is emulated in a private mount namespace, and a
probe checks that it holds; it is not systemd's own.

The TLS reverse proxy: the ```sh block under "### The TLS reverse proxy" runs the same way
after a throw-away CA and a certificate for HOST are made in the root (openssl; HOST is
127.0.0.1 in the root's /etc/hosts), only its certificate and key paths filled in; its
``systemctl restart nginx`` is replaced by nginx.service's ExecStartPre= and ExecStart=
lines, run after the block as written (and ExecStop= at the end).

Then, as the technician, through nginx over https: an enrolment token; a kiosk refused
``http://HOST`` and, without ``--ca-bundle``, the certificate (a readable error, the token
not spent), then provisioned against ``https://HOST`` with the CA and the central key's
fingerprint in a scratch folder; a check-in recorded with the kiosk's store; ``checkpoint-
kiosk sync --once``; ``central report --days 7 --format json`` counts it; a dashboard
administrator added, logged in (a Secure session cookie), the activity page shows the
checkpoint; http answered 301 to https; the wrong-token throttle counts the client address
nginx forwarded; nginx stops by its ExecStop=; the server stops on SIGTERM with its
workers.  Exit 0 when every check passed; the report (JSON) lists each check and the
timings.  Nothing stays mounted or running.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench.install_chroot import (
    CHROOT_ENV,
    HOST_CA,
    ChrootError,
    Report,
    bootstrap,
    chroot_argv,
    copy_source,
    debian_arch,
    detect_mirror,
    finish,
    in_chroot,
    mounted,
    mounts_under,
    preflight,
    prepare_root,
    processes_in,
    release,
    unwind_on_signals,
)

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs/central.md"
SECTION = "## Setting up a province's central on a fresh Debian 12 machine"
CHECKOUT_PLACEHOLDER = "/path/to/checkout"
TOKEN_PLACEHOLDER = re.compile(r"<a long random string[^<>\n]*>")
# Anything else that reads as a placeholder: the bench would not know what to put there.
OTHER_PLACEHOLDER = re.compile(r"<[A-Za-z][^<>\n]*>|/path/to/[\w.-]+")
PROXY_HEADING = "### The TLS reverse proxy"
# The proxy block's placeholders: the province's certificate (full chain) and its key.
CERT_PLACEHOLDER = "/path/to/central-fullchain.pem"
KEY_PLACEHOLDER = "/path/to/central.key"

DEFAULT_ROOT = Path("/var/tmp/checkpoint-central-chroot/root")
DEFAULT_CACHE = Path("/var/tmp/checkpoint-central-cache")
CHECKOUT = "/root/checkpoint-kiosk"  # where a technician working as root clones it
VENV_BIN = "/opt/checkpoint-kiosk/venv/bin"
UNIT_DIR = "/etc/systemd/system"
SERVER_UNIT = "checkpoint-kiosk-central-server.service"
ONESHOTS = ("checkpoint-kiosk-central-report.service",
            "checkpoint-kiosk-central-retention.service")
TIMERS = ("checkpoint-kiosk-central-report.timer", "checkpoint-kiosk-central-retention.timer")
PORT = 8080  # the unit's; the chroot shares this machine's network
KIOSK_DIR = "/root/kiosk-scratch"
ADMIN = "admin"
# The proxy: the central's host name as kiosks reach it (.test is reserved for testing, RFC
# 6761; the root's /etc/hosts names 127.0.0.1 so), the throw-away CA and certificate.
HOST = "central.bench.test"
TLS_DIR = "/root/bench-tls"
NGINX_UNIT_DIR = "/lib/systemd/system"
NGINX_UNIT = "nginx.service"
# A client address other than nginx's own (127.0.0.1): the central must see this one.
CLIENT_ADDRESS = "127.0.0.7"
BLOCK_TIMEOUT = 2400
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class DocError(ValueError):
    """docs/central.md does not have the setup the bench proves, in the shape it reads."""


# ---- the document --------------------------------------------------------------------------

@dataclass(frozen=True)
class SetupDoc:
    block: str   # the setup ```sh block, as written
    after: str   # the prose after it, up to the proxy's heading ("Serve it ...")
    proxy: str = ""  # the ```sh block under PROXY_HEADING (nginx in front of the server)


def setup_section(text: str) -> SetupDoc:
    """The setup section's first ```sh block, the paragraphs that follow it and the ```sh
    block of its "### The TLS reverse proxy" part."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == SECTION]
    if len(starts) != 1:
        raise DocError(f"docs/central.md has {len(starts)} headings {SECTION!r}; the bench "
                       "proves the shell block under exactly one")
    end, fenced = len(lines), False
    for i in range(starts[0] + 1, len(lines)):
        if lines[i].startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,2} ", lines[i]):  # a shell comment is no heading
            end = i
            break
    section = "".join(lines[starts[0] + 1:end])
    blocks = list(re.finditer(r"^```sh[ \t]*\n(.*?)^```[ \t]*$", section, re.S | re.M))
    heading = re.search(rf"^{re.escape(PROXY_HEADING)}[ \t]*$", section, re.M)
    if not blocks or (len(blocks) == 2 and heading is None) or len(blocks) > 2:
        raise DocError(f"the section {SECTION!r} of docs/central.md has {len(blocks)} ```sh "
                       f"blocks; the bench runs exactly one, and one more under "
                       f"{PROXY_HEADING!r}")
    if heading is None:
        return SetupDoc(block=blocks[0].group(1), after=section[blocks[0].end():])
    if heading.start() < blocks[0].end() or len(blocks) != 2 or \
            blocks[1].start() < heading.end():
        raise DocError(f"the section {SECTION!r} of docs/central.md should have its setup "
                       f"```sh block, then {PROXY_HEADING!r} with one ```sh block under it")
    return SetupDoc(block=blocks[0].group(1), after=section[blocks[0].end():heading.start()],
                    proxy=blocks[1].group(1))


def substitute(block: str, checkout: str, token: str) -> str:
    """The block with its two placeholders filled in, and nothing else changed."""
    if CHECKOUT_PLACEHOLDER not in block:
        raise DocError(f"the setup block has no {CHECKOUT_PLACEHOLDER!r} placeholder (the "
                       "checkout's path); update bench/central_setup.py with the doc")
    if not TOKEN_PLACEHOLDER.search(block):
        raise DocError("the setup block has no '<a long random string ...>' placeholder (the "
                       "admin token); update bench/central_setup.py with the doc")
    out = TOKEN_PLACEHOLDER.sub(lambda _m: token, block.replace(CHECKOUT_PLACEHOLDER, checkout))
    left = sorted(set(OTHER_PLACEHOLDER.findall(out)))
    if left:
        raise DocError(f"the setup block has placeholders the bench does not fill in: {left}")
    return out


def substitute_proxy(block: str, cert: str, key: str) -> str:
    """The proxy block with the certificate's and the key's paths filled in, nothing else."""
    for placeholder, what in ((CERT_PLACEHOLDER, "the certificate's path"),
                              (KEY_PLACEHOLDER, "the key's path")):
        if placeholder not in block:
            raise DocError(f"the proxy block has no {placeholder!r} placeholder ({what}); "
                           "update bench/central_setup.py with the doc")
    out = block.replace(CERT_PLACEHOLDER, cert).replace(KEY_PLACEHOLDER, key)
    left = sorted(set(OTHER_PLACEHOLDER.findall(out)))
    if left:
        raise DocError(f"the proxy block has placeholders the bench does not fill in: {left}")
    return out


def inline_commands(prose: str) -> list[str]:
    """The inline code spans of Markdown prose (a span may wrap), whitespace collapsed."""
    return [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]


def serve_commands(doc: SetupDoc) -> tuple[str, str]:
    """From the "Serve it" paragraph: the server unit's enable command and enrol-token."""
    spans = inline_commands(doc.after)
    enable = [s for s in spans if s.startswith("systemctl enable") and SERVER_UNIT in s]
    enrol = [s for s in spans if " enrol-token " in s]
    if len(enable) != 1 or len(enrol) != 1:
        raise DocError(f"after the setup block, docs/central.md should give one "
                       f"'systemctl enable ... {SERVER_UNIT}' and one 'enrol-token' command "
                       f"in backticks; found {len(enable)} and {len(enrol)}")
    return enable[0], enrol[0]


FIRST_ADMIN = "**The first administrator**"


def first_admin_block(text: str) -> str:
    """The ```sh block after "The first administrator" (docs/central.md, "Dashboard")."""
    at = text.find(FIRST_ADMIN)
    m = re.compile(r"^```sh[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M).search(text, at) \
        if at >= 0 else None
    if m is None or "user add" not in m.group(1):
        raise DocError(f"docs/central.md has no ```sh block with 'user add' after "
                       f"{FIRST_ADMIN!r}; the bench adds the first administrator with it")
    return m.group(1)


@dataclass(frozen=True)
class StandIn:
    """A line a chroot cannot run as a booted machine does, and what runs instead."""
    pattern: re.Pattern
    replace: str  # a re.sub template
    why: str


# systemctl answers "System has not been booted with systemd as init system (PID 1). Can't
# operate." and exits 1 for anything that needs the manager; enabling works offline.
STAND_INS = (
    StandIn(re.compile(r"^apt-get install\b.*\bpostgresql\b.*$", re.M),
            "\\g<0>\npg_ctlcluster 15 main start",
            "on a booted machine the postgresql unit starts the new cluster when the package "
            "is installed; in the chroot package scripts start no daemon (policy-rc.d), so "
            "the cluster is started by hand right after apt-get install"),
    StandIn(re.compile(r"^systemctl daemon-reload$", re.M),
            "echo 'chroot stand-in: no systemd manager to reload'",
            "needs a running systemd; the units are read afresh by systemd-analyze verify and "
            "by the bench, which runs their ExecStart lines"),
    StandIn(re.compile(r"^systemctl enable --now (.+)$", re.M),
            "systemctl enable \\1",
            "enabling works offline (the links are checked); --now needs a running systemd: "
            "the units' ExecStart lines are run by hand afterwards instead"),
)


# The proxy block's: Debian's nginx unit (nginx.service) is what a booted machine restarts.
PROXY_STAND_INS = (
    StandIn(re.compile(r"^systemctl restart nginx$", re.M),
            "echo 'chroot stand-in: nginx is started by the bench as nginx.service would'",
            "needs a running systemd; the bench runs nginx.service's ExecStartPre= and "
            "ExecStart= lines as written in the root (nginx -t, then nginx daemonizing with "
            "its PID file) after the block, and its ExecStop= line at the end"),
)


def adapt(script: str, *, block: bool = True,
          stand_ins: tuple[StandIn, ...] = STAND_INS) -> tuple[str, list[str]]:
    """The script with the chroot's stand-ins, each marked by a comment line.  Every stand-in
    must find its line in the block (``block``), or the doc changed under the bench."""
    notes = []
    for stand_in in stand_ins:
        found = list(stand_in.pattern.finditer(script))
        if not found and block:
            raise DocError(f"the block has no line matching {stand_in.pattern.pattern!r} "
                           "(a chroot stand-in); update bench/central_setup.py with the doc")
        for m in found:
            notes.append(f"{m.group(0)!r} -> {m.expand(stand_in.replace)!r}: {stand_in.why}")
        script = stand_in.pattern.sub(
            lambda m, si=stand_in: "# chroot stand-in (bench/central_setup.py) for: "
            f"{m.group(0)}\n{m.expand(si.replace)}", script)
    return script, notes


# ---- systemd units, read the way systemd reads them --------------------------------------

def unit_service(text: str) -> dict[str, list[str]]:
    """Key -> values of a unit's [Service] section (ExecStart and Environment may repeat)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def environment_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile=: KEY=VALUE lines, comments, optional quotes."""
    env = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def exec_argv(line: str, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """An ExecStart= line as systemd expands it: ``${VAR}`` inside a word, ``$VAR`` alone as
    a word split on whitespace.  Returns (argv, names referenced but not set)."""
    missing: list[str] = []

    def value(name: str) -> str:
        if name not in env:
            missing.append(name)
        return env.get(name, "")

    argv: list[str] = []
    for word in shlex.split(line.lstrip("-@:+!")):
        alone = re.fullmatch(r"\$(\w+)", word)
        if alone:
            argv.extend(value(alone.group(1)).split())
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda m: value(m.group(1)), word))
    return argv, missing


@dataclass
class Service:
    name: str
    user: str
    workdir: str | None
    env: dict[str, str]
    commands: list[list[str]]
    missing: list[str]
    keys: dict[str, list[str]]


def service(root: Path, name: str, unit_dir: str = UNIT_DIR) -> Service:
    """What systemd would run for ``name`` as installed in the root (in ``unit_dir``)."""
    keys = unit_service((root / unit_dir.lstrip("/") / name).read_text())
    user = keys.get("User", ["root"])[-1]
    env: dict[str, str] = {}
    for assignment in keys.get("Environment", []):
        for word in shlex.split(assignment):
            k, _, v = word.partition("=")
            env[k] = v
    for path in keys.get("EnvironmentFile", []):
        target = root / path.lstrip("-").lstrip("/")
        if target.exists() or not path.startswith("-"):
            env.update(environment_file(target.read_text()))
    commands, missing = [], []
    for line in keys.get("ExecStart", []):
        argv, gone = exec_argv(line, env)
        commands.append(argv)
        missing += gone
    for key in ("ExecStartPre", "ExecStop"):
        for line in keys.get(key, []):
            missing += exec_argv(line, env)[1]
    workdir = keys.get("WorkingDirectory", [None])[-1]
    return Service(name, user, workdir, env, commands, sorted(set(missing)), keys)


def service_env(root: Path, svc: Service) -> dict[str, str]:
    """The environment systemd gives the service: its own, the user's, a PATH."""
    pw = in_chroot(root, "getent", "passwd", svc.user).stdout.strip().split(":")
    home = pw[5] if len(pw) == 7 else "/"
    return {"PATH": SYSTEMD_PATH, "LANG": "C.UTF-8", "HOME": home, "USER": svc.user,
            "LOGNAME": svc.user, "SHELL": pw[6] if len(pw) == 7 else "/bin/sh",
            "INVOCATION_ID": secrets.token_hex(16), **svc.env}


# The sandboxing directives of the shipped units that sandbox() applies; any other one in a
# unit is reported as not applied.
SANDBOX = {"NoNewPrivileges", "ProtectSystem", "ReadWritePaths", "PrivateTmp", "ProtectHome"}
# The root's own mounts (install_chroot.mounted) that ProtectSystem=strict leaves writable:
# the API file systems.  The cache binds are made read-only like the rest.
API_MOUNTS = ("proc", "sys", "dev", "dev/pts")


def sandbox(root: Path, svc: Service) -> tuple[str, list[str]]:
    """Shell lines, run in a private mount namespace on the host before the chroot, that give
    the root the unit's ProtectSystem=strict (all read-only but the API file systems and
    ReadWritePaths=), ProtectHome=yes (/root, /home and /run/user hidden) and PrivateTmp=yes
    (empty /tmp and /var/tmp) as systemd would; and the sandboxing directives not applied."""
    keys = svc.keys
    r = shlex.quote(str(root))
    writable = [rw.lstrip("-").strip("/") for rw in " ".join(keys.get("ReadWritePaths", []))
                .split()]
    lines = []
    if keys.get("ProtectSystem", ["no"])[-1] == "strict":
        # The root with its mounts (/proc, /dev, ...) as one tree whose top is made
        # read-only; each writable path is its own mount first, so it stays writable.
        lines.append(f"mount --rbind {r} {r}")
        for rel in writable:
            target = shlex.quote(str(root / rel))
            lines.append(f"mount --bind {target} {target}")
        lines.append(f"mount -o remount,bind,ro {r}")
        for point in mounts_under(root):
            rel = os.path.relpath(point, root)
            if rel not in (".", *API_MOUNTS, *writable):
                lines.append(f"mount -o remount,bind,ro {shlex.quote(point)}")
    if keys.get("ProtectHome", ["no"])[-1] == "yes":
        for hidden in ("root", "home", "run/user"):
            if (root / hidden).is_dir():
                lines.append(f"mount -t tmpfs -o mode=000,size=1M tmpfs {r}/{hidden}")
    if keys.get("PrivateTmp", ["no"])[-1] == "yes":
        for tmp in ("tmp", "var/tmp"):
            lines.append(f"mount -t tmpfs -o mode=1777 tmpfs {r}/{tmp}")
    missed = sorted(k for k in keys if k.startswith(("Protect", "Private", "Restrict",
                                                     "ReadOnly", "Inaccessible", "System",
                                                     "Capability", "NoNew"))
                    and k not in SANDBOX)
    return "\n".join(lines), missed


def service_argv(root: Path, svc: Service, command: list[str]) -> list[str]:
    """What systemd runs for one ExecStart: in a private mount namespace with the unit's
    sandbox, chrooted, as User= (NoNewPrivileges=), in WorkingDirectory=, its environment."""
    group = svc.keys.get("Group", [svc.user])[-1]
    if group != svc.user:
        raise ChrootError(f"{svc.name}: Group={group} is not User='s own group; the bench "
                          "runs a service with its user's group only (setpriv --regid)")
    cd = f"cd {shlex.quote(svc.workdir)} && " if svc.workdir else ""
    inner = chroot_argv(root, "sh", "-c", cd + 'exec "$@"', "sh", *command, user=svc.user,
                        env=service_env(root, svc))
    if svc.keys.get("NoNewPrivileges", ["no"])[-1] == "yes":
        inner.insert(inner.index("setpriv") + 1, "--no-new-privs")
    limit = svc.keys.get("LimitNOFILE", [None])[-1]
    if limit:
        inner = ["prlimit", f"--nofile={limit}:{limit}", "--", *inner]
    script, _missed = sandbox(root, svc)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-e", "-c",
            script + '\nexec "$@"', "sh", *inner]


PROBE = """
import json, os, pathlib
out = {}
for path in ("/etc/checkpoint-kiosk/probe", "/opt/checkpoint-kiosk/probe", "/usr/probe",
             "/var/lib/checkpoint-central/probe", "/tmp/probe"):
    try:
        pathlib.Path(path).write_text("x")
        os.unlink(path)
        out[path] = "written"
    except OSError as e:
        out[path] = e.strerror
out["/root"] = "listed" if os.access("/root", os.R_OK | os.X_OK) else "hidden"
out["tmp_empty"] = not os.listdir("/tmp")
out["nofile"] = __import__("resource").getrlimit(__import__("resource").RLIMIT_NOFILE)
out["no_new_privs"] = [line.split()[1] for line in open("/proc/self/status")
                       if line.startswith("NoNewPrivs")][0]
print(json.dumps(out))
"""


def check_sandbox(root: Path, report: Report, svc: Service) -> None:
    """The emulated sandbox is real: a probe in it can write only where the unit allows."""
    _script, missed = sandbox(root, svc)
    report.facts["sandbox_not_applied"] = missed
    (root / "tmp/bench-visible").write_text("outside /tmp\n")
    proc = subprocess.run(service_argv(root, svc, [f"{VENV_BIN}/python", "-c", PROBE]),
                          capture_output=True, text=True, timeout=120, env={})
    (root / "tmp/bench-visible").unlink()
    try:
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        got = {"error": (proc.stdout + proc.stderr)[-1500:]}
    report.facts["sandbox_probe"] = got
    want_nofile = svc.keys.get("LimitNOFILE", [None])[-1]
    report.check(f"{svc.name}'s sandbox emulated (private mount namespace): read-only but "
                 "ReadWritePaths=, /root hidden, a private /tmp, NoNewPrivileges, LimitNOFILE",
                 got.get("/var/lib/checkpoint-central/probe") == "written" and
                 got.get("/tmp/probe") == "written" and got.get("tmp_empty") is True and
                 all(got.get(p) == "Read-only file system" for p in (
                     "/etc/checkpoint-kiosk/probe", "/opt/checkpoint-kiosk/probe",
                     "/usr/probe")) and got.get("/root") == "hidden" and
                 got.get("no_new_privs") == "1" and
                 (want_nofile is None or got.get("nofile") == [int(want_nofile)] * 2) and
                 not missed, {**got, "not_applied": missed})


# ---- running the block -------------------------------------------------------------------

def run_streamed(argv: list[str], log: Path, timeout: float,
                 secret: str = "") -> tuple[int | None, list]:
    """Run argv, its output timestamped line by line into ``log``, ``secret`` blanked out
    (sh -x shows the admin token as the env file is read); (exit, [(t, line)])."""
    lines: list[tuple[float, str]] = []
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={},
                            stdin=subprocess.DEVNULL, text=True, errors="replace")

    def read() -> None:
        assert proc.stdout is not None
        with log.open("w") as out:
            for line in proc.stdout:
                if secret:
                    line = line.replace(secret, "<admin token>")
                t = time.monotonic() - t0
                lines.append((t, line.rstrip("\n")))
                out.write(f"[{t:7.1f}] {line}")
                out.flush()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        rc: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
    reader.join(10)
    return rc, lines


def command_times(lines: list[tuple[float, str]], end: float) -> list[tuple[float, str]]:
    """Seconds each traced top-level command took (``sh -x``'s '+ ' lines), slowest first."""
    starts = [(t, line[2:]) for t, line in lines if line.startswith("+ ")]
    out = [(round(nxt - t, 1), cmd) for (t, cmd), (nxt, _c) in
           zip(starts, [*starts[1:], (end, "")], strict=True)]
    return sorted(out, reverse=True)


def run_block(root: Path, report: Report, log_dir: Path, script: str, secret: str) -> bool:
    path = root / "root/central-setup.sh"
    path.write_text(script)
    (log_dir / "central-setup.sh").write_text(script.replace(secret, "<admin token>"))
    # PIP_CERT: this machine reaches PyPI through a TLS proxy whose CA only its own bundle
    # has (as for install_chroot); a real machine needs nothing of the kind.
    env = {"PIP_CERT": HOST_CA} if (root / HOST_CA.lstrip("/")).is_file() else {}
    argv = chroot_argv(root, "sh", "-c", "cd /root && exec sh -e -x /root/central-setup.sh",
                       env=env)
    t = time.monotonic()
    rc, lines = run_streamed(argv, log_dir / "setup-block.log", BLOCK_TIMEOUT, secret)
    seconds = round(time.monotonic() - t, 1)
    report.timings["setup_block_s"] = seconds
    slow = [f"{s} s: {cmd[:120]}" for s, cmd in command_times(lines, seconds) if s >= 1]
    report.facts["setup_block_slow_commands"] = slow
    tail = "\n".join(line for _t, line in lines[-25:])
    return report.check(f"the setup block runs as written (sh -e -x, as root, from /root): "
                        f"exit {rc} in {seconds} s", rc == 0, tail if rc != 0 else
                        f"{len(lines)} lines of output; slowest: {slow[:3]}")


def in_root_sh(root: Path, command: str, timeout: float = 300,
               input: str | None = None) -> subprocess.CompletedProcess:
    """One line a technician types as root in a shell (from /root)."""
    return in_chroot(root, "sh", "-e", "-c", f"cd /root && {command}", timeout=timeout,
                     input=input)


# ---- after the block: what a technician checks and does ----------------------------------

def check_installed(root: Path, report: Report) -> None:
    system = root / UNIT_DIR.lstrip("/")
    units = (SERVER_UNIT, *ONESHOTS, *TIMERS)
    for unit in units:
        path = system / unit
        ok = path.is_file() and path.stat().st_uid == 0 and \
            stat.S_IMODE(path.stat().st_mode) & 0o022 == 0
        report.check(f"{UNIT_DIR}/{unit} where cp put it, root's, not group/other-writable",
                     ok, oct(stat.S_IMODE(path.stat().st_mode)) if path.exists() else "missing")
    for timer in TIMERS:
        link = system / "timers.target.wants" / timer
        report.check(f"{timer} enabled (timers.target.wants link; 'now' is the stand-in "
                     "run by hand below)", link.is_symlink(),
                     os.readlink(link) if link.is_symlink() else "no link")
    proc = in_chroot(root, "systemd-analyze", "verify", *(f"{UNIT_DIR}/{u}" for u in units))
    text = (proc.stdout + proc.stderr).strip()
    report.facts["systemd_analyze_verify"] = text[-2000:]
    report.check("systemd-analyze verify on the installed units (in the chroot)",
                 proc.returncode == 0 and not text, text[-2000:])
    env = root / "etc/checkpoint-kiosk/central.env"
    st = env.stat()
    group = in_chroot(root, "getent", "group", "checkpoint-central").stdout.split(":")
    report.check("central.env is 0640 root:checkpoint-central (the admin token is in it)",
                 stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0 and len(group) > 2
                 and st.st_gid == int(group[2]), oct(stat.S_IMODE(st.st_mode)))
    key = root / "var/lib/checkpoint-central/central-signing.key"
    report.check("the signing key was made by step 4b, 0600, owned by checkpoint-central",
                 key.is_file() and stat.S_IMODE(key.stat().st_mode) == 0o600,
                 oct(stat.S_IMODE(key.stat().st_mode)) if key.exists() else "missing")
    conf = root / "etc/postgresql/15/main/postgresql.conf"
    report.check("/etc/postgresql/15/main/conf.d exists and postgresql.conf includes it (the "
                 "doc's place for central.conf)", (root / "etc/postgresql/15/main/conf.d")
                 .is_dir() and conf.is_file() and
                 re.search(r"^include_dir = 'conf.d'", conf.read_text(), re.M) is not None)


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_listening(port: int, proc: subprocess.Popen | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.2)
    return False


def uid_of(root: Path, user: str) -> int:
    return int(in_chroot(root, "id", "-u", user).stdout.strip())


def processes_of(root: Path, uid: int) -> list[int]:
    found = []
    for pid in processes_in(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^Uid:\s+(\d+)", status, re.M)
        if m and int(m.group(1)) == uid:
            found.append(pid)
    return found


RECORD = """
import sys
from kiosk import config
from offline_queue.records import CheckIn
from offline_queue.store import Store
cfg = config.load(sys.argv[1])
with Store(cfg.store.path, device_id=cfg.device.id,
           checkpoint_id=cfg.device.checkpoint_id) as store:
    print(store.record(CheckIn(direction="in", kind="cccd", person_key="001085012345",
                               display={"name": "L* H***"}, decision="pass",
                               reasons=("ok",))))
    print(store.identities_waiting)
"""

LOGIN = """
import json, re, sys, requests
base, user, ca = sys.argv[1], sys.argv[2], sys.argv[3]
password = sys.stdin.readline().rstrip("\\n")
s = requests.Session()
s.verify = ca
page = s.get(base + "/dashboard/login", timeout=10)
m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
r = s.post(base + "/dashboard/login", timeout=30, allow_redirects=False,
           data={"username": user, "password": password,
                 "csrf_token": m.group(1) if m else "", "next": "/dashboard/activity"})
a = s.get(base + "/dashboard/activity?days=7", timeout=30)
session = [c.secure for c in s.cookies if c.name == "checkpoint_dashboard"]
print(json.dumps({"login_page": page.status_code, "csrf_found": m is not None,
                  "session_cookie_secure": bool(session) and all(session),
                  "login": r.status_code, "location": r.headers.get("Location"),
                  "activity": a.status_code, "activity_url": a.url,
                  "shows_checkpoint": "CB-TALUNG" in a.text}))
"""


# ---- the TLS reverse proxy ---------------------------------------------------------------

# openssl's settings for a throw-away CA and a server certificate naming HOST as browsers
# and Python require (subjectAltName, serverAuth; the CA marked as one).
OPENSSL_CNF = f"""[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:{HOST}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

MAKE_CERTIFICATES = f"""umask 077
mkdir -p {TLS_DIR}
cd {TLS_DIR}
openssl req -x509 -config ca.cnf -extensions ca -newkey ec -pkeyopt ec_paramgen_curve:P-256 \\
    -nodes -keyout ca.key -out ca.pem -days 2 \\
    -subj '/CN=checkpoint-kiosk bench throw-away province CA'
openssl req -new -config ca.cnf -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\
    -keyout central.key -out central.csr -subj '/CN={HOST}'
openssl x509 -req -in central.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \\
    -extfile ca.cnf -extensions server -out central-fullchain.pem
chmod 644 ca.pem central-fullchain.pem
openssl verify -CAfile ca.pem -purpose sslserver central-fullchain.pem
"""


def make_certificates(root: Path, report: Report) -> bool:
    """In the root, with its openssl: a throw-away CA, a certificate for HOST signed by it;
    HOST named 127.0.0.1 in the root's /etc/hosts (the chroot shares this machine's
    network, so nginx there is reached on 127.0.0.1)."""
    tls = root / TLS_DIR.lstrip("/")
    tls.mkdir(parents=True, exist_ok=True)
    (tls / "ca.cnf").write_text(OPENSSL_CNF)
    proc = in_chroot(root, "sh", "-e", "-c", MAKE_CERTIFICATES, timeout=120)
    hosts = root / "etc/hosts"
    text = hosts.read_text() if hosts.exists() else ""
    hosts.write_text(text + ("" if text.endswith("\n") or not text else "\n")
                     + f"127.0.0.1\t{HOST}\n")
    return report.check(f"a throw-away CA and a certificate for {HOST} made in the root "
                        f"(openssl), {HOST} -> 127.0.0.1 in its /etc/hosts",
                        proc.returncode == 0 and "central-fullchain.pem: OK" in proc.stdout,
                        (proc.stdout + proc.stderr).strip()[-1000:])


def run_proxy_block(root: Path, report: Report, log_dir: Path, doc: SetupDoc) -> bool:
    script = substitute_proxy(doc.proxy, f"{TLS_DIR}/central-fullchain.pem",
                              f"{TLS_DIR}/central.key")
    script, notes = adapt(script, stand_ins=PROXY_STAND_INS)
    report.facts["chroot_substitutions"] += notes
    (root / "root/central-proxy.sh").write_text(script)
    (log_dir / "central-proxy.sh").write_text(script)
    argv = chroot_argv(root, "sh", "-c", "cd /root && exec sh -e -x /root/central-proxy.sh")
    t = time.monotonic()
    rc, lines = run_streamed(argv, log_dir / "proxy-block.log", BLOCK_TIMEOUT)
    seconds = round(time.monotonic() - t, 1)
    report.timings["proxy_block_s"] = seconds
    slow = [f"{s} s: {cmd[:120]}" for s, cmd in command_times(lines, seconds) if s >= 1]
    report.facts["proxy_block_slow_commands"] = slow
    tail = "\n".join(line for _t, line in lines[-25:])
    if not report.check(f"the proxy block ({PROXY_HEADING[4:]}) runs as written, the "
                        f"certificate's and key's paths filled in (sh -e -x, as root): exit "
                        f"{rc} in {seconds} s", rc == 0,
                        tail if rc != 0 else f"{len(lines)} lines of output; slowest: "
                        f"{slow[:3]}"):
        return False
    link = root / "etc/systemd/system/multi-user.target.wants" / NGINX_UNIT
    key = root / "etc/ssl/private/checkpoint-central.key"
    report.check(f"{NGINX_UNIT} enabled at boot by its package (multi-user.target.wants), "
                 "the key installed 0600",
                 link.is_symlink() and key.is_file() and
                 stat.S_IMODE(key.stat().st_mode) == 0o600,
                 os.readlink(link) if link.is_symlink() else "no link")
    # The doc raises Debian's connection allowance for a province's herd: what nginx would
    # run with, as nginx itself reads it.
    dump = in_chroot(root, "nginx", "-T")
    report.check("nginx -T: worker_connections 8192, worker_rlimit_nofile 20000 and "
                 "keepalive_timeout 20s are in force",
                 dump.returncode == 0 and all(
                     re.search(rf"^\s*{setting}\s*;", dump.stdout, re.M) for setting in (
                         r"worker_connections\s+8192", r"worker_rlimit_nofile\s+20000",
                         r"keepalive_timeout\s+20s")),
                 dump.stderr[-500:] if dump.returncode else "")
    return True


def nginx_processes(root: Path) -> list[int]:
    found = []
    for pid in processes_in(root):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "nginx":
                found.append(pid)
    return found


def start_nginx(root: Path, report: Report, log_dir: Path) -> Service | None:
    """nginx started as its unit starts it: ExecStartPre= (nginx -t) and ExecStart= (it
    daemonizes, Type=forking), as written in the root's nginx.service."""
    for port in (80, 443):
        free = port_free(port, "0.0.0.0")
        if not report.check(f"port {port} is free on this machine (the chroot shares its "
                            "network)", free, "" if free else f"something listens on {port}"):
            return None
    svc = service(root, NGINX_UNIT, NGINX_UNIT_DIR)
    env = {**CHROOT_ENV, **svc.env}
    lines = [*svc.keys.get("ExecStartPre", []), *svc.keys.get("ExecStart", [])]
    report.facts["nginx_exec"] = lines
    t = time.monotonic()
    out, ok = [], bool(lines) and not svc.missing
    for line in lines:
        argv, _ = exec_argv(line, env)
        proc = in_chroot(root, *argv, env=svc.env, timeout=60)
        out.append(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
        ok = ok and (proc.returncode == 0 or line.startswith("-"))
    (log_dir / "nginx-start.log").write_text("\n".join(out))
    up = ok and all(wait_listening(port, None, 30) for port in (443, 80))
    report.timings["nginx_listening_s"] = round(time.monotonic() - t, 1)
    report.check(f"{NGINX_UNIT}'s ExecStartPre= and ExecStart= as written (in the root, as "
                 "root): nginx listens on 443 and 80", up, "\n".join(out)[-1500:])
    return svc if up else None


def stop_nginx(root: Path, report: Report, svc: Service) -> None:
    t = time.monotonic()
    out = []
    for line in svc.keys.get("ExecStop", []):
        argv, _ = exec_argv(line, {**CHROOT_ENV, **svc.env})
        proc = in_chroot(root, *argv, env=svc.env, timeout=60)
        out.append(f"$ {' '.join(argv)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
    deadline = time.monotonic() + 10
    while nginx_processes(root) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = nginx_processes(root)
    report.timings["nginx_stop_s"] = round(time.monotonic() - t, 1)
    report.check(f"{NGINX_UNIT}'s ExecStop= (in the root): no nginx process left",
                 bool(out) and not left, "\n".join(out)[-800:] + f"; {len(left)} left")


TLS_PROBE = """
import http.client, json, socket, ssl, sys
from offline_queue.central.throttle import LIMIT
host, ca, client = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
out = {"throttle_limit": LIMIT}

def ask(method, path, *, tls=True, source="127.0.0.1", headers=None):
    if tls:
        conn = http.client.HTTPSConnection(host, 443, timeout=10, context=ctx,
                                           source_address=(source, 0))
    else:
        conn = http.client.HTTPConnection(host, 80, timeout=10, source_address=(source, 0))
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None,
                     headers=headers or {})
        r = conn.getresponse()
        body = r.read()
        got = {"status": r.status, "retry_after": r.getheader("Retry-After"),
               "location": r.getheader("Location"), "server": r.getheader("Server")}
        if tls:
            got["tls"] = conn.sock.version() if conn.sock else None
        if path == "/v1/health":
            got["body"] = body.decode(errors="replace")[:200]
        return got
    finally:
        conn.close()

out["health"] = ask("GET", "/v1/health")
out["http_get"] = ask("GET", "/v1/health", tls=False)
out["http_post"] = ask("POST", "/v1/checkins", tls=False,
                       headers={"Content-Type": "application/json"})
# Wrong device tokens from one client address, each with a forged X-Forwarded-For.  Each
# worker process keeps its own share of the budget (LIMIT // workers) and the kernel spreads
# nginx's connections over them: at most LIMIT are answered 401 in all, then only 429.
wrong = [ask("GET", "/v1/documents/policy", source=client,
             headers={"Authorization": "Bearer dev-wrong",
                      "X-Forwarded-For": f"198.51.100.{i % 250}"})
         for i in range(3 * LIMIT)]
out["wrong_statuses"] = [w["status"] for w in wrong]
out["last_retry_after"] = wrong[-1]["retry_after"]
# The proxy's own address (every connection to the central comes from 127.0.0.1) and any
# other client are not held up by them.
out["other_client"] = ask("GET", "/v1/documents/policy",
                          headers={"Authorization": "Bearer dev-wrong"})["status"]
print(json.dumps(out))
"""


def through_proxy(root: Path, report: Report, ca: str) -> None:
    """http redirected, https served with the CA, the throttle keyed on the address nginx
    forwarded (not nginx's own 127.0.0.1), a forged X-Forwarded-For of no use."""
    proc = in_chroot(root, f"{VENV_BIN}/python", "-c", TLS_PROBE, HOST, ca, CLIENT_ADDRESS,
                     timeout=120)
    try:
        got = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        got = {"error": (proc.stdout + proc.stderr)[-1500:]}
    report.facts["through_proxy"] = got
    health = got.get("health", {})
    report.check(f"https://{HOST}/v1/health through nginx, verified against the CA: 200 "
                 "over TLS 1.2/1.3", health.get("status") == 200 and
                 health.get("tls") in ("TLSv1.2", "TLSv1.3") and '"ok"' in
                 str(health.get("body")), health)
    redirects = [got.get("http_get", {}), got.get("http_post", {})]
    report.check(f"http://{HOST}: GET and POST /v1/checkins answered 301 to https by nginx, "
                 "nothing proxied", all(r.get("status") == 301 and str(r.get("location", ""))
                                        .startswith(f"https://{HOST}/") for r in redirects),
                 redirects)
    limit = got.get("throttle_limit")
    statuses = got.get("wrong_statuses", [])
    report.check(f"the central throttles the client address nginx forwarded: of "
                 f"{3 * (limit or 0)} wrong tokens from {CLIENT_ADDRESS} (each with a forged "
                 f"X-Forwarded-For) at most {limit} answered 401, then 429 with Retry-After "
                 "(the last 5), while a client on 127.0.0.1 (nginx's own address toward the "
                 "central) still gets 401",
                 isinstance(limit, int) and set(statuses) == {401, 429} and
                 statuses.count(401) <= limit and statuses[-5:] == [429] * 5 and
                 bool(got.get("last_retry_after")) and got.get("other_client") == 401,
                 {"401": statuses.count(401), "first_429": statuses.index(429) + 1
                  if 429 in statuses else None,
                  **{k: got.get(k) for k in ("last_retry_after", "other_client", "error")}})
    log = root / "var/log/nginx/access.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    report.facts["nginx_access_log_tail"] = text.splitlines()[-3:]
    report.check(f"nginx's access log names the client {CLIENT_ADDRESS}",
                 f"{CLIENT_ADDRESS} - " in text, text[-600:])



def technician(root: Path, report: Report, log_dir: Path, doc: SetupDoc) -> None:
    enable, enrol = serve_commands(doc)
    command, notes = adapt(enable, block=False)
    report.facts["chroot_substitutions"] += notes
    proc = in_root_sh(root, command)
    link = root / UNIT_DIR.lstrip("/") / "multi-user.target.wants" / SERVER_UNIT
    said = (proc.stdout + proc.stderr).strip()
    report.facts["systemctl_enable_now_server_said"] = said
    report.check(f"'{enable}' (Serve it): exit 0 and enabled (multi-user.target.wants link)",
                 proc.returncode == 0 and link.is_symlink(), said[-800:])

    server = service(root, SERVER_UNIT)
    report.facts["server_exec_start"] = server.commands
    check_sandbox(root, report, server)
    report.check(f"{SERVER_UNIT}: every ${{VAR}} of ExecStart is set by its environment",
                 not server.missing and len(server.commands) == 1, server.missing)
    free = port_free(PORT)
    if not report.check(f"port {PORT} is free on this machine (the chroot shares its network)",
                        free, "" if free else f"something listens on 127.0.0.1:{PORT} already"):
        return
    t = time.monotonic()
    log = (log_dir / "server.log").open("w")
    proc_server = subprocess.Popen(service_argv(root, server, server.commands[0]), env={},
                                   stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    try:
        up = wait_listening(PORT, proc_server, 120)
        report.timings["server_listening_s"] = round(time.monotonic() - t, 1)
        if not report.check(f"the server unit's ExecStart, run as {server.user} with its "
                            f"environment, listens on 127.0.0.1:{PORT}", up,
                            (log_dir / "server.log").read_text()[-2000:]):
            return
        nginx = start_nginx(root, report, log_dir)
        try:
            if nginx is not None:
                with_server(root, report, log_dir, enrol)
        finally:
            if nginx is not None or nginx_processes(root):
                stop_nginx(root, report, nginx or service(root, NGINX_UNIT, NGINX_UNIT_DIR))
    finally:
        stop_server(root, report, proc_server, server)
        log.close()
    text = (log_dir / "server.log").read_text(errors="replace")
    report.check("the server's log (the journal's under systemd): one record a line with its "
                 "level, the listening and the enrolment, no error or traceback",
                 "INFO offline_queue.central.server: central server listening" in text and
                 "INFO offline_queue.central.app: enrolled device" in text and
                 "Traceback" not in text and "ERROR" not in text, text[-1500:])
    oneshots(root, report, log_dir)


def central_cli(root: Path, *args: str, input: str | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess:
    """checkpoint-kiosk central as checkpoint-central with central.env loaded (as 4b does)."""
    line = ("set -a; . /etc/checkpoint-kiosk/central.env; set +a; "
            "exec runuser -u checkpoint-central -- env "
            "CHECKPOINT_CENTRAL_KEY_FILE=\"$CHECKPOINT_CENTRAL_KEY_FILE\" "
            f"{VENV_BIN}/checkpoint-kiosk central --db \"$CENTRAL_DB\" "
            + " ".join(shlex.quote(a) for a in args))
    return in_root_sh(root, line, timeout=timeout, input=input)


def with_server(root: Path, report: Report, log_dir: Path, enrol: str) -> None:
    # Through the proxy: https to a host name, never the kiosk's plain-http exception for
    # its own machine (127.0.0.1, ::1, localhost).
    base = f"https://{HOST}"
    kiosk = f"{VENV_BIN}/checkpoint-kiosk"
    # The doc's enrol-token line, as written, with the environment file loaded.
    t = time.monotonic()
    proc = in_root_sh(root, f"set -a; . /etc/checkpoint-kiosk/central.env; set +a; {enrol}")
    token = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    report.check(f"'{enrol}' (Serve it, env file loaded, as root): prints a token",
                 proc.returncode == 0 and len(token) >= 16, (proc.stdout + proc.stderr)[-1500:])
    if proc.returncode != 0 or not token:
        return
    proc = central_cli(root, "key")
    fingerprint = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if not report.check("central key: a 64-hex-digit fingerprint",
                        re.fullmatch(r"[0-9a-f]{64}", fingerprint) is not None,
                        (proc.stdout + proc.stderr)[-800:]):
        return
    report.facts["central_key"] = fingerprint
    kdir = root / KIOSK_DIR.lstrip("/")
    kdir.mkdir(parents=True, exist_ok=True)
    config = f"{KIOSK_DIR}/kiosk.toml"
    (kdir / "kiosk.toml").write_text(f'[store]\npath = "{KIOSK_DIR}/checkins.db"\n')
    ca = f"{KIOSK_DIR}/province-ca.pem"  # the CA's certificate given to the kiosk, not its key
    shutil.copyfile(root / TLS_DIR.lstrip("/") / "ca.pem", kdir / "province-ca.pem")

    def provision(server: str, *extra: str, folder: str = KIOSK_DIR
                  ) -> subprocess.CompletedProcess:
        (root / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
        return in_chroot(root, kiosk, "provision", "--server", server, "--token", "-",
                         "--checkpoint", "CB-TALUNG", "--name", "Tà Lùng",
                         "--central-key", fingerprint, "--config", f"{folder}/kiosk.toml",
                         "--state-dir", f"{folder}/state", "--owner", "", "--json", *extra,
                         input=token + "\n", timeout=120)

    # Plain http to the host name is the kiosk's own refusal, before any connection.
    proc = provision(f"http://{HOST}", folder=f"{KIOSK_DIR}-http")
    said = (proc.stdout + proc.stderr).strip()
    report.facts["provision_plain_http"] = said[-800:]
    report.check(f"provision --server http://{HOST} is refused by the kiosk (plain http to a "
                 "host that is not this machine)",
                 proc.returncode != 0 and "plain http" in said and "Traceback" not in said,
                 said[-800:])
    # Without the province's CA the kiosk refuses the certificate, readably, and the
    # enrolment token is not spent (the same token enrols below).
    proc = provision(base, folder=f"{KIOSK_DIR}-noca")
    said = (proc.stdout + proc.stderr).strip()
    report.facts["provision_without_ca_bundle"] = said[-1500:]
    report.check("provision without --ca-bundle refuses the certificate with a readable error "
                 "(no traceback), the token not spent",
                 proc.returncode != 0 and "certificate verify failed" in said and
                 "Traceback" not in said, said[-1500:])
    proc = provision(base, "--ca-bundle", ca)
    report.facts["provision"] = (proc.stdout + proc.stderr).strip()[-1500:]
    written = (kdir / "kiosk.toml").read_text()
    report.check(f"checkpoint-kiosk provision --server {base} --ca-bundle (the throw-away CA) "
                 "--central-key, in a scratch folder: enrolled, sync.ca_bundle and the https "
                 "URL in its config",
                 proc.returncode == 0 and f'ca_bundle = "{ca}"' in written and
                 f'server_url = "{base}"' in written, (proc.stdout + proc.stderr)[-1500:])
    if proc.returncode != 0:
        return
    sync = [kiosk, "sync", "--once", "--config", config]
    first = in_chroot(root, *sync, timeout=120)
    report.check("the kiosk's first sync --once over https through nginx (the central's "
                 "documents and keys)",
                 first.returncode == 0, (first.stdout + first.stderr)[-1500:])
    rec = in_chroot(root, f"{VENV_BIN}/python", "-c", RECORD, config, timeout=120)
    out = rec.stdout.split()
    report.check("a check-in recorded in the kiosk's store, its identity sealed at once",
                 rec.returncode == 0 and len(out) == 2 and out[1] == "0",
                 (rec.stdout + rec.stderr)[-1500:])
    second = in_chroot(root, *sync, timeout=120)
    delivered = '"delivered": 1' in second.stdout
    report.check("checkpoint-kiosk sync --once delivers it over https (exit 0, delivered 1)",
                 second.returncode == 0 and delivered, (second.stdout + second.stderr)[-1500:])
    report.timings["enrol_provision_record_sync_s"] = round(time.monotonic() - t, 1)
    proc = central_cli(root, "report", "--days", "7", "--format", "json")
    try:
        got = json.loads(proc.stdout)
        row = next((c for c in got["checkpoints"] if c["id"] == "CB-TALUNG"), None)
    except (ValueError, KeyError, TypeError):
        got, row = None, None
    report.check("central report --days 7 --format json: CB-TALUNG has the 1 scan",
                 proc.returncode == 0 and row is not None and row["scans"] == 1,
                 row if row is not None else (proc.stdout + proc.stderr)[-1500:])
    # docs/central.md's "The first administrator" block as written, env file loaded as in
    # 4b, the password as one line of stdin (no terminal: the doc says so too).
    password = secrets.token_urlsafe(18)
    block = first_admin_block(DOC.read_text())
    proc = in_root_sh(root, f"set -a; . /etc/checkpoint-kiosk/central.env; set +a\n{block}",
                      input=password + "\n")
    report.check("'The first administrator' block (Dashboard) as written: user add admin "
                 "--role administrator, the password on stdin",
                 proc.returncode == 0 and "added admin (administrator)" in proc.stdout,
                 (proc.stdout + proc.stderr)[-800:])
    proc = in_chroot(root, f"{VENV_BIN}/python", "-c", LOGIN, base, ADMIN, ca,
                     input=password + "\n", timeout=120)
    try:
        login = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        login = {"error": (proc.stdout + proc.stderr)[-1500:]}
    report.facts["dashboard"] = login
    report.check("dashboard over https: login page, log in as the administrator, the "
                 "activity page shows CB-TALUNG; the session cookie is Secure (the central "
                 "trusts nginx's X-Forwarded-Proto)",
                 login.get("login_page") == 200 and login.get("login") == 303 and
                 login.get("activity") == 200 and bool(login.get("shows_checkpoint")) and
                 login.get("session_cookie_secure") is True, login)
    through_proxy(root, report, ca)


def stop_server(root: Path, report: Report, proc: subprocess.Popen, svc: Service) -> None:
    uid = uid_of(root, svc.user)
    workers = processes_of(root, uid)
    report.facts["server_processes"] = len(workers)
    t = time.monotonic()
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc: int | None = proc.wait(timeout=30)  # TimeoutStopSec=30
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = None
    deadline = time.monotonic() + 30
    while processes_of(root, uid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_of(root, uid)
    seconds = round(time.monotonic() - t, 1)
    report.timings["server_stop_s"] = seconds
    report.check(f"SIGTERM: the server ({len(workers)} processes) exits 0 within "
                 "TimeoutStopSec=30 and leaves no process", rc == 0 and bool(workers) and
                 not left,
                 f"exit {rc}, {len(left)} left, {seconds} s")


def oneshots(root: Path, report: Report, log_dir: Path) -> None:
    for name in ONESHOTS:
        svc = service(root, name)
        report.check(f"{name}: every ${{VAR}} of ExecStart is set by its environment",
                     not svc.missing, svc.missing)
        for i, command in enumerate(svc.commands, 1):
            t = time.monotonic()
            proc = subprocess.run(service_argv(root, svc, command), capture_output=True,
                                  text=True, timeout=300, env={})
            report.timings[f"{name.split('.')[0]}_{i}_s"] = round(time.monotonic() - t, 1)
            (log_dir / f"{name}-{i}.log").write_text(proc.stdout + proc.stderr)
            report.check(f"{name}: ExecStart {i} of {len(svc.commands)} by hand as {svc.user} "
                         f"exits 0 ({' '.join(command[1:])[:100]})", proc.returncode == 0,
                         (proc.stdout + proc.stderr).strip()[-1000:])
    reports = root / "var/lib/checkpoint-central/reports"
    made = sorted(p.name for p in reports.glob("activity-latest.*")) if reports.is_dir() else []
    report.check("the weekly report wrote activity-latest.csv and .html in REPORT_DIR",
                 made == ["activity-latest.csv", "activity-latest.html"], made)


# ---- the whole run -----------------------------------------------------------------------

def run(root: Path, cache: Path, mirror: str, log_dir: Path, report: Report) -> None:
    doc = setup_section(DOC.read_text())
    serve_commands(doc)  # fails before anything is built if the paragraph lost them
    if not doc.proxy:
        raise DocError(f"docs/central.md has no ```sh block under {PROXY_HEADING!r}; the "
                       "bench proves the TLS reverse proxy with it")
    adapt(substitute_proxy(doc.proxy, "/c", "/k"), stand_ins=PROXY_STAND_INS)
    first_admin_block(DOC.read_text())
    token = secrets.token_hex(32)
    script = substitute(doc.block, CHECKOUT, token)
    script, notes = adapt(script)
    report.facts["chroot_substitutions"] = [
        *notes,
        "policy-rc.d answers 101: no package script starts a daemon in the chroot",
        "apt lists removed from the root (a cloud image or container ships without them)",
        f"PIP_CERT={HOST_CA} in the block's environment: this machine's TLS proxy to PyPI",
        "the units' ExecStart lines run with their sandbox emulated, not by systemd: a "
        "private mount namespace (ProtectSystem=strict, ReadWritePaths=, ProtectHome=yes, "
        "PrivateTmp=yes), setpriv --no-new-privs, prlimit for LimitNOFILE=",
    ]
    arch = debian_arch()
    bootstrap(root, cache, mirror, arch, None, report)
    prepare_root(root)
    report.facts["source"] = copy_source(root, REPO, CHECKOUT)
    with mounted(root, cache):
        try:
            if run_block(root, report, log_dir, script, token):
                check_installed(root, report)
                if make_certificates(root, report) and \
                        run_proxy_block(root, report, log_dir, doc):
                    technician(root, report, log_dir, doc)
        finally:
            if (root / "usr/bin/pg_ctlcluster").exists():
                in_chroot(root, "pg_ctlcluster", "15", "main", "stop", timeout=120)


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
    root = args.root.resolve()
    problem = preflight("central_setup", root)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    unwind_on_signals()

    report = Report()
    report.facts["host"] = f"{platform.system()} {platform.machine()}"
    log_dir = root.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    t = time.monotonic()
    try:
        run(root, args.cache, args.mirror or detect_mirror(), log_dir, report)
    except (ChrootError, DocError, OSError, subprocess.SubprocessError) as e:
        report.check("harness", False, f"{type(e).__name__}: {e}")
    finally:
        release(root)
        left = mounts_under(root)
        report.check("nothing left mounted under the root, no process running in it",
                     not left and not processes_in(root), left)
        report.timings["total_s"] = round(time.monotonic() - t, 1)
        report.facts["logs"] = str(log_dir)
        if not left and not args.keep and root.exists():
            shutil.rmtree(root)
    return finish("central_setup", report, args.report, log_dir)


if __name__ == "__main__":
    sys.exit(main())
