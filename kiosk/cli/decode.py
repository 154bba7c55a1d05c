"""``checkpoint-kiosk decode``: what QR codes are in these image files (a technician's tool)."""

from __future__ import annotations

import json
import time
from contextlib import closing

import click

from hardware.images import load_gray
from hardware.qr import BACKENDS, open_decoder
from kiosk.errors import EXPECTED


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--json", "as_json", is_flag=True,
              help="One JSON line per image (the default output; kept for scripts).")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="QR decoder: auto is the measured best (see docs/decoding.md).")
def decode(images: tuple[str, ...], as_json: bool, backend: str) -> None:
    """Print the QR codes found in each IMAGE, one JSON line per image.

    Each line is {"file": ..., "codes": [{"text": ..., "format": "QR_CODE",
    "position": [[x, y], ...]}], "ms": <decode milliseconds>}.  A file that cannot be
    loaded gets {"file": ..., "error": ...} and the exit status is 1.

    Example: checkpoint-kiosk decode --backend pyzbar capture-0001.png capture-0002.jpg
    """
    failed = False
    with closing(open_decoder(backend)) as decoder:
        for path in images:
            try:
                frame = load_gray(path)
            except EXPECTED as e:
                failed = True
                click.echo(json.dumps({"file": path, "error": str(e)}, ensure_ascii=False))
                continue
            t = time.perf_counter()
            codes = decoder.decode(frame)
            ms = (time.perf_counter() - t) * 1000
            line = {
                "file": path,
                "codes": [{"text": c.text, "format": c.format,
                           "position": [list(p) for p in c.position]} for c in codes],
                "ms": round(ms, 2),
            }
            click.echo(json.dumps(line, ensure_ascii=False))
    if failed:
        raise SystemExit(1)
