"""The EU DCC schema check: fastjsonschema (the kiosk's) against jsonschema, same run.

Prints each library's import time (a fresh interpreter each, best of 3), the time to get a
validator for one schema version (compile / construct), and the time of one check of a
valid certificate, with the ratio jsonschema / fastjsonschema.

    python -m bench.dcc_schema [--checks 2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import fastjsonschema
import jsonschema

from kiosk.domain.credentials import dcc_schema
from kiosk.testing import dcc_issue as di

IMPORT = "import time; t = time.perf_counter(); import {m}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    runs = [
        float(subprocess.run([sys.executable, "-c", IMPORT.format(m=module)], check=True,
                             capture_output=True, text=True).stdout)
        for _ in range(3)
    ]  # fmt: skip
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=2000)
    args = parser.parse_args()
    schema = dcc_schema.load_schema("1.3.0")
    hcert = di.vaccination()

    start = time.perf_counter()
    fast = fastjsonschema.compile(schema, use_formats=False)
    fast_make = time.perf_counter() - start
    start = time.perf_counter()
    ref = jsonschema.Draft202012Validator(schema)
    ref.is_valid(hcert)  # jsonschema resolves $refs lazily, on the first check
    ref_make = time.perf_counter() - start

    def per_check(fn) -> float:
        start = time.perf_counter()
        for _ in range(args.checks):
            fn(hcert)
        return (time.perf_counter() - start) / args.checks

    fast_check = per_check(fast)
    ref_check = per_check(ref.is_valid)
    kiosk_check = per_check(dcc_schema.validate)
    fast_import, ref_import = import_seconds("fastjsonschema"), import_seconds("jsonschema")
    rows = [
        ("import", fast_import * 1e3, ref_import * 1e3, "ms"),
        ("validator for one version", fast_make * 1e3, ref_make * 1e3, "ms"),
        ("one check (valid 1.3.0)", fast_check * 1e6, ref_check * 1e6, "us"),
    ]
    print(f"{'':28} {'fastjsonschema':>15} {'jsonschema':>12} {'ratio':>7}")
    for name, a, b, unit in rows:
        print(f"{name:28} {a:12.1f} {unit} {b:9.1f} {unit} {b / a:7.1f}")
    print(f"kiosk's dcc_schema.validate (fastjsonschema + the one-type rule): "
          f"{kiosk_check * 1e6:.1f} us a certificate")


if __name__ == "__main__":
    main()
