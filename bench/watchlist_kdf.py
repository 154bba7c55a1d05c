"""What a watchlist entry costs to match and to reverse: salted SHA-256 vs scrypt vs Argon2id.

Prints, for each candidate hash, the cost of one hash (best of several rounds: what an
attacker gets on an idle core), the whole match of a scan carrying 1, 2 and 4 numbers
through ``Watchlist.matches_any`` (median: what a person waits), the ratio to salted
SHA-256, and the CPU time to try every candidate of a 12-digit CCCD number whose
province and birth year are known (10^6 candidates; 2x10^6 when the sex is unknown too).

    python -m bench.watchlist_kdf [--rounds 5] [--pi-factor 3 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

from argon2.low_level import Type, hash_secret_raw

from kiosk.domain.watchlist import DEFAULT_KDF, MIN_MEMORY_KIB, Watchlist

AT = datetime(2022, 6, 1, tzinfo=UTC)
NUMBER = b"001185012345"
SALT = os.urandom(16)
CANDIDATES_KNOWN_PROVINCE_YEAR = 10**6
CPU_HOUR = 3600.0


def _time(fn: Callable[[], object], n: int, rounds: int) -> list[float]:
    fn()
    out = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        out.append((time.perf_counter() - start) / n)
    return out


def hashes(rounds: int) -> dict[str, list[float]]:
    m = DEFAULT_KDF.memory_kib
    return {
        "sha256 (version 1)": _time(lambda: hashlib.sha256(SALT + NUMBER).digest(), 20000, rounds),
        "scrypt N=2^11 r=8 (2 MiB)": _time(
            lambda: hashlib.scrypt(NUMBER, salt=SALT, n=2**11, r=8, p=1, dklen=32), 40, rounds),
        "scrypt N=2^12 r=8 (4 MiB)": _time(
            lambda: hashlib.scrypt(NUMBER, salt=SALT, n=2**12, r=8, p=1, dklen=32), 40, rounds),
        f"argon2id t=1 m={MIN_MEMORY_KIB // 1024} MiB (floor)": _time(
            lambda: hash_secret_raw(NUMBER, SALT, time_cost=1, memory_cost=MIN_MEMORY_KIB,
                                    parallelism=1, hash_len=32, type=Type.ID), 40, rounds),
        f"argon2id t={DEFAULT_KDF.time_cost} m={m // 1024} MiB (default)": _time(
            lambda: hash_secret_raw(NUMBER, SALT, time_cost=DEFAULT_KDF.time_cost,
                                    memory_cost=m, parallelism=1, hash_len=32, type=Type.ID),
            40, rounds),
    }  # fmt: skip


def scans(rounds: int) -> dict[int, float]:
    watchlist = Watchlist.from_json(
        Watchlist.build([(f"{i:012d}", date(2022, 6, 10)) for i in range(50)], issued_at=AT)
    )
    numbers = ["001185012345", "123456789", "0112345678", "HC4010112345678"]
    return {
        k: statistics.median(_time(lambda k=k: watchlist.matches_any(numbers[:k], at=AT), 20,
                                   rounds))
        for k in (1, 2, 4)
    }


def build_threads(entries: int = 200) -> tuple[float, float]:
    """Seconds to hash ``entries`` numbers on one thread and on every core (GIL released?)."""
    numbers = [f"{i:012d}".encode() for i in range(entries)]

    def one(n: bytes) -> bytes:
        return hash_secret_raw(n, SALT, time_cost=DEFAULT_KDF.time_cost,
                               memory_cost=DEFAULT_KDF.memory_kib, parallelism=1, hash_len=32,
                               type=Type.ID)

    start = time.perf_counter()
    for n in numbers:
        one(n)
    serial = time.perf_counter() - start
    start = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, numbers))
    return serial, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pi-factor", type=float, nargs=2, default=(3.0, 5.0))
    args = parser.parse_args()
    lo, hi = args.pi_factor
    results = hashes(args.rounds)
    base = min(results["sha256 (version 1)"])
    # The attacker's figure uses the best round (an idle core); the Pi is the kiosk's, not
    # the attacker's, so it appears only in the match figures below.
    print(f"{'hash':36} {'best ms':>9} {'median ms':>9} {'x sha256':>10} "
          f"{'1M cand. CPU-h':>14} {'2M CPU-h':>9}")
    for name, times in results.items():
        best, median = min(times), statistics.median(times)
        hours = CANDIDATES_KNOWN_PROVINCE_YEAR * best / CPU_HOUR
        print(f"{name:36} {best * 1e3:9.3f} {median * 1e3:9.3f} {best / base:10.0f} "
              f"{hours:14.2f} {2 * hours:9.2f}")
    print()
    for k, seconds in scans(args.rounds).items():
        print(f"match of a scan carrying {k} number(s): {seconds * 1e3:6.1f} ms here, "
              f"~{seconds * 1e3 * lo:.0f}-{seconds * 1e3 * hi:.0f} ms on a Pi 4 (x{lo:g}-{hi:g})")
    serial, threaded = build_threads()
    print(f"\nbuilding 200 entries: {serial:.2f} s on one thread, {threaded:.2f} s on "
          f"{os.cpu_count()} threads (x{serial / threaded:.1f})")


if __name__ == "__main__":
    main()
