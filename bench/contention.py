"""Check-in latency while the sync worker writes the same file (issue 9 #6).

    python -m bench.contention [--seconds 5] [--hammer]

One thread records check-ins (half of them officer overrides, which read then write) as
the scan loop does; with ``--hammer`` another connection claims and marks rows in a tight
loop, far harder than the real worker.  Prints JSON: records, failures, p50/p99/max ms.
Run it with PYTHONPATH pointing at another checkout to compare versions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path


def run(seconds: float, hammer: bool) -> dict:
    from offline_queue.outbox import Outbox
    from offline_queue.records import CheckIn
    from offline_queue.store import Store

    folder = Path(tempfile.mkdtemp(prefix="contention-"))
    path = folder / "kiosk.db"
    stop = threading.Event()
    latencies: list[float] = []
    failures: list[str] = []
    claims = [0, 0]  # rounds, failures

    def sync_loop() -> None:
        with Outbox(path) as outbox:
            while not stop.is_set():
                try:
                    ids = [i["id"] for i in outbox.claim(20)]
                    outbox.mark_results({i: ("sent", None) for i in ids}, store.clock.now())
                    claims[0] += 1
                except Exception:  # noqa: BLE001 - counted
                    claims[1] += 1

    with Store(path, device_id="d", checkpoint_id="c") as store:
        worker = threading.Thread(target=sync_loop)
        if hammer:
            worker.start()
        ends = time.monotonic() + seconds
        i = 0
        last: str | None = None
        while time.monotonic() < ends:
            i += 1
            override = i % 2 == 0 and last is not None
            entry = CheckIn(direction="in", kind="cccd", person_key=f"001085{i:06d}",
                            decision="pass" if override else "stop",
                            override_of=last if override else None,
                            original_decision="stop" if override else None,
                            source="manual" if override else "scan")
            started = time.perf_counter()
            try:
                last = store.record(entry)
                latencies.append((time.perf_counter() - started) * 1000)
            except Exception as e:  # noqa: BLE001 - counted
                failures.append(str(e)[:80])
        stop.set()
        if hammer:
            worker.join()
    q = statistics.quantiles(latencies, n=100)
    return {"hammer": hammer, "records": len(latencies) + len(failures),
            "record_failures": len(failures), "p50_ms": round(q[49], 2),
            "p99_ms": round(q[98], 2), "max_ms": round(max(latencies), 1),
            "sync_rounds": claims[0], "sync_failures": claims[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--hammer", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.hammer)))


if __name__ == "__main__":
    main()
