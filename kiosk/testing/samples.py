"""Synthetic check-in codes and camera frames for the demo, the benches and the tests.

Every person here is made up.  The frames look like what the Pi camera's lores stream gives:
640×480 grayscale, a card or phone held in front of a cluttered, unevenly lit background, a
little sensor noise, the hand never quite still.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from hardware.images import qr_image


@dataclass(frozen=True)
class Sample:
    name: str
    payload: str
    readable: bool = True  # False: the code is in the frame but too blurred to read
    note: str = ""


# The demo's sequence: one of each thing a checkpoint camera meets.
SAMPLES: tuple[Sample, ...] = (
    Sample("cccd", "001185012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|"
           "Số 8 Ngõ 12, Phường Láng Hạ, Quận Đống Đa, Hà Nội|10052021",
           note="chip ID card, consistent number → pass"),
    Sample("pc_covid", "******012345|NGUYEN VAN BINH|1990-**-**|0|162979388586171234|"
           "1<GD4790*******<0912******", note="phone app personal QR"),
    Sample("unreadable", "031095004321||Phạm Minh Châu|21111995|Nam|"
           "Số 3 Lạch Tray, Ngô Quyền, Hải Phòng|15082021", readable=False,
           note="a code too blurred to read: nothing happens, the person tries again"),
    Sample("venue", "https://tokhaiyte.vn/?page=venue&id=HN-0142",
           note="a venue poster: 'present a personal code'"),
    Sample("cccd_mismatch", "001085067890||Đỗ Thị Lan|09091985|Nữ|"
           "Thôn Đông, Xã Tiên Dược, Sóc Sơn, Hà Nội|01072021",
           note="number says male, card says Nữ → check"),
    Sample("watchlisted", "079090001234||Lê Văn Hùng|02031990|Nam|"
           "12 Nguyễn Trãi, Phường 2, Quận 5, TP Hồ Chí Minh|01062021",
           note="on the demo quarantine watchlist → stop"),
)

WATCHLISTED_KEYS = ("079090001234",)


def background(rng: random.Random, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """An uneven, cluttered scene: light from one side, shelves and edges, sensor noise."""
    w, h = size
    x = np.linspace(0, 1, w, dtype=np.float32)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    base = 70 + 60 * x + 30 * y + rng.uniform(-10, 10)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "L")
    draw = ImageDraw.Draw(img)
    for _ in range(8):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        draw.rectangle((x0, y0, x0 + rng.randrange(20, 200), y0 + rng.randrange(5, 60)),
                       fill=rng.randrange(40, 200))
    return img


def frame(sample: Sample | None, rng: random.Random, *, size: tuple[int, int] = (640, 480),
          jitter: tuple[int, int] = (0, 0)) -> np.ndarray:
    """One camera frame: a card with the sample's code, or the empty scene when None."""
    img = background(random.Random(7), size)  # the scene stays put; the hand moves
    if sample is not None:
        code = qr_image(sample.payload, module_px=3 if len(sample.payload) > 120 else 4)
        cw, ch = code.size[0] + 60, code.size[1] + 40
        card = Image.new("L", (cw, ch), 235)
        ImageDraw.Draw(card).rectangle((0, 0, cw - 1, ch - 1), outline=120, width=2)
        card.paste(code, (30, 20))
        if not sample.readable:
            card = card.filter(ImageFilter.GaussianBlur(6))
        x = (size[0] - cw) // 2 + jitter[0]
        y = (size[1] - ch) // 2 + jitter[1]
        img.paste(card, (x, y))
    arr = np.asarray(img, dtype=np.int16)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 4, arr.shape)
    return np.clip(arr + noise, 0, 255).astype(np.uint8)


def sequence(samples: tuple[Sample, ...] = SAMPLES, *, code_frames: int = 6,
             gap_frames: int = 14, seed: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """(label, frame) pairs: each sample held up for a while, then the empty scene."""
    rng = random.Random(seed)
    for sample in samples:
        for _ in range(code_frames):
            yield sample.name, frame(sample, rng, jitter=(rng.randint(-6, 6), rng.randint(-6, 6)))
        for _ in range(gap_frames):
            yield "", frame(None, rng)


def write_sequence(folder: Path, samples: tuple[Sample, ...] = SAMPLES, *, code_frames: int = 6,
                   gap_frames: int = 14, seed: int = 1) -> list[str]:
    """Write :func:`sequence`'s frames as numbered PNGs (a replay camera folder); returns the
    labels."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    labels = []
    frames = sequence(samples, code_frames=code_frames, gap_frames=gap_frames, seed=seed)
    for i, (label, image) in enumerate(frames):
        Image.fromarray(image, "L").save(folder / f"{i:05d}.png", optimize=False)
        labels.append(label)
    return labels
