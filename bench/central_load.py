"""The harness of the central's load benches (bench/central_herd.py, bench/central_ingest.py).

- :func:`start_server`: the central as a province runs it (``offline_queue.central.server.
  serve``: worker processes sharing one listening socket) in a forked child of this
  process, so that the load client never shares a Python interpreter (and its lock)
  with the server;
- :func:`run_clients`: the load client, split over forked processes, each with its own
  asyncio loop; each returns its figures as JSON over a pipe;
- :func:`enrol_devices`: N checkpoints and their devices straight in the database (one
  transaction: the benches measure ingest, not enrolment);
- CPU time of each side (``/proc``: user + system of the process, its live threads and
  reaped children), so that the figures say where the two cores went.

Linux only (fork, ``/proc``), 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from offline_queue.central import db as central_db  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid``, its reaped children and its live child processes."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[0] is the state (field 3); utime, stime, cutime, cstime are fields 14-17.
    total += sum(int(f) for f in fields[11:15]) / TICK
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = task.read_text().split()
        except OSError:
            continue
        total += sum(cpu_seconds(int(child)) for child in children)
    return total


def fork(work: Callable[[], Any]) -> tuple[int, int]:
    """Run ``work`` in a forked child; (pid, read end of a pipe carrying its JSON result)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        code = 0
        try:
            result = json.dumps(work()).encode()
            with os.fdopen(write_end, "wb") as out:
                out.write(result)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def collect(pid: int, read_end: int) -> tuple[Any, float]:
    """The JSON result of a :func:`fork` child and its CPU seconds (waits for it);
    raises if it failed."""
    with os.fdopen(read_end, "rb") as source:
        data = source.read()
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        raise RuntimeError(f"load process {pid} failed (exit {os.waitstatus_to_exitcode(status)})")
    return json.loads(data), usage.ru_utime + usage.ru_stime


class Server:
    """The central in a child process (``serve``); ``url``, ``cpu()``, ``stop()``."""

    def __init__(self, target: str, **options: Any) -> None:
        from offline_queue.central.server import serve

        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            code = 0
            try:
                import logging

                logging.basicConfig(level=logging.WARNING)
                # waitress warns at every queued task; the benches count the 503s.
                logging.getLogger("waitress.queue").setLevel(logging.ERROR)

                def listening(url: str) -> None:
                    os.write(write_end, url.encode() + b"\n")
                    os.close(write_end)

                serve(target, on_listening=listening, **options)
            except BaseException:
                traceback.print_exc()
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as source:
            line = source.readline().decode().strip()
        if not line:
            os.waitpid(pid, 0)
            raise RuntimeError("the central did not start (see the error above)")
        self.pid = pid
        self.url = line
        host, _, port = line.removeprefix("http://").rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> float:
        """Stop it; its total CPU seconds (workers included)."""
        os.kill(self.pid, signal.SIGTERM)
        _, status, usage = os.wait4(self.pid, 0)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        except (ProcessLookupError, ChildProcessError):
            pass


def enrol_devices(target: str, count: int) -> list[dict[str, str]]:
    """``count`` checkpoints, one enrolled device each: [{device_id, checkpoint_id,
    device_token}]."""
    devices = []
    with central_db.connect(target) as conn, conn.atomic():
        for i in range(count):
            checkpoint = f"CP-{i:05d}"
            token = central_db.create_enrolment_token(conn, checkpoint_id=checkpoint,
                                                      name=f"checkpoint {i}")
            result = central_db.enrol(conn, token)
            assert result is not None
            device, device_token = result
            devices.append({"device_id": device.id, "checkpoint_id": device.checkpoint_id,
                            "device_token": device_token})
    return devices


def postgres_cpu(pg: Any) -> float:
    """CPU seconds of a tests/pgserver.py server so far (the postmaster, its live
    processes and the backends already gone)."""
    return cpu_seconds(pg._proc.pid)


def stored_counts(target: str) -> dict[str, int]:
    """Rows, distinct ids, and the fewest/most rows of one device in ``scans``."""
    with central_db.connect(target) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM scans"
                                      ).fetchone()
        low, high = conn.execute(
            "SELECT coalesce(min(n), 0), coalesce(max(n), 0) FROM "
            "(SELECT count(*) AS n FROM scans GROUP BY device) AS per_device").fetchone()
    return {"stored": rows, "distinct_stored": distinct, "device_min": low,
            "device_max": high}


def machine() -> dict[str, Any]:
    """The conditions of a run: cores and the load average when it started."""
    return {"cores": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
            "at": time.strftime("%Y-%m-%d %H:%M")}
