"""The dashboard's pages on a large PostgreSQL central (issue 12), end to end through the
Flask app (session lookup, query, audit row, template, CSV): what an official waits for,
minus the network.

Generates the check-ins as bench/central_queries.py does (5,677 checkpoints, one device
each, 30 days, one retention run), adds a user per role, then times each page, cold
(PostgreSQL restarted; the OS page cache stays warm) and warm (median of 5).

    .venv/bin/python bench/dashboard_pages.py --rows 10000000
    .venv/bin/python bench/dashboard_pages.py --rows 1000000
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from central_queries import MAX_ROWS, generate  # noqa: E402
from pgserver import PgServer  # noqa: E402

from offline_queue.central import db as central_db  # noqa: E402
from offline_queue.central import queries  # noqa: E402
from offline_queue.central.app import create_app  # noqa: E402
from offline_queue.central.dashboard.users import add_user  # noqa: E402

PASSWORD = "bench password 123"


def _login(app, username: str):  # noqa: ANN202
    client = app.test_client()
    page = client.get("/dashboard/login").data
    token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
    t0 = time.perf_counter()
    r = client.post("/dashboard/login", data={"username": username, "password": PASSWORD,
                                               "csrf_token": token})
    elapsed = time.perf_counter() - t0
    assert r.status_code == 303, r.status_code
    html = client.get("/dashboard/activity?days=1").data
    client.csrf = re.search(rb'name="csrf_token" value="([^"]+)"', html).group(1).decode()
    return client, elapsed


def pages(official, admin, person: str, visit: datetime) -> dict:
    local = visit + timedelta(hours=7)
    window = {"checkpoint": "CB-00001", "since": f"{local:%Y-%m-%d %H:%M}",
              "until": f"{local + timedelta(hours=1):%Y-%m-%d %H:%M}"}
    return {
        "activity 7 days (HTML)": lambda: official.get("/dashboard/activity?days=7"),
        "activity 7 days (CSV)": lambda: official.get("/dashboard/activity.csv?days=7"),
        "fleet": lambda: admin.get("/dashboard/fleet"),
        "trace person 14 days": lambda: official.post("/dashboard/trace/person", data={
            "identifier": person, "days": "14", "csrf_token": official.csrf}),
        "trace person CSV": lambda: official.post("/dashboard/trace/person", data={
            "identifier": person, "days": "14", "format": "csv",
            "csrf_token": official.csrf}),
        "checkpoint window 1 h": lambda: official.post("/dashboard/trace/checkpoint", data={
            **window, "csrf_token": official.csrf}),
        "contacts ±15 min": lambda: official.post("/dashboard/trace/contacts", data={
            "identifier": person, "minutes": "15", "csrf_token": official.csrf}),
        "audit log": lambda: admin.get("/dashboard/audit"),
    }


def measure(url: str, person: str, visit: datetime, phase: str, results: dict) -> None:
    app = create_app(url)
    try:
        official, login_s = _login(app, "hoa")
        admin, _ = _login(app, "admin")
        results[f"{phase} login (Argon2id verify)"] = round(login_s, 3)
        for label, fetch in pages(official, admin, person, visit).items():
            times = []
            for _ in range(1 if phase == "cold" else 5):
                t0 = time.perf_counter()
                r = fetch()
                times.append(time.perf_counter() - t0)
                assert r.status_code == 200, (label, r.status_code)
            key = f"{phase} {label}"
            results[key] = round(statistics.median(times), 4)
            print(f"{key:40s} {results[key]:8.3f} s  {len(r.data) / 1024:8.0f} KiB")
    finally:
        app.extensions["checkpoint_kiosk_close"]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--checkpoints", type=int, default=5677)
    args = parser.parse_args()
    if not 0 < args.rows <= MAX_ROWS:
        raise SystemExit(f"--rows is {args.rows}; use 1 to {MAX_ROWS}")
    results: dict = {"rows": args.rows, "checkpoints": args.checkpoints}
    with PgServer(durable=True) as pg:
        url = pg.new_database("dashboard")
        now = datetime.now(UTC)
        with central_db.connect(url) as conn:
            t0 = time.perf_counter()
            person = generate(conn, args.rows, args.checkpoints, now)
            results["generate_s"] = round(time.perf_counter() - t0, 1)
            conn.execute("VACUUM ANALYZE scans")
            queries.apply_retention(conn, days=31, now=now)
            for name, role in (("admin", "administrator"), ("hoa", "official")):
                add_user(conn, name, role, PASSWORD)
            visit = now - timedelta(days=3)
        print(f"generated {args.rows} rows in {results['generate_s']} s")
        pg.restart()
        measure(url, person, visit, "cold", results)
        measure(url, person, visit, "warm", results)
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
