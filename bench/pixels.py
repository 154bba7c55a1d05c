"""How close a clip's frames come to pixels that integrate light over their area.

    python -m bench.pixels                       # the sheets of seed 3 listed below
    python -m bench.pixels --clips paper:5,paper:35 --seed 3 --frame 25

``bench/clipgen.py`` renders a Pi camera's scene at ``detail`` times the frame's size and
takes each frame pixel as the average of the ``detail x detail`` pixels it covers; with
``detail=1`` a frame pixel is a point sample of the scene blurred by the anti-alias of
``framegen._place``.  A sensor pixel integrates over its area, so the finer the render,
the closer the frame is to what the sensor sees.  For each clip this prints, on the code's
region of one frame, the mean absolute difference (grey levels) from the finest render
and the mean horizontal gradient (edge contrast) at each ``detail``: when the columns stop
moving, the model has converged (docs/decoding.md, "The camera's main stream").  Noise is
drawn anew at each detail, so differences of about a grey level are noise.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.clipgen import make_clip

# Sheets at 1.5-1.7 px a module that the stream decoder missed on seed 3 with detail=1.
DEFAULT_CLIPS = "paper:5,paper:10,paper:35,paper:39"


def code_region(frame: np.ndarray, where: tuple[int, int, int]) -> np.ndarray:
    """The square of the code's face-on width around its centre."""
    x, y, w = where
    return frame[max(0, y - w // 2):y + w // 2, max(0, x - w // 2):x + w // 2].astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default=DEFAULT_CLIPS, help="KIND:INDEX,... (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--frame", type=int, default=25, help="which frame (default 25: held still)")
    ap.add_argument("--details", default="4,3,2,1", help="renders to compare, finest first")
    args = ap.parse_args(argv)
    details = [int(d) for d in args.details.split(",")]
    print(f"{'clip':<10} {'px/module':>9}  " + "  ".join(
        f"d={d}: diff  grad" for d in details))
    for spec in args.clips.split(","):
        kind, index = spec.split(":")
        regions = {}
        for d in details:
            clip = make_clip(kind, int(index), seed=args.seed, n_frames=args.frame + 1,
                             camera="module3", light="kiosk", detail=d)
            if clip.params["detail"] != d:
                raise SystemExit(f"{spec}: no main stream at detail {d} for this clip "
                                 f"({clip.params['size']}); choose a 640x480 phone or sheet")
            regions[d] = code_region(clip.frames[args.frame], clip.params["where_px"][args.frame])
        finest = regions[details[0]]
        cells = [f"{float(np.abs(regions[d] - finest).mean()):10.2f} "
                 f"{float(np.abs(np.diff(regions[d], axis=1)).mean()):5.1f}" for d in details]
        print(f"{spec:<10} {clip.params['px_per_module']:>9}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
