"""Slow clients against the reference central: can a kiosk still deliver?

    python -m bench.slowloris [--slow 150,600,900] [--requests 20] [--seconds 12]

For each count, that many sockets send half a request and then one more header byte
every 5 s (so an idle timeout alone never drops them), while a kiosk posts batches of
50 check-ins with a 5 s timeout.  Runs once with waitress's defaults and once with the
limits in ``offline_queue.central.server``.  Figures go to docs/offline-queue.md.
Everything is bounded: sockets, requests and seconds.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from offline_queue.central.server import CentralServer
from tests.central_helpers import enrol, item

WAITRESS_DEFAULTS = {"connection_limit": 100, "channel_timeout": 120, "cleanup_interval": 30}


def drip(socks: list[socket.socket], stop: threading.Event) -> None:
    while not stop.wait(5):
        for s in socks:
            try:
                s.sendall(b"X")
            except OSError:
                pass


def run(slow: int, n_requests: int, seconds: float, settings: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "c.db"
        with CentralServer(db, **settings) as server:
            device = enrol(server, db)
            socks = []
            for _ in range(slow):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
                s.sendall(b"POST /v1/checkins HTTP/1.1\r\nHost: c\r\nX-Slow: ")
                socks.append(s)
            stop = threading.Event()
            dripper = threading.Thread(target=drip, args=(socks, stop), daemon=True)
            dripper.start()
            times, failures = [], 0
            deadline = time.monotonic() + seconds
            try:
                time.sleep(0.5)
                for _ in range(n_requests):
                    if time.monotonic() > deadline:
                        break
                    started = time.monotonic()
                    try:
                        r = requests.post(
                            server.url + "/v1/checkins", timeout=5,
                            json={"checkins": [item(device) for _ in range(50)]},
                            headers={"Authorization": f"Bearer {device['device_token']}"})
                        r.raise_for_status()
                        times.append((time.monotonic() - started) * 1000)
                    except requests.RequestException:
                        failures += 1
            finally:
                stop.set()
                dripper.join(timeout=6)
                for s in socks:
                    s.close()
    times.sort()
    return {"slow": slow, "ok": len(times), "failed": failures,
            "p50_ms": round(statistics.median(times), 1) if times else None,
            "max_ms": round(times[-1], 1) if times else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", default="150,600,900")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=12)
    args = parser.parse_args()
    for label, settings in (("waitress defaults", WAITRESS_DEFAULTS), ("ours", {})):
        for slow in (int(n) for n in args.slow.split(",")):
            if label == "waitress defaults" and slow > 150:
                continue  # already locked out at 150
            print(label, run(slow, args.requests, args.seconds, settings), flush=True)


if __name__ == "__main__":
    main()
