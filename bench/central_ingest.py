"""Sustained ingest of the central on PostgreSQL (issue 12: at least 20,000 check-ins a
second with 50 connections posting 500-row batches), bounded, 127.0.0.1 only.

``--connections`` kiosks (one device each) post batches of ``--batch`` new check-ins
back to back on keep-alive connections, for ``--warmup`` seconds and then ``--seconds``
measured seconds; the rows accepted in the measured window, per second, are the figure.
The central runs as ``checkpoint-kiosk central`` runs it (``serve``: ``--workers``
processes on an SO_REUSEPORT group, the status republisher process, a key file with its
sealing keys) in a child process, PostgreSQL (tests/pgserver.py) with fsync and
synchronous_commit on unless ``--pg`` says otherwise, and the load client in
``--clients`` other processes.

The rows are what a kiosk of today sends (as ``central_load.kiosk_rows``): each identity
sealed to the central's sealing key (fetched once from ``GET /v1/keys``; one sealing
session a connection, as a kiosk's store has), 2 in 100 declarations and 2 in 100
overrides with an officer, and the ``X-Kiosk-Backlog`` header on each post; ``--mode
clear`` sends the same rows with the identity in clear (a kiosk of an earlier release),
``--mode both`` (the default) alternates sealed and clear runs, each on a new database,
so that the two are compared in the same conditions.  The bodies are made from templates
(an id, a person key or its sealed text, ~1 µs a row) and, for the sealed rows, sealed
before the clock starts (``--prepare-rows`` a connection, ~6 µs a row: a kiosk sealed
them when it recorded them; the central is measured, not the load client); CPU seconds of
each side over the measured window are printed.

    .venv/bin/python bench/central_ingest.py                      # 50 x 500, 20 s, both
    .venv/bin/python bench/central_ingest.py --workers 1 --seconds 10 --mode sealed
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
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from pgserver import PgServer  # noqa: E402

from bench import central_load  # noqa: E402
from offline_queue.sealing import Sealer, SealingKey, aad_for  # noqa: E402

MAX_CONNECTIONS = 1000
MAX_SECONDS = 600


def row_templates(device: dict, *, sealed: bool) -> dict[str, bytes]:
    """A check-in as JSON with ``%(id)s`` for its id, ``%(key)s`` for its identity (the
    person key, or its sealed text) and, in an override, ``%(of)s`` for the row it
    overrides: scan, declared, override (the shapes of ``central_load.kiosk_rows``)."""
    recorded = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    base = {
        "id": "@ID@", "device_id": device["device_id"],
        "checkpoint_id": device["checkpoint_id"], "direction": "in", "kind": "cccd",
        "person_key": "@KEY@", "display": {"name": "N***"}, "decision": "pass",
        "reasons": [], "source": "scan", "override_of": None, "original_decision": None,
        "override_reason": None, "recorded_at": recorded, "monotonic_ns": 1,
        "boot_id": "b", "clock_synced": True, "corrected_at": None, "time_source": "ntp",
        "app_version": "0.1.0",
    }
    shapes = {
        "scan": base,
        "declared": base | {"source": "declared", "officer": central_load.OFFICER,
                            "display": {"name": "N***", "birth_year": "1980",
                                        "id": "********1234"}},
        "override": base | {"override_of": "@OF@", "original_decision": "check",
                            "override_reason": "officer confirmed",
                            "officer": central_load.OFFICER},
    }
    out = {}
    for name, row in shapes.items():
        if sealed:
            row = row | {"person_key": None, "sealed": "@KEY@"}
        text = json.dumps(row).replace("%", "%%").replace('"@OF@"', '"%(of)s"')
        out[name] = text.replace('"@ID@"', '"%(id)s"').replace('"@KEY@"', '"%(key)s"').encode()
    return out


class Rows:
    """The check-ins of one connection (one kiosk): 2 in 100 declared, 2 in 100 overrides
    of the row before, the rest scans; each with its identity sealed (``sealer``) or in
    clear."""

    def __init__(self, device: dict, prefix: str, sealer: Sealer | None) -> None:
        self.device_id = device["device_id"]
        self.templates = row_templates(device, sealed=sealer is not None)
        self.prefix = prefix
        self.sealer = sealer
        self.counter = 0

    def row(self) -> bytes:
        self.counter += 1
        n = self.counter
        row_id = f"{self.prefix}{n:012x}"
        key = f"0010{n % 10**8:08d}"
        identity = key if self.sealer is None else self.sealer.seal(
            {"person_key": key}, aad_for(row_id, self.device_id))
        values = {b"id": row_id.encode(), b"key": identity.encode()}
        shape = n % 100
        if shape < 2:
            return self.templates["declared"] % values
        if shape < 4 and n > 1:
            values[b"of"] = f"{self.prefix}{n - 1:012x}".encode()
            return self.templates["override"] % values
        return self.templates["scan"] % values

    def body(self, batch: int) -> bytes:
        return b'{"checkins":[' + b",".join(self.row() for _ in range(batch)) + b"]}"

    def bodies(self, batch: int, prepared: list[bytes]) -> Iterator[tuple[bytes, bool]]:
        """The prepared bodies, then new ones (made while measured: True)."""
        yield from ((body, False) for body in prepared)
        while True:
            yield self.body(batch), True


async def connection(host: str, port: int, device: dict, rows: Rows, prepared: list[bytes],
                     *, batch: int, stop_at: float, log: list[tuple[float, int]],
                     made_live: list[int], refused: list[int]) -> None:
    """One kiosk posting batches back to back until ``stop_at`` (time.time())."""
    reader, writer = await asyncio.open_connection(host, port)
    head = (b"POST /v1/checkins HTTP/1.1\r\nHost: central\r\nContent-Type: application/json"
            b"\r\nAuthorization: Bearer " + device["device_token"].encode() + b"\r\n"
            b"X-Kiosk-Backlog: 1000\r\n")
    try:
        for body, live in rows.bodies(batch, prepared):
            if time.time() >= stop_at:
                break
            made_live[0] += live
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
            accepted = payload.count(b'"accepted"')
            log.append((time.time(), accepted))
            if accepted != batch:  # a row the central refused: the bench's rows are wrong
                refused[0] += batch - accepted
    finally:
        writer.close()


def client_prepare(devices: list[dict], *, batch: int, key: SealingKey | None,
                   prepare_rows: int) -> list[tuple[Rows, list[bytes]]]:
    """Each connection's rows and its first bodies, made (and sealed) before the clock."""
    # A UUID prefix of this process: its rows' ids never meet another's.
    base = os.urandom(4).hex()
    out = []
    for i, d in enumerate(devices):
        rows = Rows(d, f"{base}-{i:04x}-4000-8000-", Sealer(key) if key else None)
        out.append((rows, [rows.body(batch) for _ in range(-(-prepare_rows // batch))]))
    return out


def client_process(host: str, port: int, devices: list[dict],
                   prepared: list[tuple[Rows, list[bytes]]], *, batch: int,
                   stop_at: float) -> dict:
    """One load process; the (time, rows accepted) of every answer (-1: not a 200), how
    many bodies had to be made while measured, and how many rows of 200 answers were not
    accepted (0 unless the bench's rows are wrong)."""
    log: list[tuple[float, int]] = []
    made_live, refused = [0], [0]

    async def run() -> None:
        await asyncio.gather(*(connection(
            host, port, d, rows, bodies, batch=batch, stop_at=stop_at, log=log,
            made_live=made_live, refused=refused)
            for d, (rows, bodies) in zip(devices, prepared, strict=True)))

    asyncio.run(run())
    return {"log": log, "made_live": made_live[0], "refused": refused[0]}


# Rows a connection has made before the clock starts: 20 s measured + 5 s warm-up at up to
# 32,000 rows/s over 50 connections.  More are made while measured if need be (counted).
PREPARE_ROWS = 16_000


def run_ingest(target: str, *, connections: int = 50, batch: int = 500, seconds: float = 20,
               warmup: float = 5, workers: int | None = None, threads: int | None = None,
               clients: int = 2, pg: PgServer | None = None, sealed: bool = True,
               prepare_rows: int = PREPARE_ROWS) -> dict:
    from offline_queue.central import server as central_server

    if not (0 < connections <= MAX_CONNECTIONS and 0 < seconds + warmup <= MAX_SECONDS
            and 0 < clients <= 16 and 0 < batch <= 1000 and 0 <= prepare_rows <= 100_000):
        raise ValueError(f"connections 1..{MAX_CONNECTIONS}, seconds + warmup up to "
                         f"{MAX_SECONDS}, clients 1..16, batch 1..1000, prepare rows "
                         "0..100,000")
    conditions = central_load.machine()
    devices = central_load.enrol_devices(target, connections)
    options = {"threads": threads or central_server.THREADS,
               "workers": workers or central_server.WORKERS,
               # Never busy here: this measures throughput, not the admission.
               "queue_limit": None}
    with central_load.Server(target, **options) as server:
        key = central_load.sealing_key(server.url) if sealed else None
        children = [central_load.fork_staged(
            lambda part=part: client_prepare(devices[part::clients], batch=batch, key=key,
                                             prepare_rows=prepare_rows),
            lambda prepared, start, part=part: client_process(
                server.host, server.port, devices[part::clients], prepared, batch=batch,
                stop_at=start + warmup + seconds))
            for part in range(clients)]
        start = central_load.start_staged(children, delay=0.2)
        measure_from, stop_at = start + warmup, start + warmup + seconds
        time.sleep(max(0.0, measure_from - time.time()))
        pids = [child[0] for child in children]
        cpu0 = (server.cpu(), central_load.postgres_cpu(pg) if pg else 0.0,
                sum(central_load.cpu_seconds(pid) for pid in pids))
        time.sleep(max(0.0, stop_at - time.time()))
        cpu1 = (server.cpu(), central_load.postgres_cpu(pg) if pg else 0.0,
                sum(central_load.cpu_seconds(pid) for pid in pids))
        results = [central_load.collect(pid, read_end)[0]
                   for pid, read_end, _, _ in children]
    answers = [entry for result in results for entry in result["log"]]
    counts = central_load.stored_counts(target)
    window = [n for at, n in answers if measure_from <= at < stop_at]
    accepted = sum(n for n in window if n > 0)
    cpu = [round(b - a, 1) for a, b in zip(cpu0, cpu1, strict=True)]
    return {
        "identities": "sealed" if sealed else "clear",
        "connections": connections, "batch": batch, "measured_s": seconds,
        "rows_per_s": round(accepted / seconds),
        "posts_in_window": len(window), "not_200": sum(1 for n in window if n < 0),
        "stored_total": counts["stored"],
        "accepted_total": sum(n for _, n in answers if n > 0),
        "person_key_null": counts["person_key_null"], "unopened": counts["unopened"],
        "declared_stored": counts["declared_stored"],
        "rows_not_accepted": sum(r["refused"] for r in results),
        "bodies_made_while_measured": sum(r["made_live"] for r in results),
        "client_prepare_cpu_s": round(sum(r["prepare_cpu_s"] for r in results), 1),
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
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--mode", choices=("both", "sealed", "clear"), default="both",
                        help="identities sealed (a kiosk of today), in clear (an earlier "
                             "release), or both: alternating runs")
    parser.add_argument("--prepare-rows", type=int, default=PREPARE_ROWS,
                        help="rows a connection makes (and seals) before the clock starts")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs (of each mode), each on a new database")
    parser.add_argument("--pg", action="append", default=[], metavar="NAME=VALUE",
                        help="a PostgreSQL setting for this run (e.g. synchronous_commit=off "
                             "to measure its cost; the shipped advice keeps it on)")
    args = parser.parse_args()
    settings = {"max_connections": "200"} | dict(s.split("=", 1) for s in args.pg)
    modes = {"both": (True, False), "sealed": (True,), "clear": (False,)}[args.mode]
    runs: dict[str, list[int]] = {}
    with PgServer(durable=True, settings=settings) as pg:
        for _ in range(args.repeat):
            for sealed in modes:
                figures = run_ingest(pg.new_database(), connections=args.connections,
                                     batch=args.batch, seconds=args.seconds,
                                     warmup=args.warmup, workers=args.workers,
                                     threads=args.threads, clients=args.clients, pg=pg,
                                     sealed=sealed, prepare_rows=args.prepare_rows)
                print(json.dumps(figures), flush=True)
                runs.setdefault(figures["identities"], []).append(figures["rows_per_s"])
    print(json.dumps({"rows_per_s": runs, "postgres_settings": settings}))


if __name__ == "__main__":
    main()
