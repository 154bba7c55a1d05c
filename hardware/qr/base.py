"""What every QR backend shares: the ``Code`` it returns, the ``Decoder`` shape, frame checks.

A decoder takes a 2-D uint8 grayscale frame (the Y plane of the camera's lores stream) and
returns the QR codes in it with their exact bytes.  It is cheap to construct and safe to call
from one worker thread at a time; the scan loop owns that thread and the de-duplication of a
code seen in consecutive frames.  A Pi camera also sends the same exposure at a whole
multiple of the frame's size (its main stream, ``detail``): a decoder that looks closer at
a candidate crops it from there (``StreamDecoder``); the others read the frame alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

QR_CODE = "QR_CODE"
BACKENDS = ("auto", "zxing", "pyzbar")

Point = tuple[int, int]


@dataclass(frozen=True)
class Code:
    """One QR symbol found in a frame."""

    # The payload as text, in the character set the symbol declares (ECI, Kanji/Hanzi mode);
    # undeclared bytes are UTF-8 when valid (a CCCD), else the decoder's reading of them.
    text: str
    raw: bytes         # the exact bytes stored in the symbol, for the parsers
    format: str        # always "QR_CODE"
    # 4 corners in frame pixels, clockwise from the symbol's top-left
    position: tuple[Point, ...]

    def __repr__(self) -> str:
        # The payload is personal data (names, ID numbers): keep it out of reprs and logs.
        return f"Code(format={self.format!r}, bytes={len(self.raw)}, position={self.position!r})"


@runtime_checkable
class Decoder(Protocol):
    name: str

    def decode(self, frame: np.ndarray, detail: np.ndarray | None = None) -> list[Code]: ...

    def close(self) -> None: ...


def code_text(raw: bytes) -> str:
    """Bytes with no declared character set as text: exact UTF-8 when valid UTF-8.

    Only for what a backend could not read itself: anything else is decoded as ISO-8859-1,
    the QR standard's default character set, one character a byte (so ``raw`` can be
    recovered from ``text``).  Backends take the symbol's own declaration first; see
    ``ZxingDecoder`` and ``PyzbarDecoder``.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def check_frame(frame: Any) -> np.ndarray:
    """Validate a frame's type and shape; return it C-contiguous.

    Wrong types are programming errors and raise; odd *content* never does.
    """
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"frame must be a numpy.ndarray, got {type(frame).__name__!r}")
    if frame.dtype != np.uint8:
        raise TypeError(f"frame must have dtype uint8, got {frame.dtype!r}; "
                        "pass the camera's Y (grayscale) plane or use hardware.images.load_gray")
    if frame.ndim != 2:
        raise ValueError(f"frame must be 2-D grayscale (H, W), got shape {frame.shape!r}; "
                         "take the Y plane of a YUV420 frame")
    return np.ascontiguousarray(frame)


def check_detail(frame: np.ndarray, detail: Any) -> tuple[np.ndarray, int] | None:
    """``detail`` and how many of its pixels make a frame pixel, when it is ``frame`` at a
    whole multiple (2 or more) of its size; else None, with a warning (the camera's two
    streams disagree: the frame alone is read)."""
    if detail is None:
        return None
    if not isinstance(detail, np.ndarray) or detail.dtype != np.uint8 or detail.ndim != 2:
        log.warning("camera detail ignored: expected a 2-D uint8 image, got %s",
                    getattr(detail, "shape", type(detail).__name__))
        return None
    h, w = frame.shape
    finer = detail.shape[1] // w if w else 0
    if finer < 2 or detail.shape != (h * finer, w * finer):
        log.warning("camera detail ignored: %r is not a whole multiple (2 or more) of the "
                    "frame's %r", detail.shape, frame.shape)
        return None
    return np.ascontiguousarray(detail), finer


def box_corners(points: list[Point]) -> tuple[Point, ...]:
    """Four corners (clockwise from top-left) of the axis-aligned box around ``points``."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def unique(codes: list[Code]) -> list[Code]:
    """Drop repeats of the same payload (several passes may find one symbol)."""
    seen: set[bytes] = set()
    out = []
    for c in codes:
        if c.raw not in seen:
            seen.add(c.raw)
            out.append(c)
    return out
