"""Reading QR codes from camera frames: the interface the kiosk uses and the factory.

A decoder takes a 2-D uint8 grayscale frame (the Y plane of the camera's lores stream)
and returns the QR codes in it with their exact bytes and their text.  Backends live in
``hardware.qr.zxing`` (zxing-cpp, the default) and ``hardware.qr.zbar`` (pyzbar/zbar); the
camera's frames go to ``hardware.qr.stream`` (the same passes spread over consecutive
frames).  Each imports its library lazily, so importing this package costs nothing.  What they share
is in ``hardware.qr.base``; this module only chooses one.
"""

from __future__ import annotations

from typing import Any

from hardware.errors import DeviceSettingError
from hardware.qr.base import (
    BACKENDS,
    QR_CODE,
    Code,
    Decoder,
    Point,
    box_corners,
    check_frame,
    code_text,
    unique,
)

__all__ = ["BACKENDS", "QR_CODE", "Code", "Decoder", "Point", "box_corners", "check_frame",
           "code_text", "open_decoder", "unique"]


def open_decoder(backend: str = "auto", *, stream: bool = False, **options: Any) -> Decoder:
    """Build a decoder: "auto" (the measured best, see docs/decoding.md), "zxing" or "pyzbar".

    ``stream=True`` is for the frames of one camera, in order: "auto" then decodes the
    stream (``hardware.qr.stream``: the costly passes spread over consecutive frames);
    "stream" is the same decoder by name.  The plain backends stay one call a frame.
    ``options`` go to the backend's constructor (e.g. ``region_passes=`` for "auto").
    Raises DeviceSettingError for an unknown backend and DecoderError when its library is missing.
    """
    if backend == "stream" or (backend == "auto" and stream):
        from hardware.qr.stream import StreamDecoder

        return StreamDecoder(**options)
    if backend == "auto":
        from hardware.qr.zxing import MultiPassDecoder

        return MultiPassDecoder(**options)
    if backend == "zxing":
        from hardware.qr.zxing import ZxingDecoder

        return ZxingDecoder(**options)
    if backend == "pyzbar":
        from hardware.qr.zbar import PyzbarDecoder

        return PyzbarDecoder(**options)
    raise DeviceSettingError(
        f"unknown QR decoder backend {backend!r}; choose one of {', '.join(BACKENDS)}")
