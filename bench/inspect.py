"""Credentials recognised and decided per second, per kind (recognise + Checker.decide).

Targets on the development machine: >= 1 000/s for ID cards, >= 100/s for signed
certificates, so a Raspberry Pi does not notice the cost.

    python -m bench.inspect [--seconds 2]
"""

from __future__ import annotations

import os
import sys

# This file is named like the stdlib ``inspect`` module and its folder is sys.path[0]
# when run as a script: put the repository there instead before anything imports it.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402

from kiosk.domain.credentials import recognise  # noqa: E402
from kiosk.domain.model import Outcome  # noqa: E402
from kiosk.domain.policy import Checker, Policy  # noqa: E402
from kiosk.domain.trustlist import TrustList, build_json  # noqa: E402
from kiosk.domain.watchlist import Watchlist  # noqa: E402
from kiosk.testing import dcc_issue as di  # noqa: E402

AT = datetime(2022, 6, 1, 1, 0, tzinfo=UTC)
TARGETS = {"cccd": 1000, "pc_covid": 1000, "bhyt": 1000, "eu_dcc ES256": 100, "eu_dcc PS256": 100}


def payloads() -> tuple[dict[str, str], TrustList]:
    out = {
        "cccd": "001185012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|Số 8, Hà Nội|10052021",
        "pc_covid": "******012345|NGUYEN VAN BINH|1990-**-**|0|162979388586171234|1<GD4790",
        "bhyt": "DN4010123456789|" + "Lê Thị Hạnh".encode().hex() + "|02/03/1990|2|"
        + "Hà Nội".encode().hex() + "|01 - 043|01/01/2022|31/12/2022|15/12/2021$",
        "venue": "https://tokhaiyte.vn/?page=Declaration&venue=12345",
    }  # fmt: skip
    certs = []
    for name, key in (
        ("eu_dcc ES256", ec.generate_private_key(ec.SECP256R1())),
        ("eu_dcc PS256", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ):
        dsc = di.make_dsc(
            key, not_before=AT - timedelta(days=90), not_after=AT + timedelta(days=90)
        )
        cose = di.sign(di.vaccination(), key, dsc=dsc, issued_at=AT - timedelta(days=1),
                       expires_at=AT + timedelta(days=90))  # fmt: skip
        out[name] = di.encode(cose)
        certs.append((dsc, "VN"))
    return out, TrustList.from_json(build_json(certs), fetched_at=AT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per kind")
    args = parser.parse_args()
    samples, trust = payloads()
    watchlist = Watchlist.from_json(
        Watchlist.build([(f"{i:012d}", AT.date()) for i in range(10_000)], issued_at=AT)
    )
    checker = Checker(policy=Policy.load("hospital"), trust_list=trust, watchlist=watchlist)
    failed = False
    print(f"{'kind':<14}{'per second':>12}{'target':>9}  decision")
    for kind, payload in samples.items():
        decision = checker.decide(recognise(payload), at=AT)
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < args.seconds:
            for _ in range(50):
                checker.decide(recognise(payload), at=AT)
            n += 50
        rate = n / elapsed
        target = TARGETS.get(kind)
        ok = target is None or rate >= target
        failed |= not ok
        print(f"{kind:<14}{rate:>12,.0f}{target or '-':>9}  {decision.outcome.value}"
              f"{'' if ok else '  BELOW TARGET'}")  # fmt: skip
        if kind != "venue" and decision.outcome != Outcome.PASS:
            print(f"  unexpected decision {decision}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
