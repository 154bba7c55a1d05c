"""Sustained ingest of the central on PostgreSQL (issue 12: at least 20,000 check-ins a
second with 50 connections posting 500-row batches), bounded, 127.0.0.1 only.

``--connections`` kiosks (one device each) post batches of ``--batch`` new check-ins
back to back on keep-alive connections, for ``--warmup`` seconds and then ``--seconds``
measured seconds; the rows accepted in the measured window, per second, are the figure.
The central runs as ``checkpoint-kiosk central`` runs it (``serve``: ``--workers``
processes sharing one socket) in a child process, PostgreSQL (tests/pgserver.py) with
fsync and synchronous_commit on unless ``--pg`` says otherwise, and the load client in
``--clients`` other processes.  The bodies are built from a template (a new id and
person key a row, ~1 µs) so that the client costs little; CPU seconds of each side
over the measured window are printed.

    .venv/bin/python bench/central_ingest.py                      # 50 x 500, 30 s
    .venv/bin/python bench/central_ingest.py --workers 1 --seconds 10
"""

from __future__ import annotations

import sys

# bench/queue.py and bench/inspect.py would shadow the standard library's modules of
# those names (asyncio needs them): drop this folder from the path first.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from pgserver import PgServer  # noqa: E402

from bench import central_load  # noqa: E402

MAX_CONNECTIONS = 1000
MAX_SECONDS = 600


def row_template(device: dict) -> bytes:
    """A check-in as JSON with ``%s`` for its id and person key (bytes %-formatting)."""
    recorded = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    row = {
        "id": "@ID@", "device_id": device["device_id"],
        "checkpoint_id": device["checkpoint_id"], "direction": "in", "kind": "cccd",
        "person_key": "@KEY@", "display": {"name": "N***"}, "decision": "pass",
        "reasons": [], "source": "scan", "override_of": None, "original_decision": None,
        "override_reason": None, "recorded_at": recorded, "monotonic_ns": 1,
        "boot_id": "b", "clock_synced": True, "corrected_at": None, "app_version": "0.1.0",
    }
    text = json.dumps(row).replace("%", "%%").replace("@ID@", "%s").replace("@KEY@", "%s")
    return text.encode()


