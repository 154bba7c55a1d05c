"""The power-cut herd against the central on PostgreSQL (issue 12), bounded, 127.0.0.1 only.

N kiosks, each with R check-ins, come back within a window of W seconds (uniformly
spread, as the kiosks' own jitter does) and post their backlog in batches, as the sync
worker does: a 200 answer marks the batch delivered; a 503 with Retry-After waits that
long (the kiosk's rule since issue 12); a timeout or a refused connection waits with
capped exponential backoff (full jitter) and resends the batch, which is what makes
resends.  Counts: rows posted, resends (rows posted again that the central had stored
already: its "duplicate" answers), lost (never accepted) and duplicated (rows stored
twice: the central's row count against the distinct ids).

    .venv/bin/python bench/central_herd.py --kiosks 6000 --rows 200 --window 60
    .venv/bin/python bench/central_herd.py --kiosks 200 --rows 50 --window 5   # quick

Starts its own PostgreSQL (tests/pgserver.py, fsync on) and the central (waitress) in
this process; the load client is asyncio with raw HTTP/1.1 on 127.0.0.1.  Bounded: at
most ``--max-seconds`` (default 600) and the given counts.
"""

from __future__ import annotations

import sys

# bench/queue.py and bench/inspect.py would shadow the standard library's modules of
# those names (asyncio and urllib3 need them): drop this folder from the path first.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from pgserver import PgServer  # noqa: E402

from offline_queue.central import db as central_db  # noqa: E402
from offline_queue.central.server import CentralServer  # noqa: E402
from offline_queue.records import uuid7  # noqa: E402

MAX_KIOSKS = 20_000
MAX_ROWS = 2_000


@dataclass
class Tally:
    posted: int = 0
    accepted: int = 0
    duplicate: int = 0
    other: int = 0
    answers: dict[int, int] = field(default_factory=dict)
    timeouts: int = 0
    errors: int = 0
    retry_after: list[int] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)


def make_rows(device: dict, count: int, start: datetime) -> list[dict]:
    return [{
        "id": uuid7(), "device_id": device["device_id"],
        "checkpoint_id": device["checkpoint_id"], "direction": "in", "kind": "cccd",
        "person_key": f"0010{random.randrange(10**8):08d}", "display": {"name": "N***"},
        "decision": "pass", "reasons": [], "source": "scan", "override_of": None,
        "original_decision": None, "override_reason": None,
        "recorded_at": (start + timedelta(seconds=i)).isoformat(), "monotonic_ns": i,
        "boot_id": "b", "clock_synced": True, "corrected_at": None, "app_version": "0.1.0",
    } for i in range(count)]


