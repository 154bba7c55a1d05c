"""Stop a starting central, again and again: does every SIGTERM stop it?

    python -m bench.central_stop [--starts 120] [--load 2] [--workers 2] [--seed 1]

Each start runs ``checkpoint-kiosk central --workers N`` on a fresh SQLite database in a
temporary folder, waits for the supervisor's "with N worker processes" log line and sends
SIGTERM after a random 0-80 ms: the window in which the workers are still building their
servers.  ``--load`` busy-loop processes run beside it (a loaded machine is where a lost
SIGTERM showed: about 1 start in 40-80 before the fix in ``_worker``).  A central that has
not exited 8 s after its SIGTERM counts as hung; its process group is killed and, when
py-spy is installed, each of its processes' stacks is printed.  Everything is local and
bounded by ``--starts``.  Figures go to docs/central.md ("Stopping").
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED = "worker processes"
WAIT_STOP = 8.0


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def stacks(session: int) -> str:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        return "(py-spy not installed: no stacks)"
    pids = subprocess.run(["pgrep", "-s", str(session)], capture_output=True,
                          text=True).stdout.split()
    return "\n".join(subprocess.run([py_spy, "dump", "--pid", pid], capture_output=True,
                                    text=True).stdout for pid in pids)


def one_start(folder: Path, workers: int, delay: float) -> tuple[bool, float]:
    """(stopped, seconds from SIGTERM to exit)."""
    log_path = folder / "central.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "central", "--db", str(folder / "s.db"),
             "--port", "0", "--workers", str(workers), "--status-every", "1"],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while STARTED not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the central did not start: {log_path.read_text()[-500:]}")
            time.sleep(0.002)
        time.sleep(delay)
        sent = time.monotonic()
        proc.terminate()
        try:
            proc.wait(timeout=WAIT_STOP)
            return True, time.monotonic() - sent
        except subprocess.TimeoutExpired:
            print(f"hung after SIGTERM {delay * 1000:.0f} ms after the start:\n"
                  f"{log_path.read_text()[-400:]}\n{stacks(proc.pid)}")
            return False, WAIT_STOP
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--starts", type=int, default=120)
    ap.add_argument("--load", type=int, default=2, help="busy-loop processes beside it")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    busy = [multiprocessing.Process(target=spin, args=(3600,), daemon=True)
            for _ in range(args.load)]
    for p in busy:
        p.start()
    hung, waits = 0, []
    try:
        t0 = time.monotonic()
        for _ in range(args.starts):
            with tempfile.TemporaryDirectory() as tmp:
                stopped, waited = one_start(Path(tmp), args.workers, rng.uniform(0, 0.08))
            hung += not stopped
            waits.append(waited)
        wall = time.monotonic() - t0
    finally:
        for p in busy:
            p.terminate()
    waits.sort()
    print(f"{args.starts} starts, {args.workers} workers, {args.load} busy processes beside: "
          f"{hung} hung; SIGTERM to exit median {waits[len(waits) // 2]:.2f} s, "
          f"max {waits[-1]:.2f} s; {wall:.0f} s wall")
    return 1 if hung else 0


if __name__ == "__main__":
    sys.exit(main())
