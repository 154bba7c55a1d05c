"""``central copy`` on a large SQLite central: rows per second, memory, verification time.

Generates a SQLite central of N check-ins over 30 days at C checkpoints (``scans`` and
``daily_counts`` as ingest leaves them, written straight into the tables, the way
bench/central_queries.py fills PostgreSQL), then copies it into a throw-away PostgreSQL
(tests/pgserver.py, durable: fsync on, as a province runs it) with
``offline_queue.central.transfer.copy_central`` and prints the copy's and the
verification's times, the scans table's rows per second and the process's peak memory.

    .venv/bin/python bench/central_copy.py --rows 1000000
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from pgserver import PgServer  # noqa: E402

from offline_queue.central import db as central_db  # noqa: E402
from offline_queue.central import schema, transfer  # noqa: E402

MAX_ROWS = 20_000_000


def generate(path: Path, rows: int, checkpoints: int, now: datetime) -> None:
    with central_db.connect(path) as conn:
        conn.conn.execute("PRAGMA synchronous=OFF")
        with conn.atomic():
            for i in range(checkpoints):
                conn.execute("INSERT INTO checkpoints (id, name, created_at, num) "
                             "VALUES (?, ?, ?, ?)",
                             [f"CB-{i:05d}", f"checkpoint {i}", "2026-01-01T00:00:00Z", i + 1])
                conn.execute("INSERT INTO devices (id, checkpoint_id, token_hash, enrolled_at, "
                             "num) VALUES (?, ?, ?, ?, ?)",
                             [f"kiosk-{i:05d}", f"CB-{i:05d}", f"h{i}", "2026-01-01T00:00:00Z",
                              i + 1])
        rng = random.Random(7)
        end = schema.to_us(now)
        span = 30 * schema.US_PER_DAY
        people = max(rows // 20, 1)
        offset = schema.DEFAULT_DAY_OFFSET_MINUTES * 60_000_000
        counts: dict[tuple[int, int], int] = {}
        insert = (f"INSERT INTO scans ({', '.join(schema.SCAN_COLUMNS)}) VALUES "
                  f"({', '.join('?' * len(schema.SCAN_COLUMNS))})")
        chunk = 100_000
        for start in range(0, rows, chunk):
            batch = []
            for j in range(start, min(rows, start + chunk)):
                t = end - span + (span * j) // rows
                cp = rng.randrange(checkpoints) + 1
                ms = t // 1000
                uid = uuid.UUID(int=(ms << 80) | (0x7 << 76) | rng.getrandbits(76)
                                & ~(0xF << 76) | (0b10 << 62))
                batch.append((str(uid), t, t, t + 5_000_000, None, rng.getrandbits(63), cp, cp,
                              None, 1, 1, 1, 1, 2, 3, 1, None,
                              f"0010{rng.randrange(people):08d}", '{"name":"N***"}', None,
                              None, None, None))
                day = (t + offset) // schema.US_PER_DAY
                counts[(cp, day)] = counts.get((cp, day), 0) + 1
            with conn.atomic():
                conn.conn.executemany(insert, batch)
        with conn.atomic():
            conn.conn.executemany("INSERT INTO daily_counts VALUES (?, ?, ?)",
                                  [(c, d, n) for (c, d), n in counts.items()])
        conn.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--checkpoints", type=int, default=500)
    args = parser.parse_args()
    if not 0 < args.rows <= MAX_ROWS:
        raise SystemExit(f"--rows is {args.rows}; use 1 to {MAX_ROWS}")
    results: dict[str, object] = {"rows": args.rows, "checkpoints": args.checkpoints}
    with tempfile.TemporaryDirectory() as folder, PgServer(durable=True) as pg:
        source = Path(folder) / "central.db"
        t0 = time.perf_counter()
        generate(source, args.rows, args.checkpoints, datetime.now(UTC))
        results["generate_s"] = round(time.perf_counter() - t0, 1)
        results["sqlite_bytes"] = source.stat().st_size
        url = pg.new_database("copied")
        phases: dict[str, float] = {}
        last = [time.perf_counter(), "start"]

        def progress(text: str) -> None:
            now = time.perf_counter()
            phases[str(last[1])] = phases.get(str(last[1]), 0.0) + now - float(last[0])
            last[:] = [now, text.split()[0]]

        t0 = time.perf_counter()
        report = transfer.copy_central(source, url, progress=progress)
        progress("end")
        results["total_s"] = round(time.perf_counter() - t0, 1)
        results["phases_s"] = {k: round(v, 1) for k, v in phases.items() if k != "start"}
        scans = report.tables["scans"]
        results["scans_copy_s"] = round(scans.seconds, 1)
        results["scans_rows_per_s"] = round(scans.rate)
        results["mismatches"] = [t.name for t in report.mismatches]
        results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