async def post(host: str, port: int, token: str, body: bytes, timeout: float
               ) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(b"POST /v1/checkins HTTP/1.1\r\nHost: central\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    return status, headers, payload


async def kiosk(host: str, port: int, device: dict, rows: list[dict], *, delay: float,
                batch: int, timeout: float, tally: Tally, t0: float) -> None:
    await asyncio.sleep(delay)
    rng = random.Random()
    failures = 0
    pending = list(rows)
    while pending:
        chunk = pending[:batch]
        body = json.dumps({"checkins": chunk}).encode()
        tally.posted += len(chunk)
        try:
            status, headers, payload = await post(host, port, device["device_token"], body,
                                                  timeout)
        except (TimeoutError, OSError):
            tally.timeouts += 1
            failures += 1
            await asyncio.sleep(rng.uniform(0, min(300.0, 4.0 * 2 ** (failures - 1))))
            continue
        tally.answers[status] = tally.answers.get(status, 0) + 1
        if status == 200:
            failures = 0
            for result in json.loads(payload)["results"]:
                if result["status"] == "accepted":
                    tally.accepted += 1
                elif result["status"] == "duplicate":
                    tally.duplicate += 1
                else:
                    tally.other += 1
            pending = pending[batch:]
            continue
        failures += 1
        wait = headers.get("retry-after")
        if status == 503 and wait and wait.isdigit():
            tally.retry_after.append(int(wait))
            await asyncio.sleep(max(int(wait), 4.0))
        else:
            tally.errors += 1
            await asyncio.sleep(rng.uniform(0, min(300.0, 4.0 * 2 ** (failures - 1))))
    tally.finished.append(time.monotonic() - t0)


def enrol_all(server: CentralServer, target: str, kiosks: int) -> list[dict]:
    import requests

    devices = []
    with central_db.connect(target) as conn:
        tokens = [central_db.create_enrolment_token(conn, checkpoint_id=f"CP-{i:05d}",
                                                    name=f"checkpoint {i}")
                  for i in range(kiosks)]
    session = requests.Session()
    for token in tokens:
        answer = session.post(server.url + "/v1/devices/enrol",
                              json={"enrolment_token": token}, timeout=30)
        answer.raise_for_status()
        devices.append(answer.json())
    return devices


def run_herd(target: str, *, kiosks: int, rows: int, window: float, batch: int = 500,
             timeout: float = 30.0, max_seconds: float = 600.0, threads: int | None = None,
             queue_limit: int | None = None, print_=print) -> dict:
    """The herd against a central on ``target``; the figures as a dict."""
    if not (0 < kiosks <= MAX_KIOSKS and 0 < rows <= MAX_ROWS):
        raise ValueError(f"kiosks 1..{MAX_KIOSKS}, rows 1..{MAX_ROWS}")
    # waitress warns at every queued task; the bench counts the 503s itself.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    kw = {} if threads is None else {"threads": threads}
    if queue_limit is not None:
        kw["queue_limit"] = queue_limit
    with CentralServer(target, connection_limit=max(1000, kiosks + 100), **kw) as server:
        t_enrol = time.monotonic()
        devices = enrol_all(server, target, kiosks)
        print_(f"enrolled {kiosks} kiosks in {time.monotonic() - t_enrol:.1f} s")
        start = datetime.now(UTC) - timedelta(hours=2)
        backlog = [make_rows(d, rows, start) for d in devices]
        tally = Tally()

        async def herd() -> None:
            t0 = time.monotonic()
            tasks = [asyncio.create_task(kiosk(
                server.host, server.port, d, b, delay=random.uniform(0, window),
                batch=batch, timeout=timeout, tally=tally, t0=t0))
                for d, b in zip(devices, backlog, strict=True)]
            await asyncio.wait(tasks, timeout=max_seconds)
            for task in tasks:
                task.cancel()

        t0 = time.monotonic()
        asyncio.run(herd())
        elapsed = time.monotonic() - t0
        with central_db.connect(target) as conn:
            stored = conn.execute("SELECT count(*), count(DISTINCT id) FROM scans").fetchone()
        refused = server.admission.refused if server.admission else 0
    total = kiosks * rows
    ids = {r["id"] for b in backlog for r in b}
    figures = {
        "kiosks": kiosks, "rows_each": rows, "rows": total, "window_s": window,
        "all_stored_s": round(max(tally.finished), 1) if len(tally.finished) == kiosks
        else None,
        "elapsed_s": round(elapsed, 1), "kiosks_done": len(tally.finished),
        "stored": stored[0], "distinct_stored": stored[1], "lost": len(ids) - stored[1],
        "duplicated": stored[0] - stored[1], "posted": tally.posted,
        "resends": tally.duplicate, "resend_pct": round(100 * tally.duplicate / total, 2),
        "answers": tally.answers, "timeouts": tally.timeouts, "refused_503": refused,
        "retry_after_max": max(tally.retry_after, default=None),
    }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=6000)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    with PgServer(durable=True, settings={"max_connections": "100"}) as pg:
        figures = run_herd(pg.new_database("herd"), kiosks=args.kiosks, rows=args.rows,
                           window=args.window, batch=args.batch, threads=args.threads,
                           max_seconds=args.max_seconds)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
