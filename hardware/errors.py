"""Errors the device layer raises.

``hardware`` is a library below the kiosk: it imports nothing from ``kiosk``.  Each error
also subclasses the builtin it resembles (``OSError`` for a device, ``ValueError`` for a bad
setting), so callers that only know the builtin still catch it; ``kiosk.errors`` re-exports
them so the command line reports them like its own.
"""


class HardwareError(OSError):
    """A device (camera, pins, display) cannot be opened or stopped answering."""


class CameraError(HardwareError):
    """The camera cannot be opened or stopped delivering frames."""


class ScannerError(HardwareError):
    """A 2D scanner cannot be opened or was unplugged (the kiosk retries it with backoff)."""


class DecoderError(HardwareError):
    """The QR decoding library is missing or failed to load."""


class DeviceSettingError(ValueError):
    """A device was asked for with a setting it does not have (an unknown decoder, say)."""
