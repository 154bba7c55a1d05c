"""The camera's exposure profiles compared clip by clip (docs/decoding.md, "Camera set-up").

    python -m bench.exposure --table             # how each profile divides the light
    python -m bench.exposure --seed 2            # the held-out clips, normal against short

The same seed gives the same scenes in both profiles (``bench/clipgen.py``); only the
shutter (motion blur) and the gain (noise) differ.  Each clip with a code goes through the
stream decoder with a frozen clock (it never sheds a pass, so the figures do not depend on
the machine's load; one decoder for the whole run, as ``bench.clip_oracle`` has it) and
through plain zxing-cpp.  Printed: the clips each reads within ``WITHIN`` frames in either
profile, how much earlier or later the stream decoder's first read comes in the clips both
profiles read, bright and dim apart, and every clip whose verdict changes.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench.clipgen import EXPOSURES, divide_exposure, scene_exposure
from bench.stream import WITHIN, load_clips, plain_zxing

CAMERAS = ("module2", "module3")
# Light levels of the table, as fractions of the bright entrance's; the last is the
# generator's dim entrance.
LIGHT = (1.0, 1 / 2, 1 / 4, 1 / 8, 1 / 12.5)


def light_table() -> str:
    """Shutter (ms) and total gain of each profile at each light level, for both modules."""
    head = " | ".join(f"{c} {e}" for c in CAMERAS for e in EXPOSURES)
    lines = [f"light | {head}"]
    for light in LIGHT:
        cells = []
        for camera in CAMERAS:
            total = scene_exposure(camera, False) / light
            for exposure in EXPOSURES:
                shutter, gain = divide_exposure(total, camera, exposure)
                cells.append(f"{1000 * shutter:.1f} ms x{gain:.2f}")
        lines.append(f"1/{1 / light:g} | " + " | ".join(cells))
    return "\n".join(lines)


def firsts(seed: int, per_kind: int, exposure: str) -> tuple[list, list[int | None],
                                                            list[int | None]]:
    """Clips with a code, and the first frame the stream decoder and plain zxing-cpp read."""
    from bench.clip_oracle import stream_firsts

    clips = [c for c in load_clips(per_kind, seed, exposure=exposure) if c.payload is not None]
    stream = stream_firsts(clips)
    zxing = plain_zxing()
    plain = [next((i for i, f in enumerate(c.frames) if c.payload in zxing(f, None)), None)
             for c in clips]
    return [c.params | {"kind": c.kind, "index": c.index} for c in clips], stream, plain


def compare(seed: int, per_kind: int) -> str:
    params, got = [], {}
    for exposure in EXPOSURES:
        params_e, stream, plain = firsts(seed, per_kind, exposure)
        params.append(params_e)
        got[exposure] = (stream, plain)
    within = lambda f: f is not None and f < WITHIN   # noqa: E731
    n = len(params[0])
    lines = [f"seed {seed}, {n} clips with a code; read within {WITHIN} frames:"]
    for d, name in ((0, "stream (frozen clock)"), (1, "plain zxing-cpp")):
        counts = [sum(map(within, got[e][d])) for e in EXPOSURES]
        lines.append(f"  {name:22} " + ", ".join(f"{e} {k}" for e, k in zip(EXPOSURES, counts,
                                                                           strict=True)))
    a, b = got[EXPOSURES[0]][0], got[EXPOSURES[1]][0]
    for light, dim in (("bright", False), ("dim", True)):
        pairs = [(x, y) for x, y, p in zip(a, b, params[0], strict=True)
                 if x is not None and y is not None and p["dim"] == dim]
        if not pairs:
            continue
        before, after = [x for x, _ in pairs], [y for _, y in pairs]
        lines.append(
            f"  {light}: {len(pairs)} clips read in both; stream's first read, median frame "
            f"{statistics.median(before):g} -> {statistics.median(after):g}, mean "
            f"{statistics.fmean(before):.2f} -> {statistics.fmean(after):.2f}; earlier in "
            f"{sum(y < x for x, y in pairs)}, later in {sum(y > x for x, y in pairs)}")
    lines.append("clips whose verdict changes (first frame read, normal -> short):")
    for i, (p, q) in enumerate(zip(params[0], params[1], strict=True)):
        sn, ss = got[EXPOSURES[0]][0][i], got[EXPOSURES[1]][0][i]
        zn, zs = got[EXPOSURES[0]][1][i], got[EXPOSURES[1]][1][i]
        if within(sn) != within(ss) or within(zn) != within(zs):
            lines.append(
                f"  {p['kind']:5} {p['index']:3d} {p['camera']} {'dim' if p['dim'] else 'bright'}"
                f" {p['shutter_ms']} ms x{p['gain']} -> {q['shutter_ms']} ms x{q['gain']}: "
                f"stream {sn} -> {ss}, zxing {zn} -> {zs}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", "--per-kind", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2)
    ap.add_argument("--table", action="store_true",
                    help="print how each profile divides the light, and stop")
    args = ap.parse_args(argv)
    if args.table:
        print(light_table())
        return 0
    print(compare(args.seed, args.per_kind))
    return 0


if __name__ == "__main__":
    sys.exit(main())