async def connection(host: str, port: int, device: dict, *, batch: int, prefix: str,
                     stop_at: float, log: list[tuple[float, int]]) -> None:
    """One kiosk posting batches back to back until ``stop_at`` (time.time())."""
    template = row_template(device)
    reader, writer = await asyncio.open_connection(host, port)
    head = (b"POST /v1/checkins HTTP/1.1\r\nHost: central\r\nContent-Type: application/json"
            b"\r\nAuthorization: Bearer " + device["device_token"].encode() + b"\r\n")
    counter = 0
    try:
        while time.time() < stop_at:
            rows = []
            for _ in range(batch):
                counter += 1
                rows.append(template % (f"{prefix}{counter:012x}".encode(),
                                        f"0010{counter % 10**8:08d}".encode()))
            body = b'{"checkins":[' + b",".join(rows) + b"]}"
            writer.write(head + b"Content-Length: " + str(len(body)).encode()
                         + b"\r\n\r\n" + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            if b" 200 " not in status_line:
                log.append((time.time(), -1))
                await asyncio.sleep(0.5)
                continue
            log.append((time.time(), payload.count(b'"accepted"')))
    finally:
        writer.close()


def client_process(host: str, port: int, devices: list[dict], *, batch: int,
                   stop_at: float) -> list[tuple[float, int]]:
    """One load process; the (time, rows accepted) of every answer (-1: not a 200)."""
    log: list[tuple[float, int]] = []
    # A UUID prefix of this process: its rows' ids never meet another's.
    base = os.urandom(4).hex()

    async def run() -> None:
        await asyncio.gather(*(connection(
            host, port, d, batch=batch, prefix=f"{base}-{i:04x}-4000-8000-", stop_at=stop_at,
            log=log) for i, d in enumerate(devices)))

    asyncio.run(run())
    return log


def run_ingest(target: str, *, connections: int = 50, batch: int = 500, seconds: float = 30,
               warmup: float = 5, workers: int | None = None, threads: int | None = None,
               clients: int = 2, pg: PgServer | None = None) -> dict:
    from offline_queue.central import server as central_server

    if not (0 < connections <= MAX_CONNECTIONS and 0 < seconds + warmup <= MAX_SECONDS
            and 0 < clients <= 16 and 0 < batch <= 1000):
        raise ValueError(f"connections 1..{MAX_CONNECTIONS}, seconds + warmup up to "
                         f"{MAX_SECONDS}, clients 1..16, batch 1..1000")
    conditions = central_load.machine()
    devices = central_load.enrol_devices(target, connections)
    options = {"threads": threads or central_server.THREADS,
               "workers": workers or central_server.WORKERS,
               # Never busy here: this measures throughput, not the admission.
               "queue_limit": None}
    with central_load.Server(target, **options) as server:
        start = time.time()
        measure_from, stop_at = start + warmup, start + warmup + seconds
        children = [central_load.fork(lambda part=part: client_process(
            server.host, server.port, devices[part::clients], batch=batch, stop_at=stop_at))
            for part in range(clients)]
        time.sleep(max(0.0, measure_from - time.time()))
        cpu0 = (server.cpu(), central_load.postgres_cpu(pg) if pg else 0.0,
                sum(central_load.cpu_seconds(pid) for pid, _ in children))
        time.sleep(max(0.0, stop_at - time.time()))
        cpu1 = (server.cpu(), central_load.postgres_cpu(pg) if pg else 0.0,
                sum(central_load.cpu_seconds(pid) for pid, _ in children))
        answers = [entry for pid, read_end in children
                   for entry in central_load.collect(pid, read_end)[0]]
    counts = central_load.stored_counts(target)
    window = [n for at, n in answers if measure_from <= at < stop_at]
    accepted = sum(n for n in window if n > 0)
    cpu = [round(b - a, 1) for a, b in zip(cpu0, cpu1, strict=True)]
    return {
        "connections": connections, "batch": batch, "measured_s": seconds,
        "rows_per_s": round(accepted / seconds),
        "posts_in_window": len(window), "not_200": sum(1 for n in window if n < 0),
        "stored_total": counts["stored"],
        "accepted_total": sum(n for _, n in answers if n > 0),
        "server": options, "clients": clients,
        "cpu_s_in_window": {"server": cpu[0], "postgres": cpu[1] if pg else None,
                            "clients": cpu[2]},
        "cpu_us_per_row": {name: round(1e6 * c / max(accepted, 1), 1) for name, c in
                           zip(("server", "postgres", "clients"), cpu, strict=True)},
        "conditions": conditions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on a new database")
    parser.add_argument("--pg", action="append", default=[], metavar="NAME=VALUE",
                        help="a PostgreSQL setting for this run (e.g. synchronous_commit=off "
                             "to measure its cost; the shipped advice keeps it on)")
    args = parser.parse_args()
    settings = {"max_connections": "200"} | dict(s.split("=", 1) for s in args.pg)
    runs = []
    with PgServer(durable=True, settings=settings) as pg:
        for _ in range(args.repeat):
            figures = run_ingest(pg.new_database(), connections=args.connections,
                                 batch=args.batch, seconds=args.seconds, warmup=args.warmup,
                                 workers=args.workers, threads=args.threads,
                                 clients=args.clients, pg=pg)
            print(json.dumps(figures), flush=True)
            runs.append(figures["rows_per_s"])
    print(json.dumps({"rows_per_s": runs, "min": min(runs), "max": max(runs),
                      "postgres_settings": settings}))


if __name__ == "__main__":
    main()
