"""Recognise and parse every code a citizen presents at a checkpoint.

:func:`recognise` is the single entry point the scan loop calls with the QR decoder's
bytes as they are; it never raises.  One module per family (payloads.md):
:mod:`.cccd`, :mod:`.pc_covid`, :mod:`.bhyt`, :mod:`.dcc`, :mod:`.venue`.
"""

from __future__ import annotations

import logging

from kiosk.credentials import bhyt, cccd, dcc, pc_covid, venue
from kiosk.credentials._text import MAX_PAYLOAD, to_text
from kiosk.model import Credential, Kind

log = logging.getLogger(__name__)

__all__ = ["from_cccd_number", "recognise"]


def recognise(payload: bytes | str) -> Credential:
    """Parse a QR payload into a :class:`Credential`; never raises.

    Unknown and venue codes carry no person key, an empty display and never the
    payload itself.  Parsing problems become reason codes in ``problems``.
    """
    try:
        return _recognise(payload)
    except Exception as e:  # noqa: BLE001 - the scan loop must never see a parser crash
        # Type only: the message could quote the personal payload.
        log.error(
            "credential parser failed with %s; treating the code as unrecognised", type(e).__name__
        )
        log.debug("parser failure detail", exc_info=True)
        return Credential(kind=Kind.UNKNOWN, problems=("parser_error",))


def from_cccd_number(number: str) -> Credential:
    """A CCCD number typed by an officer (no QR): checked as far as the number allows."""
    return cccd.from_number(number)


def _recognise(payload: bytes | str) -> Credential:
    if len(payload) > MAX_PAYLOAD:
        return Credential(kind=Kind.UNKNOWN, problems=("payload_too_long",))
    text = to_text(payload)
    if not text:
        return Credential(kind=Kind.UNKNOWN, problems=("empty",))
    if dcc.looks_like(text):
        return dcc.parse(text)
    if venue.looks_like(text):
        return venue.parse(text)
    if "|" in text:
        parts = [p.strip() for p in text.split("|")]
        if parts[-1].endswith("$") and bhyt.looks_like(_drop_dollar(parts)):
            return bhyt.parse(_drop_dollar(parts))
        if pc_covid.looks_like(parts):
            return pc_covid.parse(parts)
        if cccd.looks_like(parts):
            return cccd.parse(parts)
        if bhyt.looks_like(parts):
            # Some readers drop the trailing ``$``.
            return bhyt.parse(parts)
    return Credential(kind=Kind.UNKNOWN)


def _drop_dollar(parts: list[str]) -> list[str]:
    return parts[:-1] + [parts[-1][:-1].rstrip()]
