"""The tracing and report queries on a large PostgreSQL central (issue 12), bounded.

Generates N check-ins over 30 days at C checkpoints with COPY (the ``scans`` table and
``daily_counts`` as ingest leaves them), then times, warm and cold (after a server
restart, so PostgreSQL's own cache is empty; the OS page cache is not flushed):
the 7-day activity report, a person trace (14 days), a checkpoint window (1 hour) and
the contacts of a case (±15 minutes).  Also prints the bytes a check-in takes on disk.

    .venv/bin/python bench/central_queries.py --rows 10000000     # the issue's size
    .venv/bin/python bench/central_queries.py --rows 1000000      # what fits a short run
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from pgserver import PgServer  # noqa: E402

from offline_queue.central import db as central_db  # noqa: E402
from offline_queue.central import queries, schema  # noqa: E402

MAX_ROWS = 20_000_000


def generate(conn, rows: int, checkpoints: int, now: datetime) -> str:
    """COPY ``rows`` check-ins into ``scans``; a person key that has check-ins."""
    for i in range(checkpoints):
        conn.execute("INSERT INTO checkpoints (id, name, created_at) VALUES (?, ?, ?)",
                     [f"CB-{i:05d}", f"checkpoint {i}", "2026-01-01T00:00:00Z"])
        conn.execute("INSERT INTO devices (id, checkpoint_id, token_hash, enrolled_at) "
                     "VALUES (?, ?, ?, ?)", [f"kiosk-{i:05d}", f"CB-{i:05d}", f"h{i}",
                                             "2026-01-01T00:00:00Z"])
    nums = dict(conn.execute("SELECT id, num FROM checkpoints").fetchall())
    devs = dict(conn.execute("SELECT checkpoint_id, num FROM devices").fetchall())
    rng = random.Random(7)
    end = schema.to_us(now)
    span = 30 * schema.US_PER_DAY
    people = max(rows // 20, 1)  # 20 check-ins a person over the month
    columns = ", ".join(schema.SCAN_COLUMNS)
    chunk = 200_000
    counts: dict[tuple[int, int], int] = {}
    offset = schema.DEFAULT_DAY_OFFSET_MINUTES * 60_000_000
    raw = conn.conn
    for start in range(0, rows, chunk):
        n = min(chunk, rows - start)
        buf = io.StringIO()
        # Time-ordered, like ingest: ids and event times rise together.
        base = end - span + (span * start) // rows
        for j in range(n):
            t = base + (span * j) // rows
            cp = rng.randrange(checkpoints)
            key = f"0010{rng.randrange(people):08d}"
            cpn, dev = nums[f"CB-{cp:05d}"], devs[f"CB-{cp:05d}"]
            ms = t // 1000
            uid = uuid.UUID(int=(ms << 80) | (0x7 << 76) | rng.getrandbits(76) & ~(0xF << 76)
                            | (0b10 << 62))
            buf.write(f"{uid}\t{t}\t{t}\t{t + 5_000_000}\t\\N\t{rng.getrandbits(63)}\t{cpn}\t"
                      f"{dev}\t\\N\t1\t1\t1\t1\t2\t3\t1\t\\N\t{key}\t"
                      '{"name":"N***"}\t\\N\t\\N\t\\N\n')
            day = (t + offset) // schema.US_PER_DAY
            counts[(cpn, day)] = counts.get((cpn, day), 0) + 1
        buf.seek(0)
        with raw.cursor() as cur, cur.copy(f"COPY scans ({columns}) FROM STDIN") as copy:
            while data := buf.read(1 << 20):
                copy.write(data)
    with raw.cursor() as cur, cur.copy("COPY daily_counts (checkpoint, day, scans) "
                                       "FROM STDIN") as copy:
        for (cpn, day), n in counts.items():
            copy.write_row((cpn, day, n))
    return "0010" + f"{rng.randrange(people):08d}"


def timed(label: str, fn, results: dict) -> None:
    t0 = time.perf_counter()
    answer = fn()
    results[label] = round(time.perf_counter() - t0, 4)
    size = len(answer.get("checkins", answer.get("checkpoints", answer.get("visits", []))))
    print(f"{label:34s} {results[label]:8.3f} s  ({size} items)")


def run(pg: PgServer, rows: int, checkpoints: int) -> dict:
    url = pg.new_database("queries")
    now = datetime.now(UTC)
    results: dict = {"rows": rows, "checkpoints": checkpoints}
    with central_db.connect(url) as conn:
        t0 = time.perf_counter()
        person = generate(conn, rows, checkpoints, now)
        results["generate_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE scans")
        conn.execute("VACUUM ANALYZE daily_counts")
        results["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
        # As in production (the daily timer): coverage then comes from the last run,
        # not from min(event_time) over every row.
        queries.apply_retention(conn, days=31, now=now)
        size = conn.execute("SELECT pg_total_relation_size('scans')").fetchone()[0]
        results["bytes_per_checkin"] = round(size / rows, 1)
        print(f"generated {rows} rows in {results['generate_s']} s; "
              f"{results['bytes_per_checkin']} bytes a check-in")
    for phase in ("cold", "warm"):
        if phase == "cold":
            pg.restart()
        with central_db.connect(url) as conn:
            visit = now - timedelta(days=3)
            timed(f"{phase} 7-day report", lambda c=conn: queries.activity_report(
                c, days=7, now=now), results)
            timed(f"{phase} person trace 14 days", lambda c=conn: queries.trace_person(
                c, person, days=14, now=now), results)
            timed(f"{phase} checkpoint window 1 h",
                  lambda c=conn, v=visit: queries.passed_checkpoint(
                      c, "CB-00001", v, v + timedelta(hours=1), now=now), results)
            timed(f"{phase} contacts ±15 min", lambda c=conn: queries.contacts(
                c, person, days=14, minutes=15, now=now), results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--checkpoints", type=int, default=5677)
    args = parser.parse_args()
    if not 0 < args.rows <= MAX_ROWS:
        raise SystemExit(f"--rows is {args.rows}; use 1 to {MAX_ROWS}")
    with PgServer(durable=True) as pg:
        print(json.dumps(run(pg, args.rows, args.checkpoints), indent=2))


if __name__ == "__main__":
    main()
