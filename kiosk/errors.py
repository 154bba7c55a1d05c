"""One exception family for the whole kiosk.

Each error also subclasses the builtin it resembles, so callers that only know the
builtin still catch it.  Messages name the thing, show the bad value with ``!r`` and
say how to fix it; the CLI turns them into one line and a non-zero exit.
"""


class KioskError(Exception):
    """Base of every error the kiosk raises on purpose."""


class ConfigError(KioskError, ValueError):
    """A configuration key is missing, of the wrong type or out of range."""


class HardwareError(KioskError, OSError):
    """A device (camera, pins, display) cannot be opened or stopped answering."""


class CameraError(HardwareError):
    """The camera cannot be opened or stopped delivering frames."""


class DecoderError(HardwareError):
    """The QR decoding library is missing or failed to load."""


class StoreError(KioskError, OSError):
    """The check-in database cannot be opened, migrated or written."""


class SyncError(KioskError, OSError):
    """Talking to the central platform failed."""


class ProvisionError(KioskError):
    """Enrolment with the central platform or a provisioning file failed."""
