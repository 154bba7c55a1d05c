"""The day's rig: the kiosk in its own process group, the central as a province runs it,
and the kiosk's disk on a small tmpfs.

Used by ``bench.day``; the kiosk side is ``bench.day_kiosk``.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.day import Day

REPO = Path(__file__).resolve().parent.parent

# --- the kiosk process --------------------------------------------------------------------


class KioskProcess:
    """``bench.day_kiosk`` in its own process group, commanded over its stdin."""

    def __init__(self, day: Day) -> None:
        self.day = day
        self.proc: subprocess.Popen | None = None
        self.events: queue.Queue = queue.Queue()
        self.next_id = 0
        self.starts = 0
        self.log_paths: list[Path] = []

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> bool:
        """Start the kiosk; True once its screen is up, False if it exited instead."""
        self.starts += 1
        started = time.monotonic()
        try:
            return self._start(timeout)
        finally:
            self.day.timing["start"] += time.monotonic() - started

    def _start(self, timeout: float) -> bool:
        log_path = self.day.work / f"kiosk-{self.starts:03d}.log"
        self.log_paths.append(log_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHECKPOINT_KIOSK_")}
        env.update(SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy",
                   PYGAME_HIDE_SUPPORT_PROMPT="1")
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.day_kiosk", "--config", str(self.day.config),
                 "--state-dir", str(self.day.state_dir),
                 "--sync-options", json.dumps(self.day.sync_options)],
                cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True)
        self.events = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.events), daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self._next(deadline)
            if event is None or event["ev"] == "eof":
                self._exited()
                return False
            if event["ev"] == "ready":
                return True
        self.kill()
        return False

    @staticmethod
    def _read(proc: subprocess.Popen, events: queue.Queue) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                events.put(json.loads(line))
            except ValueError:
                events.put({"ev": "garbled", "line": line[:200].decode("utf-8", "replace")})
        events.put({"ev": "eof"})

    def _next(self, deadline: float) -> dict | None:
        try:
            event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None
        self.day.on_event(event)
        return event

    def send(self, op: str, *, timeout: float = 15.0, **fields: Any) -> dict | None:
        """One command; its acknowledgement (None if the kiosk died or hung)."""
        if not self.alive:
            return None
        self.next_id += 1
        command = {"id": self.next_id, "op": op, **fields}
        try:
            assert self.proc is not None and self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(command) + "\n").encode())
            self.proc.stdin.flush()
        except OSError:
            self._exited()
            return None
        deadline = time.monotonic() + timeout
        while True:
            event = self._next(deadline)
            if event is None:
                # The screen stopped turning: systemd's watchdog would kill and restart it.
                self.day.note("hang", f"no answer to {op} within {timeout:.0f} s: killed")
                self.day.hangs += 1
                self.kill()
                return None
            if event["ev"] == "eof":
                self._exited()
                return None
            if event["ev"] == "ack" and event["id"] == command["id"]:
                return event

    def drain(self, seconds: float = 0.0) -> None:
        """Take the observations that arrived meanwhile (results reported later)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                event = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return
            self.day.on_event(event)
            if event["ev"] == "eof":
                self._exited()
                return

    def _exited(self) -> None:
        """The kiosk ended on its own: note how (systemd would start it again)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            _kill_group(proc)
        self.drain()
        self.day.kiosk_exited(proc.returncode)

    def kill(self) -> None:
        """``kill -9`` the kiosk's whole process group."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        _kill_group(proc)
        self.drain()

    def stop(self) -> int | None:
        """SIGTERM, as systemd stops the service; the exit status."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.day.note("stop", "the kiosk did not stop within 15 s of SIGTERM")
            _kill_group(proc)
            code = None
        self.drain(0.2)
        return code


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError):
            if stream is not None:
                stream.close()


# --- the central ----------------------------------------------------------------------------


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``: pid -> their start time (to tell a reused pid)."""
    found: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found[int(stat.parent.name)] = fields[19]
    return found


def _alive(pid: int, started: str) -> bool:
    """Is the process ``pid`` that started at ``started`` still there (not a zombie)?"""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


