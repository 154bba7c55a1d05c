"""Queue benchmarks: commit latency (FULL vs NORMAL) and draining a 100 000-row backlog.

    python -m bench.queue [--rows 100000] [--commits 500]

The reference server runs as ``checkpoint-kiosk central`` in a child process on
127.0.0.1 and the client drains into it in the same run.  Figures go to
docs/offline-queue.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def commit_latency(path: Path, synchronous: str, n: int) -> dict:
    from offline_queue.records import CheckIn
    from offline_queue.store import Store

    entry = CheckIn(direction="in", kind="cccd", person_key="001085012345",
                    display={"name": "T** T** B*** N***"}, decision="pass", reasons=("ok",))
    with Store(path, device_id="bench", checkpoint_id="bench") as store:
        # The shipped Store always uses FULL; NORMAL is set here only to measure the cost.
        store._db.execute(f"PRAGMA synchronous={synchronous}")
        times = []
        for _ in range(n):
            t = time.perf_counter()
            store.record(entry)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "synchronous": synchronous, "commits": n,
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 3),
        "max_ms": round(times[-1], 3),
    }


def fill_backlog(path: Path, rows: int, device: str, checkpoint: str) -> None:
    from offline_queue.records import CheckIn, uuid7
    from offline_queue.store import Store

    with Store(path, device_id=device, checkpoint_id=checkpoint) as store:
        store.record(CheckIn(direction="in", kind="cccd", person_key="0",
                             display={"name": "N***"}, decision="pass"))
        db = store._db
        template = db.execute("SELECT * FROM checkins LIMIT 1").fetchone()
        columns = [d[0] for d in db.execute("SELECT * FROM checkins LIMIT 1").description]
        id_at, key_at = columns.index("id"), columns.index("person_key")
        rest = [i for i, c in enumerate(columns) if c != "seq"]
        sql = (f"INSERT INTO checkins ({', '.join(columns[i] for i in rest)}) "
               f"VALUES ({', '.join('?' for _ in rest)})")
        batch = []
        with db.atomic():
            for n in range(rows - 1):
                row = list(template)
                row[id_at], row[key_at] = uuid7(), f"{n:012d}"
                batch.append([row[i] for i in rest])
                if len(batch) == 10_000:
                    db.conn.executemany(sql, batch)
                    batch.clear()
            db.conn.executemany(sql, batch)


def start_central(db: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "central", "--db", str(db), "--port", "0",
         "--threads", "2"],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"central server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


def drain(tmp: Path, rows: int, batch_size: int) -> dict:
    from offline_queue.central import db as central_db
    from offline_queue.sync import sync_once

    central_path = tmp / f"central-{batch_size}.db"
    with central_db.connect(central_path) as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id="CP-B", name="bench")
        device, device_token = central_db.enrol(cdb, token)
    kiosk = tmp / f"backlog-{batch_size}.db"
    t = time.perf_counter()
    fill_backlog(kiosk, rows, device.id, device.checkpoint_id)
    fill_s = time.perf_counter() - t
    proc, url = start_central(central_path)
    try:
        t = time.perf_counter()
        result = sync_once(db_path=kiosk, server_url=url, token=device_token,
                           batch_size=batch_size)
        seconds = time.perf_counter() - t
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return {
        "rows": rows, "batch_size": batch_size, "fill_s": round(fill_s, 1),
        "drain_s": round(seconds, 1), "rows_per_s": round(result.delivered / seconds),
        "delivered": result.delivered, "ok": result.ok,
    }


def main() -> None:
    # Run as a script, this file's folder is sys.path[0] and its name would shadow the
    # standard library's ``queue`` (which urllib3 imports): put the repository there.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path[0] = str(REPO)
    else:
        sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--commits", type=int, default=500)
    parser.add_argument("--batch-size", type=int, action="append")
    options = parser.parse_args()
    # Measure on the disk the repository is on (here: the same disk as /work).
    with tempfile.TemporaryDirectory(dir=REPO) as tmp_name:
        tmp = Path(tmp_name)
        report = {"disk": os.fspath(tmp), "latency": [], "drain": []}
        for mode in ("FULL", "NORMAL"):
            path = tmp / f"latency-{mode}-{uuid.uuid4().hex[:6]}.db"
            report["latency"].append(commit_latency(path, mode, options.commits))
            print(json.dumps(report["latency"][-1]), file=sys.stderr)
        for batch_size in options.batch_size or [500]:
            report["drain"].append(drain(tmp, options.rows, batch_size))
            print(json.dumps(report["drain"][-1]), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
