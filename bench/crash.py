"""Crash campaign: record and sync while being ``kill -9``ed at random moments.

    python -m bench.crash --kills 200

A child process records check-ins (writing each id to a log only after ``record()``
returned) with the sync worker running; the parent kills it at a random moment,
restarts it, and repeats.  At the end the queue is drained and three sets must agree:
ids the child was told were recorded ⊆ ids in the kiosk database == ids on the server,
with no id stored twice and no conflict.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def child(db: str, server: str, token: str, device: str, checkpoint: str, log: str) -> None:
    from offline_queue.records import CheckIn
    from offline_queue.store import Store
    from offline_queue.sync import SyncWorker

    rng = random.Random()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with Store(db, device_id=device, checkpoint_id=checkpoint) as store, SyncWorker(
        db_path=db, server_url=server, token=token, batch_size=25, backoff_base=0.01,
        backoff_cap=0.1, boot_jitter=0, link_jitter=0, idle_interval=0.01,
    ) as worker:
        i = 0
        while True:
            i += 1
            checkin_id = store.record(CheckIn(
                direction=rng.choice(["in", "out"]), kind="cccd", person_key=f"{i:012d}",
                display={"name": f"N*** {i}"}, decision=rng.choice(["pass", "check", "stop"]),
            ))
            # Only now is the id "acknowledged" (the kiosk would light green).
            os.write(fd, (checkin_id + "\n").encode())
            worker.poke()
            time.sleep(rng.uniform(0, 0.004))


def campaign(kills: int, workdir: Path, *, seed: int | None = None, quiet: bool = False) -> dict:
    from offline_queue.central import db as central_db
    from offline_queue.central.server import CentralServer
    from offline_queue.sync import sync_once

    rng = random.Random(seed)
    kiosk_db, central_path, log = workdir / "kiosk.db", workdir / "central.db", workdir / "ids"
    started = time.monotonic()
    with CentralServer(central_path, threads=4) as server:
        with central_db.connect(central_path) as cdb:
            token = central_db.create_enrolment_token(cdb, checkpoint_id="CP-CRASH", name="crash")
            device, device_token = central_db.enrol(cdb, token)
        args = [sys.executable, str(Path(__file__).resolve()), "child", str(kiosk_db),
                server.url, device_token, device.id, device.checkpoint_id, str(log)]
        for n in range(kills):
            proc = subprocess.Popen(args, cwd=REPO, stderr=subprocess.DEVNULL)
            # From "still importing" through "recording and syncing for a while".
            time.sleep(rng.uniform(0.05, 1.2))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if not quiet and (n + 1) % 20 == 0:
                print(f"{n + 1} kills", file=sys.stderr)
        for _ in range(20):
            result = sync_once(db_path=kiosk_db, server_url=server.url, token=device_token)
            if result.ok:
                break
    acknowledged = set(log.read_text().split()) if log.exists() else set()
    conn = sqlite3.connect(kiosk_db)
    kiosk_ids = [r[0] for r in conn.execute("SELECT id FROM checkins")]
    states = dict(conn.execute("SELECT state, count(*) FROM checkins GROUP BY state"))
    integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
    cconn = sqlite3.connect(central_path)
    server_ids = [r[0] for r in cconn.execute("SELECT id FROM checkins")]
    conflicts = cconn.execute("SELECT count(*) FROM conflicts").fetchone()[0]
    return {
        "kills": kills,
        "seconds": round(time.monotonic() - started, 1),
        "acknowledged": len(acknowledged),
        "kiosk_rows": len(kiosk_ids),
        "server_rows": len(server_ids),
        "lost_locally": len(acknowledged - set(kiosk_ids)),
        "missing_on_server": len(set(kiosk_ids) - set(server_ids)),
        "unknown_on_server": len(set(server_ids) - set(kiosk_ids)),
        "duplicates_on_server": len(server_ids) - len(set(server_ids)),
        "conflicts": conflicts,
        "kiosk_states": states,
        "kiosk_quick_check": integrity,
        "final_sync_ok": result.ok,
    }


def main() -> None:
    # Run as a script, bench/ is sys.path[0] and bench/queue.py would shadow the standard
    # library's ``queue`` (which urllib3 imports): put the repository there instead.
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path[0] = str(REPO)
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        child(*sys.argv[2:8])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = campaign(options.kills, Path(tmp), seed=options.seed)
    print(json.dumps(report, indent=2))
    ok = (report["lost_locally"] == report["missing_on_server"] == report["unknown_on_server"]
          == report["duplicates_on_server"] == report["conflicts"] == 0)
    sys.exit(0 if ok and report["final_sync_ok"] else 1)


if __name__ == "__main__":
    main()
