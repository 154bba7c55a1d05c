"""checkpoint-kiosk: read a citizen's QR code, decide, signal, and record the check-in durably."""

__version__ = "0.1.0"
