"""What folding the kiosks' declarations into the status document costs the central
(issue 13), PostgreSQL from tests/pgserver.py with fsync on, 127.0.0.1 only.

1. Ingest: ``db.ingest`` of ``--batches`` batches of 500 rows (process CPU and wall a
   check-in), rows of which ``--declared`` percent are declarations with an officer, on a
   database with the ``scans_declared`` partial index and the ``officer`` column, and the
   same with the index dropped.  ``--code DIR`` runs the ingest of another checkout instead
   (e.g. ``git archive main | tar -x -C /tmp/main``) to compare with the code before.
2. Folding: ``people.republish`` with an import of ``--people`` records (random hashes)
   and ``--declarations`` declared rows: cold (every declaration hashed with Argon2id) and
   warm (the folder's cache), with the validator the central runs on publish.

    .venv/bin/python bench/central_declared.py --rounds 3
    .venv/bin/python bench/central_declared.py --code /tmp/main --rounds 3   # before
"""

from __future__ import annotations

import sys

# bench/inspect.py and bench/queue.py would shadow the standard library's modules of those
# names: drop this folder from the path first.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def cpu() -> float:
    t = os.times()
    return t.user + t.system


def server_cpu(marker: str) -> float:
    """CPU seconds of the PostgreSQL processes whose command line names ``marker``."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker not in (proc / "cmdline").read_text(errors="replace") and \
                    not (proc / "cwd").resolve().as_posix().startswith(marker):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def rows(device: dict, n: int, declared_pct: int, officer: bool) -> list[dict]:
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        declared = (i * 100) // n < declared_pct
        row = {
            "id": str(uuid.uuid4()), "device_id": device["device_id"],
            "checkpoint_id": device["checkpoint_id"], "direction": "in", "kind": "cccd",
            "person_key": f"0011850{i % 100000:05d}", "display": {"name": "N***"},
            "decision": "pass", "reasons": [], "source": "declared" if declared else "scan",
            "override_of": None, "original_decision": None, "override_reason": None,
            "recorded_at": (now - timedelta(minutes=5)).isoformat(), "monotonic_ns": 1,
            "boot_id": "b", "clock_synced": True, "corrected_at": None, "app_version": "0.1.0",
        }
        if declared and officer:
            row["officer"] = "hn-017"
        out.append(row)
    return out


def ingest_round(central_db, url: str, *, batches: int, declared: int, officer: bool,
                 drop_index: bool, marker: str) -> tuple[float, float, float]:
    db = central_db.connect(url)
    if drop_index:
        db.execute("DROP INDEX IF EXISTS scans_declared")
    token = central_db.create_enrolment_token(db, checkpoint_id="CP", name="cp")
    device, _ = central_db.enrol(db, token)
    dev = {"device_id": device.id, "checkpoint_id": device.checkpoint_id}
    work = [rows(dev, 500, declared, officer) for _ in range(batches)]
    c0, w0, s0 = cpu(), time.perf_counter(), server_cpu(marker)
    for batch in work:
        central_db.ingest(db, device, batch)
    c1, w1, s1 = cpu(), time.perf_counter(), server_cpu(marker)
    db.close()
    n = batches * 500
    return (c1 - c0) / n * 1e6, (w1 - w0) / n * 1e6, (s1 - s0) / n * 1e6


def fold_figures(url: str, people: int, declarations: int) -> None:
    from kiosk.domain.declared_status import DeclarationFolder
    from kiosk.domain.documents import VALIDATORS
    from kiosk.domain.watchlist import DEFAULT_KDF
    from offline_queue.central import db as central_db
    from offline_queue.central import people as central_people

    now = datetime.now(UTC)
    at = (now - timedelta(hours=2)).isoformat()
    imported = json.dumps({
        "version": 1, "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(days=1)).isoformat(), "salt": secrets.token_hex(16),
        "kdf": DEFAULT_KDF.as_json(),
        "records": [{"h": [secrets.token_hex(32)], "declared_at": at} for _ in range(people)],
    }, separators=(",", ":")).encode()
    db = central_db.connect(url)
    token = central_db.create_enrolment_token(db, checkpoint_id="CPF", name="cp")
    device, _ = central_db.enrol(db, token)
    dev = {"device_id": device.id, "checkpoint_id": device.checkpoint_id}
    for start in range(0, declarations, 500):
        central_db.ingest(db, device, rows(dev, min(500, declarations - start), 100, True))
    folder = DeclarationFolder()
    t0 = time.perf_counter()
    central_people.set_import(db, imported, fold=folder, validators=VALIDATORS)
    cold = time.perf_counter() - t0
    body = central_db.get_document_record(db, "status").body
    central_db.ingest(db, device, rows(dev, 1, 100, True))  # one more declaration
    t0 = time.perf_counter()
    central_people.republish(db, folder, validators=VALIDATORS)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    VALIDATORS["status"](body)
    check = time.perf_counter() - t0
    db.close()
    print(f"fold: import {people:,} records ({len(imported) / 1e6:.1f} MB), {declarations:,} "
          f"declarations: cold {cold:.2f} s ({folder.hashed:,} Argon2id hashes), warm "
          f"(one new declaration) {warm:.2f} s, of which the publish validator ~{check:.2f} s;"
          f" document {len(body) / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=REPO, help="checkout whose ingest runs")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--declared", type=int, default=5, help="percent of declared rows")
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--declarations", type=int, default=1_000)
    parser.add_argument("--no-fold", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    from pgserver import PgServer

    sys.path.insert(0, str(args.code.resolve()))
    central_db = importlib.import_module("offline_queue.central.db")
    print(f"ingest code: {Path(central_db.__file__).parent.parent.parent}; load average "
          f"{os.getloadavg()[0]:.1f}")
    pg = PgServer(durable=True).start()
    try:
        new = args.code.resolve() == REPO
        variants = [("this code", False)] + ([("index dropped", True)] if new else [])
        for r in range(args.rounds):
            # Alternating which goes first: the first rounds on a new server run slower.
            for name, drop in variants if r % 2 == 0 else variants[::-1]:
                cpu_us, wall_us, pg_us = ingest_round(
                    central_db, pg.new_database(), batches=args.batches,
                    declared=args.declared, officer=new, drop_index=drop,
                    marker=str(pg.root))
                print(f"round {r + 1} ingest, {name}, {args.declared}% declared: "
                      f"{cpu_us:.1f} µs CPU, PostgreSQL {pg_us:.1f} µs CPU, {wall_us:.1f} µs "
                      "wall a check-in")
        if new and not args.no_fold:
            fold_figures(pg.new_database(), args.people, args.declarations)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
