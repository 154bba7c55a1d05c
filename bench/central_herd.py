"""The power-cut herd against the central on PostgreSQL (issue 12), bounded, 127.0.0.1 only.

N kiosks, each with R check-ins, come back within a window of W seconds (uniformly
spread, as the kiosks' own jitter does) and post their backlog in batches, as the sync
worker does, each post with its ``X-Kiosk-Backlog`` header (the rows the kiosk still
holds besides the batch). The rows are what a kiosk of today sends
(``central_load.kiosk_rows``): each identity sealed to the central's sealing key (fetched
once from ``GET /v1/keys``, one sealing session a kiosk), 2 % declarations and 2 %
overrides with an officer; ``--clear`` sends them with the identity in clear instead (a
kiosk of an earlier release). The rows are built and sealed before the herd starts (a
kiosk sealed them when it recorded them), and that CPU is reported apart. A 200 answer
marks the batch delivered; a 503 with Retry-After waits that long (at least the first
backoff step, 4 s: the kiosk's rule since issue 12); a timeout or a refused connection
waits with capped exponential backoff (full jitter, 4 s doubling to 300 s) and resends
the batch, which is what makes resends. The kiosk's own timeouts: 5 s to connect, 30 s
for the answer. Counts: rows posted, resends (rows posted again that the central had
stored already: its "duplicate" answers), lost (never stored) and duplicated (stored
twice: the row count against the distinct (device, id) and rows per device); at the end
PostgreSQL is asked whether every row's identity was opened (no null person key: every
row sent has one) and whether the ``unopened`` table is empty.

    .venv/bin/python bench/central_herd.py --kiosks 6000 --rows 200 --window 60
    .venv/bin/python bench/central_herd.py --kiosks 200 --rows 50 --window 5   # quick

Starts its own PostgreSQL (tests/pgserver.py, fsync and synchronous_commit on) and the
central as ``checkpoint-kiosk central`` runs it (``serve``: worker processes on an
SO_REUSEPORT group and the status republisher process, a key file with its sealing keys)
in a child process; the load client runs in ``--clients`` other processes (asyncio, raw
HTTP/1.1 on 127.0.0.1), so the three share the cores but no Python interpreter. CPU
seconds of each side are reported. Bounded: at most ``--max-seconds`` (default 600) and
the given counts.
"""

from __future__ import annotations

import sys

# bench/queue.py and bench/inspect.py would shadow the standard library's modules of
# those names (asyncio and urllib3 need them): drop this folder from the path first.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from pgserver import PgServer  # noqa: E402

from bench import central_load  # noqa: E402
from offline_queue.sealing import Sealer, SealingKey  # noqa: E402

MAX_KIOSKS = 20_000
MAX_ROWS = 2_000


@dataclass
class Tally:
    posted: int = 0
    accepted: int = 0
    duplicate: int = 0
    other: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    retry_after_max: int = 0
    finished: list[float] = field(default_factory=list)

    def add(self, other: dict) -> None:
        for name in ("posted", "accepted", "duplicate", "other", "timeouts", "errors"):
            setattr(self, name, getattr(self, name) + other[name])
        for status, n in other["answers"].items():
            self.answers[status] = self.answers.get(status, 0) + n
        for kind, n in other["failures"].items():
            self.failures[kind] = self.failures.get(kind, 0) + n
        self.retry_after_max = max(self.retry_after_max, other["retry_after_max"])
        self.finished.extend(other["finished"])


Post = tuple[bytes, int, int]  # body, rows in it, rows the kiosk holds besides them


def kiosk_posts(device: dict, rows: int, batch: int, *, start: datetime,
                key: SealingKey | None) -> list[Post]:
    """A kiosk's backlog as the bodies of its posts (one sealing session a kiosk, as its
    store has from its start)."""
    made = central_load.kiosk_rows(device, rows, start=start,
                                   sealer=Sealer(key) if key is not None else None)
    return [(json.dumps({"checkins": made[at:at + batch]}).encode(), len(made[at:at + batch]),
             max(0, rows - at - batch)) for at in range(0, rows, batch)]


async def post(host: str, port: int, token: str, body: bytes, *, backlog: int,
               connect_timeout: float, read_timeout: float
               ) -> tuple[int, dict[str, str], bytes]:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                connect_timeout)
    except TimeoutError:
        raise ConnectTimeout() from None
    try:
        writer.write(b"POST /v1/checkins HTTP/1.1\r\nHost: central\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\n"
                     b"X-Kiosk-Backlog: " + str(backlog).encode() + b"\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await asyncio.wait_for(writer.drain(), read_timeout)
        raw = await asyncio.wait_for(reader.read(-1), read_timeout)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise ConnectionResetError("no HTTP answer")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:])}
    return status, headers, payload


