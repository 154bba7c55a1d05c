"""checkpoint-kiosk: read a citizen's QR code, decide, signal, and record the check-in durably."""

__version__ = "0.1.0"

#: How the kiosk names itself to the central platform (HTTP User-Agent).
USER_AGENT = f"checkpoint-kiosk/{__version__}"
