"""``checkpoint-kiosk decode``: what QR codes are in these image files (a technician's tool)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import click
import numpy as np

from hardware.camera import VIDEO_SUFFIXES, EndOfStream, ReplayCamera
from hardware.images import load_gray
from hardware.qr import BACKENDS, open_decoder
from kiosk.errors import EXPECTED


def _frames(paths: tuple[str, ...]) -> Iterator[tuple[str, np.ndarray | Exception]]:
    """(file, grayscale frame or the error loading it), a video file frame by frame."""
    for path in paths:
        if Path(path).suffix.lower() in VIDEO_SUFFIXES and Path(path).is_file():
            try:
                with ReplayCamera(path) as video:
                    while True:
                        frame = video.read()
                        if frame is not None:
                            yield path, frame.image
            except EndOfStream:
                continue
            except EXPECTED as e:
                yield path, e
            continue
        try:
            yield path, load_gray(path)
        except EXPECTED as e:
            yield path, e


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True,
              help="One JSON line per image (the default output; kept for scripts).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="QR decoder: auto is the measured best (see docs/decoding.md).")
@click.option("--stream", is_flag=True,
              help="Treat the images (or a video file) as consecutive frames of one camera "
                   "and decode them as the kiosk does: one line per frame.")
@click.option("--fps", type=click.FloatRange(1, 240), default=30.0, show_default=True,
              help="With --stream: the frame rate the frames were taken at.")
@click.option("--dedupe", "dedupe_seconds", type=click.FloatRange(0, 600), default=3.0,
              show_default=True,
              help="With --stream: a code seen again within this many seconds (at --fps) is "
                   "not acted on again, as in the kiosk ([decoder] dedupe_seconds); 0 lists "
                   "every frame's codes.")
def decode(images: tuple[str, ...], as_json: bool, backend: str, stream: bool, fps: float,
           dedupe_seconds: float) -> None:
    """Print the QR codes found in each IMAGE, one JSON line per image.

    Each line is {"file": ..., "codes": [{"text": ..., "format": "QR_CODE",
    "position": [[x, y], ...]}], "ms": <decode milliseconds>}.  A file that cannot be
    loaded gets {"file": ..., "error": ...} and the exit status is 1.

    With --stream the lines are {"frame": i, "file": ..., "codes": [...], "ms": ...}, one a
    frame, and "codes" holds the codes the kiosk would act on at that frame.

    Example: checkpoint-kiosk decode --stream --json capture-*.png
    """
    failed = False
    seen: dict[bytes, float] = {}
    with closing(open_decoder(backend, stream=stream)) as decoder:
        for i, (path, frame) in enumerate(_frames(images)):
            head: dict[str, Any] = {"frame": i, "file": path} if stream else {"file": path}
            if isinstance(frame, Exception):
                failed = True
                click.echo(json.dumps({**head, "error": str(frame)}, ensure_ascii=False))
                continue
            t = time.perf_counter()
            codes = decoder.decode(frame)
            ms = (time.perf_counter() - t) * 1000
            if stream:
                # The scan loop's de-duplication, on the frames' own clock.
                now, acted = i / fps, []
                for c in codes:
                    key = hashlib.blake2b(c.raw, digest_size=16).digest()
                    last = seen.get(key)
                    seen[key] = now
                    if last is None or now - last > dedupe_seconds:
                        acted.append(c)
                codes = acted
            line = {
                **head,
                "codes": [{"text": c.text, "format": c.format,
                           "position": [list(p) for p in c.position]} for c in codes],
                "ms": round(ms, 2),
            }
            click.echo(json.dumps(line, ensure_ascii=False))
    if failed:
        raise SystemExit(1)