class ConnectTimeout(TimeoutError):
    """No connection within the connect timeout (the listen backlog was full)."""


def backoff(rng: random.Random, failures: int) -> float:
    """The kiosk's wait after ``failures`` failures in a row (offline_queue.sync: first
    step 4 s, doubling, cap 300 s, full jitter)."""
    return rng.uniform(0, min(300.0, 4.0 * 2 ** (failures - 1)))


async def kiosk(host: str, port: int, device: dict, posts: list[Post], *, delay: float,
                connect_timeout: float, read_timeout: float, tally: Tally,
                t0: float) -> None:
    await asyncio.sleep(delay)
    rng = random.Random()
    failures = 0
    pending = list(posts)  # what the kiosk's queue holds
    while pending:
        body, count, backlog = pending[0]
        tally.posted += count
        try:
            status, headers, payload = await post(
                host, port, device["device_token"], body, backlog=backlog,
                connect_timeout=connect_timeout, read_timeout=read_timeout)
        except (TimeoutError, OSError) as e:
            tally.timeouts += 1
            kind = ("connect_timeouts" if isinstance(e, ConnectTimeout) else "read_timeouts"
                    if isinstance(e, TimeoutError) else "connection_errors")
            tally.failures[kind] = tally.failures.get(kind, 0) + 1
            failures += 1
            await asyncio.sleep(backoff(rng, failures))
            continue
        tally.answers[str(status)] = tally.answers.get(str(status), 0) + 1
        if status == 200:
            failures = 0
            for result in json.loads(payload)["results"]:
                if result["status"] == "accepted":
                    tally.accepted += 1
                elif result["status"] == "duplicate":
                    tally.duplicate += 1
                else:
                    tally.other += 1
            pending = pending[1:]
            continue
        failures += 1
        wait = headers.get("retry-after")
        if status == 503 and wait and wait.isdigit():
            tally.retry_after_max = max(tally.retry_after_max, int(wait))
            await asyncio.sleep(max(int(wait), 4.0))
        else:
            tally.errors += 1
            await asyncio.sleep(backoff(rng, failures))
    tally.finished.append(time.monotonic() - t0)


def client_prepare(devices: list[dict], *, rows: int, batch: int, key: SealingKey | None
                   ) -> list[list[Post]]:
    """The posts of each kiosk of one load process, built before the herd."""
    start = datetime.now(UTC) - timedelta(hours=2)
    return [kiosk_posts(d, rows, batch, start=start, key=key) for d in devices]


def client_process(host: str, port: int, devices: list[dict], delays: list[float],
                   posts: list[list[Post]], *, connect_timeout: float, read_timeout: float,
                   t0_wall: float, max_seconds: float) -> dict:
    """One load process: its kiosks on one asyncio loop; its tally as a dict."""
    tally = Tally()

    async def herd() -> None:
        # Every process measures from the same instant (the parent's wall clock).
        await asyncio.sleep(max(0.0, t0_wall - time.time()))
        t0 = time.monotonic() - (time.time() - t0_wall)
        tasks = [asyncio.create_task(kiosk(
            host, port, d, p, delay=max(0.0, delay - (time.monotonic() - t0)),
            connect_timeout=connect_timeout, read_timeout=read_timeout,
            tally=tally, t0=t0)) for d, delay, p in zip(devices, delays, posts, strict=True)]
        await asyncio.wait(tasks, timeout=max(1.0, max_seconds - (time.monotonic() - t0)))
        for task in tasks:
            task.cancel()

    asyncio.run(herd())
    return asdict(tally)


