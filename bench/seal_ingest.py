"""What sealed identities cost (issue 14 item 3, docs/privacy.md): the central's ingest of
sealed rows against the same rows in clear, measured in the same run, and the kiosk's
sealing of one check-in.

The central side calls ``offline_queue.central.db.ingest`` directly (no HTTP: the figure is
the opening, not the server) with 500-row batches, on SQLite and, when the PostgreSQL
server binaries are installed, on PostgreSQL (tests/pgserver.py, the prepared unnest()
INSERT).  Each batch of sealed rows is one kiosk session (one X25519 at the central, then
one AEAD opening a row); ``--sessions-per-batch`` spreads a batch over more sessions (a
backlog from kiosks restarted often).  Rounds alternate clear and sealed; the median is
printed.

    .venv/bin/python bench/seal_ingest.py
    .venv/bin/python bench/seal_ingest.py --rounds 9 --sessions-per-batch 50
"""

from __future__ import annotations

import sys

sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from offline_queue.central import db as central_db  # noqa: E402
from offline_queue.central.keys import SealingKeys  # noqa: E402
from offline_queue.records import CheckIn  # noqa: E402
from offline_queue.sealing import Sealer, aad_for  # noqa: E402
from offline_queue.store import SEALING_KEY_META, Store  # noqa: E402


def rows(device: central_db.Device, n: int, keys: SealingKeys | None, sessions: int
         ) -> list[dict]:
    recorded = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    sealers = [Sealer(keys.public) for _ in range(sessions)] if keys else []
    out = []
    for i in range(n):
        row = {"id": str(uuid.uuid4()), "device_id": device.id,
               "checkpoint_id": device.checkpoint_id, "direction": "in", "kind": "cccd",
               "person_key": f"0011850{i % 100000:05d}", "display": {"name": "N***"},
               "decision": "pass", "reasons": [], "source": "scan", "override_of": None,
               "original_decision": None, "override_reason": None, "recorded_at": recorded,
               "monotonic_ns": 1, "boot_id": "b", "clock_synced": True, "corrected_at": None,
               "app_version": "0.1.0"}
        if keys:
            row["sealed"] = sealers[i % sessions].seal({"person_key": row["person_key"]},
                                                      aad_for(row["id"], device.id))
            row["person_key"] = None
        out.append(row)
    return out


def measure(target: str, *, batch: int, rounds: int, sessions: int) -> tuple[float, float]:
    """Median µs per row of ingest, clear and sealed."""
    keys = SealingKeys.generate()
    with central_db.connect(target) as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id="B", name="B")
        device, _ = central_db.enrol(cdb, token)
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for sealed in (False, True):
                items = rows(device, batch, keys if sealed else None, sessions)
                opener = SealingKeys(dict(keys._keys), keys.current_id).opener  # cold cache
                start = time.perf_counter()
                results = central_db.ingest(cdb, device, items, opener=opener)
                times[sealed].append((time.perf_counter() - start) / batch * 1e6)
                assert all(r["status"] == "accepted" for r in results), results[:2]
    return statistics.median(times[False]), statistics.median(times[True])


def kiosk_side(n: int = 300) -> tuple[float, float]:
    """Median µs of Store.record with the identity sealed, and of the sealing alone."""
    keys = SealingKeys.generate()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "k.db"
        with Store(path, device_id="d", checkpoint_id="c") as store:
            store._db.execute("INSERT INTO sync_meta VALUES (?, ?)", [
                SEALING_KEY_META, __import__("json").dumps(keys.public.as_json())])
            store._db.conn.commit()
            record = []
            for i in range(n):
                start = time.perf_counter()
                store.record(CheckIn("in", "cccd", f"0011850{i:05d}", {}, "pass"))
                record.append((time.perf_counter() - start) * 1e6)
    sealer = Sealer(keys.public)
    seal = []
    for i in range(n):
        start = time.perf_counter()
        sealer.seal({"person_key": f"0011850{i:05d}"}, aad_for(str(i), "d"))
        seal.append((time.perf_counter() - start) * 1e6)
    return statistics.median(record), statistics.median(seal)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sessions-per-batch", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clear, sealed = measure(str(Path(folder) / "central.db"), batch=args.batch,
                                rounds=args.rounds, sessions=args.sessions_per_batch)
    print(f"SQLite ingest, {args.batch}-row batches, {args.sessions_per_batch} session(s) "
          f"a batch: clear {clear:.1f} µs/row, sealed {sealed:.1f} µs/row, "
          f"opening +{sealed - clear:.1f} µs/row, ratio {sealed / clear:.2f}")
    from pgserver import PgServer, find_bin_dir

    if find_bin_dir() is not None:
        with PgServer() as pg:
            clear, sealed = measure(pg.new_database(), batch=args.batch, rounds=args.rounds,
                                    sessions=args.sessions_per_batch)
        print(f"PostgreSQL ingest (prepared unnest), {args.batch}-row batches: clear "
              f"{clear:.1f} µs/row, sealed {sealed:.1f} µs/row, opening "
              f"+{sealed - clear:.1f} µs/row, ratio {sealed / clear:.2f}")
    else:
        print("PostgreSQL: no server binaries (systemd/install.sh --dev installs them)")
    record, seal = kiosk_side()
    print(f"kiosk: Store.record with the identity sealed {record:.0f} µs (median, "
          f"synchronous=FULL), of which sealing {seal:.1f} µs")


if __name__ == "__main__":
    main()
