"""One exception family for the whole kiosk, and the libraries' errors beside it.

The device layer (``hardware``) and the queue (``offline_queue``) are libraries below the
kiosk and own their errors; they are re-exported here so that ``kiosk`` code and the command
line name every expected error from one place.  Each error also subclasses the builtin it
resembles, so callers that only know the builtin still catch it.  Messages name the thing,
show the bad value with ``!r`` and say how to fix it; the CLI turns every error in
:data:`EXPECTED` into one line and a non-zero exit.
"""

from hardware.errors import CameraError, DecoderError, DeviceSettingError, HardwareError
from offline_queue.errors import QueueError, StoreError, SyncError


class KioskError(Exception):
    """Base of every error the kiosk application raises on purpose."""


class ConfigError(KioskError, ValueError):
    """A configuration key is missing, of the wrong type or out of range."""


class ProvisionError(KioskError):
    """Enrolment with the central platform or a provisioning file failed."""


#: What the command line reports as one line and exit status 1 (anything else is a bug).
EXPECTED: tuple[type[Exception], ...] = (KioskError, HardwareError, DeviceSettingError,
                                         QueueError)

__all__ = ["EXPECTED", "CameraError", "ConfigError", "DecoderError", "DeviceSettingError",
           "HardwareError", "KioskError", "ProvisionError", "QueueError", "StoreError",
           "SyncError"]
