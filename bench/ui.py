"""Frame time of the kiosk screen: is drawing ever the bottleneck at 30 fps?

    python -m bench.ui [--frames 120] [--sizes 800x480,1920x1080]

The kiosk is assembled by :func:`kiosk.runtime.build.build`, as ``run_kiosk`` assembles it
(its SQLite store in a temp folder, the live checker and policy, mock pins), with one part
supplied: the camera.  Every frame gets a *new* 640×480 camera frame
(``kiosk.testing.samples``), as on the appliance, so the preview conversion is paid each
time.  The real ``KioskApp`` runs on SDL's dummy video driver, each frame through the
kiosk's own ``run_frame`` (events, update, draw, flip).  Reports the frame time per screen
and size (mean, p95, max in ms) and the share of a 33.3 ms frame budget.  The dummy driver
has no vsync and no GPU: numbers are CPU drawing cost, which is what the Pi 4 budget is
about.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pygame  # noqa: E402

from hardware.camera import Frame  # noqa: E402
from kiosk.config import Config, UiSettings  # noqa: E402
from kiosk.runtime.build import Parts, Supplied, build  # noqa: E402
from kiosk.testing.samples import SAMPLES, frame  # noqa: E402
from kiosk.ui.app import KioskApp, run_frame  # noqa: E402

BUDGET_MS = 1000 / 30


class CyclingCamera:
    """The kiosk's FrameSource port: a new frame on every call, like a 30 fps camera."""

    ok = True
    message = None

    def __init__(self, count: int = 30) -> None:
        rng = random.Random(3)
        self.images = [frame(SAMPLES[i % 2] if i % 3 == 0 else None, rng) for i in range(count)]
        self.frames = 0

    def latest_frame(self) -> Frame:
        self.frames += 1
        return Frame(self.images[self.frames % len(self.images)], time.monotonic_ns(),
                     self.frames)

    def alive(self, *, max_age: float = 10.0) -> bool:
        return True


def kiosk(stack: contextlib.ExitStack, workdir: Path) -> Parts:
    """The kiosk's parts as ``run_kiosk`` builds them, the camera supplied."""
    cfg = Config().replace(
        store={"path": str(workdir / "bench.db")},
        signals={"pin_factory": "mock"},
        policy={"profile": "hospital", "watchlist": False},
    )
    return build(cfg, stack, parts=Supplied(pipeline=lambda events: CyclingCamera()))


def measure(app: KioskApp, display: pygame.Surface, canvas: pygame.Surface, rotate: bool,
            frames: int) -> list[float]:
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        run_frame(app, display, canvas, rotate)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--sizes", default="800x480,1024x600,1280x720,1920x1080")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]

    pygame.display.init()
    pygame.font.init()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        loop = kiosk(stack, Path(tmp)).loop
        result = loop.process(SAMPLES[0].payload)
        print(f"{'size':>14} {'screen':>9} {'mean':>6} {'p95':>6} {'max':>6}  budget")
        for w, h in sizes:
            for portrait in (False, True):
                display = pygame.display.set_mode((w, h))
                rotate = portrait
                logical = (h, w) if rotate else (w, h)
                canvas = pygame.Surface(logical).convert() if rotate else display
                settings = UiSettings.checked(fullscreen=False, width=w, height=h,
                                              portrait=portrait, sound=False, idle_seconds=3600)
                app = KioskApp(loop, settings, logical, show_lights=True)
                app.go("scanning")
                for screen in ("scanning", "result", "officer"):
                    if screen == "result":
                        app.show_result(result)
                        app.screen.until = time.monotonic() + 3600  # stays up
                    elif screen != "scanning":
                        app.go(screen)
                    measure(app, display, canvas, rotate, 10)  # warm the text caches
                    times = sorted(measure(app, display, canvas, rotate, args.frames))
                    mean = statistics.fmean(times)
                    p95 = times[int(len(times) * 0.95) - 1]
                    label = f"{w}x{h}{' rot' if rotate else ''}"
                    print(f"{label:>14} {screen:>9} {mean:6.2f} {p95:6.2f} {times[-1]:6.2f}"
                          f"  {mean / BUDGET_MS:5.0%}")
    pygame.quit()


if __name__ == "__main__":
    main()
