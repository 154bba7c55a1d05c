"""Errors the durable store, the sync client and the central server raise.

``offline_queue`` is a library below the kiosk: it imports nothing from ``kiosk``.  Both
errors subclass ``OSError`` (a disk or a network failed); ``kiosk.errors`` re-exports them so
the command line reports them like its own.
"""


class QueueError(OSError):
    """Base of the offline queue's own errors."""


class StoreError(QueueError):
    """The check-in database cannot be opened, migrated or written."""


class SyncError(QueueError):
    """Talking to the central platform failed."""