class CentralProcess:
    """``checkpoint-kiosk central`` as a province runs it: the real command in a child
    process (its own session), forked workers on one SO_REUSEPORT port and the status
    republisher beside them, a key file whose ``.sealing`` sibling holds the keys kiosks
    seal to.  Its stdout's first line gives the port (``--port 0``); its stderr is its log.
    ``stop`` is systemd's: SIGTERM, then whether it exited 0 and left no worker behind."""

    def __init__(self, work: Path, target: str, *, workers: int = 2,
                 status_every: float | None = None) -> None:
        self.work = work
        self.target = target
        self.workers = workers
        self.status_every = status_every
        self.key_file = work / "central.key"
        self.out_path = work / "central.out"
        self.log_path = work / "central.log"
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.host = "127.0.0.1"
        self.port = 0
        self.seen_children: dict[int, str] = {}

    def start(self, timeout: float = 60.0) -> CentralProcess:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CHECKPOINT_KIOSK_", "CHECKPOINT_CENTRAL_"))}
        command = [sys.executable, "-m", "kiosk", "central", "--db", self.target,
                   "--host", self.host, "--port", "0", "--workers", str(self.workers),
                   "--key-file", str(self.key_file)]
        if self.status_every is not None:
            command += ["--status-every", f"{self.status_every:g}"]
        # Run in its own folder, as the shipped unit does (WorkingDirectory=).
        with open(self.out_path, "wb") as out, open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(command, cwd=self.work, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            first = self.out_path.read_text(encoding="utf-8", errors="replace")
            if first.startswith("listening on ") and first.endswith("\n"):
                self.url = first.splitlines()[0].removeprefix("listening on ").strip()
                self.port = int(self.url.rsplit(":", 1)[1])
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"the central exited with status {self.proc.returncode} "
                                   f"before listening: {self.log_tail()}")
            time.sleep(0.05)
        else:
            self.kill()
            raise RuntimeError(f"the central did not print 'listening on' in {timeout:g} s: "
                               f"{self.log_tail()}")
        # The supervisor forks its workers and the republisher once listening.
        want = self.workers + 1
        while len(self.children()) < want and time.monotonic() < deadline:
            time.sleep(0.05)
        return self

    def children(self) -> dict[int, str]:
        """Its worker and republisher processes now (remembered for ``stop``)."""
        if self.proc is None:
            return {}
        found = _children(self.proc.pid)
        self.seen_children.update(found)
        return found

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 30.0) -> dict[str, Any]:
        """SIGTERM to the supervisor, as systemd stops the unit (KillMode=mixed); its exit
        status, the seconds it took, and the children still running after it exited (the
        workers and the republisher seen during the day; any left are then killed)."""
        if self.proc is None:
            return {"code": None, "seconds": 0.0, "left": []}
        self.children()
        proc, self.proc = self.proc, None
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.monotonic() - started
        time.sleep(0.2)  # a child that outlived its parent would be re-parented by now
        left = [pid for pid, started_at in self.seen_children.items()
                if _alive(pid, started_at)]
        if code is None or left:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        return {"code": code, "seconds": seconds, "left": left,
                "children seen": len(self.seen_children)}

    def kill(self) -> None:
        """The whole session killed (a failed day's cleanup)."""
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


# --- the disk -------------------------------------------------------------------------------


class Disk:
    """The kiosk's state folder on its own small tmpfs, so it can be filled and freed."""

    def __init__(self, path: Path, size_mb: int = 48, *, mount: bool = True) -> None:
        self.path = path
        self.mounted = False
        self.ballast = path / "ballast.bin"
        path.mkdir(parents=True, exist_ok=True)
        if mount and os.geteuid() == 0 and shutil.which("mount"):
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700",
                                   "tmpfs", str(path)], capture_output=True, timeout=20)
            self.mounted = done.returncode == 0
        self.full = False

    def fill(self) -> bool:
        if not self.mounted:
            return False
        chunk = b"\0" * 2**20
        try:
            with open(self.ballast, "ab", buffering=0) as f:
                for size in (2**20, 2**16, 2**12, 512):
                    while True:
                        try:
                            f.write(chunk[:size])
                        except OSError:
                            break
        except OSError:
            pass  # already full: the ballast file itself cannot be created
        self.full = True
        return True

    def usage(self) -> str:
        files = {p.name: p.stat().st_size for p in self.path.iterdir() if p.is_file()}
        return f"{shutil.disk_usage(self.path).free // 1024} KiB free; files {files}"

    def free(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.ballast.unlink()
        self.full = False

    def close(self) -> None:
        self.free()
        if self.mounted:
            for _ in range(10):
                done = subprocess.run(["umount", str(self.path)], capture_output=True,
                                      timeout=20)
                if done.returncode == 0:
                    break
                time.sleep(0.5)
            else:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True,
                               timeout=20)
            self.mounted = False




class ScannerPort:
    """The day's handheld 2D scanner in USB COM mode: a pty pair behind a stable path, the
    harness holding the cable's far end.  ``unplug`` closes that end and removes the path
    (the kiosk sees the device vanish); ``plug`` makes a new pty at the same path."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.plugged = False
        self.plug()

    def plug(self) -> None:
        import tty

        master, slave = os.openpty()
        tty.setraw(slave)  # a CDC-ACM port: no echo, no CR/LF translation
        path = os.ttyname(slave)
        os.close(slave)
        self.master = master
        self.link.unlink(missing_ok=True)
        self.link.symlink_to(path)
        self.plugged = True

    def unplug(self) -> None:
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        self.link.unlink(missing_ok=True)
        self.plugged = False

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view):]

    def close(self) -> None:
        self.unplug()
