"""How long a scan waits while a large status document is applied (issue 13).

A status document of ``--people`` records (random hashes: the records' Argon2id hashes are
the central's work, not the kiosk's) is stored as the sync worker stores it; a "loop"
thread decides about a CCCD code ``--fps`` times a second through ``LiveChecker`` as the
scan loop does, and the longest decision and the longest gap between two frames are
measured: the checker applying documents on the loop's thread (before) and on its own
thread (now), and the decode alone: ``json.loads`` whole against the stepwise reader.

    .venv/bin/python bench/status_apply.py --people 200000
"""

from __future__ import annotations

import sys

# bench/inspect.py and bench/queue.py would shadow the standard library's modules of those
# names: drop this folder from the path first.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/bench")]

import argparse  # noqa: E402
import json  # noqa: E402
import secrets  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kiosk import config as config_mod  # noqa: E402
from kiosk.domain.credentials import recognise  # noqa: E402
from kiosk.domain.status import StatusList, json_object_in_steps  # noqa: E402
from kiosk.domain.watchlist import DEFAULT_KDF  # noqa: E402
from kiosk.runtime.checker import LiveChecker  # noqa: E402
from kiosk.testing.samples import SAMPLES  # noqa: E402
from offline_queue.documents import Document  # noqa: E402
from offline_queue.outbox import Outbox  # noqa: E402
from offline_queue.store import Store  # noqa: E402

CCCD = next(s for s in SAMPLES if s.name == "cccd").payload


def document(people: int, now: datetime) -> bytes:
    at = (now - timedelta(hours=2)).isoformat()
    return json.dumps({
        "version": 1, "issued_at": now.isoformat(),
        "expires_at": (now + timedelta(days=1)).isoformat(), "salt": secrets.token_hex(16),
        "kdf": DEFAULT_KDF.as_json(),
        "records": [{"h": [secrets.token_hex(32)], "declared_at": at, **(
            {"doses": 2, "last_dose": "2022-03-01"} if i % 3 == 0 else {})}
            for i in range(people)],
    }, separators=(",", ":")).encode()


def run(body: bytes, *, threaded: bool, fps: float, folder: Path) -> tuple[float, float]:
    db = folder / f"{'thread' if threaded else 'inline'}.db"
    cfg = config_mod.Config().replace(store={"path": str(db)}, policy={"profile": "hospital"})
    credential = recognise(CCCD)
    now = datetime.now(UTC)
    with Store(db, device_id="d", checkpoint_id="c") as store:
        live = LiveChecker(cfg, store, refresh_seconds=0.05)
        if threaded:
            live.start()
        slowest, gap = 0.0, 0.0
        period = 1.0 / fps
        with Outbox(db) as outbox:
            outbox.apply_documents([Document("status", body, "e1", now, None)], [], now)
        last = time.perf_counter()
        deadline = last + 120
        while live.checker.status is None and time.perf_counter() < deadline:
            started = time.perf_counter()
            live.decide(credential, at=now)
            slowest = max(slowest, time.perf_counter() - started)
            gap = max(gap, started - last)
            last = started
            time.sleep(max(0.0, period - (time.perf_counter() - started)))
        gap = max(gap, time.perf_counter() - last)  # the frame that applied it, too
        live.close()
    return slowest, gap


def idle_gap(fps: float, frames: int = 90) -> float:
    """The longest frame gap of the same loop with nothing applied (the machine's noise)."""
    last, gap = time.perf_counter(), 0.0
    for _ in range(frames):
        started = time.perf_counter()
        gap, last = max(gap, started - last), started
        time.sleep(max(0.0, 1.0 / fps - (time.perf_counter() - started)))
    return gap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    body = document(args.people, datetime.now(UTC))
    print(f"status document: {args.people:,} records, {len(body) / 1e6:.1f} MB; "
          f"a frame every {1000 / args.fps:.0f} ms")
    for r in range(args.rounds):
        t0 = time.perf_counter()
        json.loads(body)
        whole = time.perf_counter() - t0
        t0 = time.perf_counter()
        json_object_in_steps(body, "status")
        steps = time.perf_counter() - t0
        t0 = time.perf_counter()
        StatusList.from_json(body)
        parse = time.perf_counter() - t0
        print(f"round {r + 1}: json.loads {whole:.2f} s (one call), stepwise reader "
              f"{steps:.2f} s ({steps / whole:.1f}x), StatusList.from_json {parse:.2f} s")
        print(f"round {r + 1}: nothing applied: longest frame gap "
              f"{idle_gap(args.fps) * 1000:.0f} ms")
        with tempfile.TemporaryDirectory() as tmp:
            for threaded in (False, True):
                slowest, gap = run(body, threaded=threaded, fps=args.fps, folder=Path(tmp))
                print(f"round {r + 1}: applied on {'its own thread' if threaded else 'the loop'}"
                      f": slowest decision {slowest * 1000:.0f} ms, longest frame gap "
                      f"{gap * 1000:.0f} ms")


if __name__ == "__main__":
    main()
