"""The harness of the central's load benches (bench/central_herd.py, bench/central_ingest.py).

- :class:`Server`: the central as ``checkpoint-kiosk central`` runs it (``offline_queue.
  central.server.serve``: worker processes on an SO_REUSEPORT group, the status
  republisher process beside them, the kiosk's document validators and the declaration
  folder, a key file with its sealing keys) in a forked child of this process, so that
  the load client never shares a Python interpreter (and its lock) with the server;
- :func:`sealing_key`: the central's sealing key as a kiosk fetches it (``GET /v1/keys``,
  its signature checked);
- :func:`kiosk_rows`: check-ins as a kiosk of today sends them (``wire.from_row`` of its
  store's rows): the identity sealed to the central's key (``person_key`` null, ``sealed``)
  or, for an older kiosk, in clear; a share of declarations and overrides, with an officer;
- :func:`fork` / :func:`fork_staged` and :func:`collect`: the load client, split over
  forked processes, each with its own asyncio loop; each returns its figures as JSON over
  a pipe.  A staged child prepares its rows (the sealing is the kiosk's cost, done before
  the outage ends, not while the central is measured) and starts when all are ready;
- :func:`enrol_devices`: N checkpoints and their devices straight in the database (one
  transaction: the benches measure ingest, not enrolment);
- :func:`stored_counts`: what PostgreSQL holds at the end (rows, distinct (device, id),
  identities not opened, the ``unopened`` table, declarations);
- CPU time of each side (``/proc``: user + system of the process, its live threads and
  reaped children), so that the figures say where the two cores went.

Linux only (fork, ``/proc``), 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
import traceback
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from offline_queue import signing  # noqa: E402
from offline_queue.central import db as central_db  # noqa: E402
from offline_queue.central import schema  # noqa: E402
from offline_queue.records import uuid7  # noqa: E402
from offline_queue.sealing import (  # noqa: E402
    Sealer,
    SealingKey,
    aad_for,
    read_signed_key,
    verify_signed_key,
)

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


def fork_staged(prepare: Callable[[], Any], run: Callable[[Any, float], Any]
                ) -> tuple[int, int, int, int]:
    """Run ``prepare()`` in a forked child, then, once :func:`start_staged` says go,
    ``run(prepared, t0_wall)``; (pid, result pipe, ready pipe, go pipe).  The result is
    ``run``'s dict with ``prepare_cpu_s`` (the child's CPU seconds spent preparing)."""
    read_end, write_end = os.pipe()
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        for fd in (read_end, ready_read, go_write):
            os.close(fd)
        code = 0
        try:
            prepared = prepare()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            os.write(ready_write, b"r")
            os.close(ready_write)
            with os.fdopen(go_read, "rb") as source:
                t0_wall = float(source.read())
            result = run(prepared, t0_wall)
            result["prepare_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
            with os.fdopen(write_end, "wb") as out:
                out.write(json.dumps(result).encode())
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    for fd in (write_end, ready_write, go_read):
        os.close(fd)
    return pid, read_end, ready_read, go_write


def start_staged(children: list[tuple[int, int, int, int]], delay: float = 0.0) -> float:
    """Wait until every :func:`fork_staged` child has prepared, then start them all at
    one instant (``delay`` seconds from now); that instant (``time.time()``)."""
    for pid, _, ready, _ in children:
        with os.fdopen(ready, "rb") as source:
            if source.read(1) != b"r":
                _, status = os.waitpid(pid, 0)
                raise RuntimeError(f"load process {pid} failed while preparing (exit "
                                   f"{os.waitstatus_to_exitcode(status)})")
    t0_wall = time.time() + delay
    for _, _, _, go in children:
        with os.fdopen(go, "wb") as out:
            out.write(repr(t0_wall).encode())
    return t0_wall


class Server:
    """The central in a child process (``serve``); ``url``, ``cpu()``, ``stop()``.

    ``shipped`` (default): as ``checkpoint-kiosk central`` serves (kiosk/cli/queue.py): the
    kiosk's document validators, the declaration folder (so ``serve`` forks the status
    republisher beside the workers) and a key file (made here, in a temporary folder) with
    its sealing keys, which open the identities kiosks seal."""

    def __init__(self, target: str, *, shipped: bool = True, **options: Any) -> None:
        from offline_queue.central.server import serve

        self._folder = tempfile.mkdtemp(prefix="central-bench-keys-")
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

                if shipped:
                    from kiosk.domain.declared_status import DeclarationFolder
                    from kiosk.domain.documents import VALIDATORS
                    from offline_queue.central.keys import KeyFile

                    options.setdefault("validators", VALIDATORS)
                    options.setdefault("fold", DeclarationFolder())
                    options.setdefault("signing_key",
                                       KeyFile(Path(self._folder) / "central.key"))
                serve(target, on_listening=listening, port=0, **options)
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
            shutil.rmtree(self._folder, ignore_errors=True)
            raise RuntimeError("the central did not start (see the error above)")
        self.pid = pid
        self.url = line
        host, _, port = line.removeprefix("http://").rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def republisher_cpu(self) -> float:
        """CPU seconds of the status republisher so far: the child of the supervisor that
        runs at a lower priority than it (``server.REPUBLISHER_NICE``); 0 if none."""
        def nice(pid: int) -> int:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])

        total = 0.0
        for task in Path(f"/proc/{self.pid}/task").glob("*/children"):
            try:
                children = task.read_text().split()
            except OSError:
                continue  # a thread that ended between the listing and the read
            for child in children:
                try:
                    if nice(int(child)) > nice(self.pid):
                        total += cpu_seconds(int(child))
                except OSError:
                    continue
        return total

    def stop(self) -> float:
        """Stop it; its total CPU seconds (workers included)."""
        os.kill(self.pid, signal.SIGTERM)
        _, status, usage = os.wait4(self.pid, 0)
        shutil.rmtree(self._folder, ignore_errors=True)
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


def sealing_key(url: str) -> SealingKey:
    """The central's sealing key as a kiosk takes it from ``GET /v1/keys``: its signature
    by the central's signing key checked (here against the key of the same answer; a
    kiosk checks it against the key it pinned at enrolment)."""
    with urllib.request.urlopen(url + "/v1/keys", timeout=10) as answer:
        keys = json.load(answer)
    key, _, signature = read_signed_key(keys["sealing_key"])
    verify_signed_key(signing.parse_key(keys["public_key"]), key, signature)
    return key


OFFICER = "cb-017"  # an officer id of the officers document (offline_queue.records.OFFICER_ID)
DECLARED_SHARE = 0.02  # of check-ins, an officer's declaration form (a person with no code)
OVERRIDE_SHARE = 0.02  # of check-ins, an officer's override of the kiosk's decision


def kiosk_rows(device: dict, count: int, *, start: datetime, sealer: Sealer | None,
               declared: float = DECLARED_SHARE, overrides: float = OVERRIDE_SHARE,
               rng: random.Random | None = None) -> list[dict]:
    """``count`` check-ins of ``device`` as its sync worker posts them (``wire.from_row``
    of the store's rows), one a second from ``start``: scans, declarations (source
    ``declared``, a document number, the birth year kept, an officer) and overrides (of
    the previous row, a reason code, an officer), each with a person key.  With a
    ``sealer`` (the kiosk's session, ``offline_queue.store``) the person key travels sealed
    to the central's key with the row's id and device as associated data and
    ``person_key`` is null; without one it travels in clear (a kiosk of an earlier
    release)."""
    rng = rng or random.Random()
    rows: list[dict] = []
    for i in range(count):
        draw = rng.random()
        person_key = f"0010{rng.randrange(10**8):08d}"
        row: dict[str, Any] = {
            "id": uuid7(), "device_id": device["device_id"],
            "checkpoint_id": device["checkpoint_id"], "direction": "in", "kind": "cccd",
            "person_key": person_key, "display": {"name": "N***"}, "decision": "pass",
            "reasons": [], "source": "scan", "override_of": None, "original_decision": None,
            "override_reason": None, "recorded_at": (start + timedelta(seconds=i)).isoformat(),
            "monotonic_ns": i * 1_000_000_000, "boot_id": "b", "clock_synced": True,
            "corrected_at": None, "time_source": "ntp", "app_version": "0.1.0",
        }
        if draw < declared:
            row.update(source="declared", officer=OFFICER, display={
                "name": "N***", "birth_year": str(1950 + rng.randrange(60)),
                "id": "********" + person_key[-4:]})
        elif draw < declared + overrides and rows:
            original = rows[-1]
            row.update(person_key=original["_key"], source=original["source"],
                       override_of=original["id"], original_decision=original["decision"],
                       decision="pass", override_reason="officer confirmed", officer=OFFICER,
                       display=original["display"])
        row["_key"] = row["person_key"]
        rows.append(row)
    for row in rows:
        key = row.pop("_key")
        if sealer is not None:
            row["sealed"] = sealer.seal({"person_key": key},
                                        aad_for(row["id"], row["device_id"]))
            row["person_key"] = None
    return rows


def stored_counts(target: str) -> dict[str, Any]:
    """What the central stored: rows, distinct (device, id) (the check-in's key), distinct
    ids, the fewest/most rows of one device, rows without a person key (every row the
    benches send has one, sealed or not: a null is an identity not opened), rows kept
    aside in ``unopened``, declarations and rows with an officer, and the declarations the
    last published status document was folded from (the republisher's work)."""
    with central_db.connect(target) as conn:
        rows, distinct, ids, no_key, declared, officer = conn.execute(
            "SELECT count(*), count(DISTINCT (device, id)), count(DISTINCT id), "
            "count(*) FILTER (WHERE person_key IS NULL), "
            f"count(*) FILTER (WHERE source = {schema.DECLARED}), count(officer) FROM scans"
        ).fetchone()
        low, high = conn.execute(
            "SELECT coalesce(min(n), 0), coalesce(max(n), 0) FROM "
            "(SELECT count(*) AS n FROM scans GROUP BY device) AS per_device").fetchone()
        (unopened,) = conn.execute("SELECT count(*) FROM unopened").fetchone()
        built = conn.execute("SELECT value FROM central_meta WHERE key = 'status_built'"
                             ).fetchone()
    return {"status_folded_declarations": json.loads(built[0])["declared"] if built else 0,
            "stored": rows, "distinct_stored": distinct, "distinct_ids": ids,
            "device_min": low, "device_max": high, "person_key_null": no_key,
            "unopened": unopened, "declared_stored": declared, "officer_stored": officer}


def machine() -> dict[str, Any]:
    """The conditions of a run: cores and the load average when it started."""
    return {"cores": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
            "at": time.strftime("%Y-%m-%d %H:%M")}