def run_herd(target: str, *, kiosks: int, rows: int, window: float, batch: int = 500,
             connect_timeout: float = 5.0, read_timeout: float = 30.0,
             max_seconds: float = 600.0, threads: int | None = None,
             queue_limit: int | None = None, workers: int | None = None, clients: int = 2,
             early_busy: bool | None = None, pg: PgServer | None = None,
             sealed: bool = True, fold: bool = True, print_=print) -> dict:
    """The herd against a central on ``target``; the figures as a dict."""
    from offline_queue.central import server as central_server

    if not (0 < kiosks <= MAX_KIOSKS and 0 < rows <= MAX_ROWS and 0 < clients <= 16):
        raise ValueError(f"kiosks 1..{MAX_KIOSKS}, rows 1..{MAX_ROWS}, clients 1..16")
    conditions = central_load.machine()
    t_enrol = time.monotonic()
    devices = central_load.enrol_devices(target, kiosks)
    print_(f"enrolled {kiosks} kiosks in {time.monotonic() - t_enrol:.1f} s")
    # The settings of ``checkpoint-kiosk central`` unless told otherwise.
    options: dict = {"threads": threads or central_server.THREADS,
                     "workers": workers or central_server.WORKERS,
                     "connection_limit": central_server.CONNECTION_LIMIT}
    if queue_limit is not None:
        options["queue_limit"] = queue_limit
    if early_busy is not None:
        options["early_busy"] = early_busy
    if not fold:  # no status republisher process (to measure what it costs the herd)
        options["fold"] = None
    delays = [random.uniform(0, window) for _ in devices]
    tally = Tally()
    prepare_cpu = 0.0
    with central_load.Server(target, **options) as server:
        key = central_load.sealing_key(server.url) if sealed else None
        t_prepare = time.monotonic()
        children = [central_load.fork_staged(
            lambda part=part: client_prepare(devices[part::clients], rows=rows, batch=batch,
                                             key=key),
            lambda posts, t0_wall, part=part: client_process(
                server.host, server.port, devices[part::clients], delays[part::clients],
                posts, connect_timeout=connect_timeout, read_timeout=read_timeout,
                t0_wall=t0_wall, max_seconds=max_seconds))
            for part in range(clients)]
        t0_wall = central_load.start_staged(children, delay=0.5)
        print_(f"built and {'sealed' if sealed else 'left in clear'} {kiosks * rows} rows in "
               f"{time.monotonic() - t_prepare:.1f} s")
        server_cpu0, fold_cpu0 = server.cpu(), server.republisher_cpu()
        pg_cpu0 = central_load.postgres_cpu(pg) if pg is not None else 0.0
        t0 = time.monotonic() + (t0_wall - time.time())
        client_cpu = 0.0
        for pid, read_end, _, _ in children:
            result, cpu = central_load.collect(pid, read_end)
            prepare_cpu += result.pop("prepare_cpu_s")
            tally.add(result)
            client_cpu += cpu
        elapsed = time.monotonic() - t0
        fold_cpu = server.republisher_cpu() - fold_cpu0
        server_cpu = server.stop() - server_cpu0
    pg_cpu = central_load.postgres_cpu(pg) - pg_cpu0 if pg is not None else None
    counts = central_load.stored_counts(target)
    total = kiosks * rows
    return {
        "kiosks": kiosks, "rows_each": rows, "rows": total, "window_s": window,
        "identities": "sealed" if sealed else "clear",
        "all_stored_s": round(max(tally.finished), 1) if len(tally.finished) == kiosks
        else None,
        "elapsed_s": round(elapsed, 1), "kiosks_done": len(tally.finished),
        **counts, "lost": total - counts["distinct_stored"],
        "duplicated": counts["stored"] - counts["distinct_stored"],
        "all_opened": counts["person_key_null"] == 0 and counts["unopened"] == 0,
        "accepted": tally.accepted, "posted": tally.posted,
        "resends": tally.duplicate, "resend_pct": round(100 * tally.duplicate / total, 2),
        "answers": tally.answers, "timeouts": tally.timeouts,
        "failures": tally.failures, "errors": tally.errors,
        "refused_503": tally.answers.get("503", 0), "retry_after_max": tally.retry_after_max,
        "server": options, "clients": clients,
        "cpu_s": {"server": round(server_cpu, 1),
                  "of_which_status_republisher": round(fold_cpu, 1),
                  "postgres": None if pg_cpu is None else round(pg_cpu, 1),
                  "clients": round(client_cpu - prepare_cpu, 1),
                  "clients_building_and_sealing": round(prepare_cpu, 1)},
        "conditions": conditions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kiosks", type=int, default=6000)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--queue-limit", type=int, default=None)
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--early-busy", action="store_true", default=None,
                        help="answer a busy post on its headers, before its body (measured: "
                             "does not pay, off by default)")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--no-fold", action="store_true",
                        help="serve without the declaration folder (no status republisher "
                             "process): what the folding costs the herd")
    parser.add_argument("--clear", action="store_true",
                        help="send the identities in clear (a kiosk of an earlier release) "
                             "instead of sealed to the central's key")
    parser.add_argument("--pg", action="append", default=[], metavar="NAME=VALUE",
                        help="a PostgreSQL setting for this run (e.g. synchronous_commit=off "
                             "to measure its cost; the shipped advice keeps it on)")
    args = parser.parse_args()
    settings = {"max_connections": "200"} | dict(s.split("=", 1) for s in args.pg)
    with PgServer(durable=True, settings=settings) as pg:
        figures = run_herd(pg.new_database("herd"), kiosks=args.kiosks, rows=args.rows,
                           window=args.window, batch=args.batch, threads=args.threads,
                           workers=args.workers, queue_limit=args.queue_limit,
                           clients=args.clients, max_seconds=args.max_seconds,
                           early_busy=args.early_busy, pg=pg, sealed=not args.clear,
                           fold=not args.no_fold)
    figures["postgres_settings"] = settings
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
