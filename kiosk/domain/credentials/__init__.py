"""Recognise and parse every code a citizen presents at a checkpoint.

:func:`recognise` is the single entry point the scan loop calls with the QR decoder's
bytes as they are; it never raises.  One module per family (payloads.md):
:mod:`.cccd`, :mod:`.pc_covid`, :mod:`.bhyt`, :mod:`.dcc`, :mod:`.venue`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from kiosk.domain.credentials import bhyt, cccd, dcc, pc_covid, venue
from kiosk.domain.credentials._text import MAX_NAME, MAX_PAYLOAD, MAX_TEXT, SPACES, clean, to_text
from kiosk.domain.model import Credential, Kind

log = logging.getLogger(__name__)

__all__ = ["from_cccd_number", "recognise"]


def recognise(payload: bytes | str) -> Credential:
    """Parse a QR payload into a :class:`Credential`; never raises.

    Unknown and venue codes carry no person key, an empty display and never the
    payload itself.  Parsing problems become reason codes in ``problems``.
    """
    try:
        return _safe_text(_recognise(payload))
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
        parts = [p.strip(SPACES) for p in text.split("|")]
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


NAME_FIELDS = frozenset({"name", "family_name", "given_name", "family_name_icao",
                         "given_name_icao"})
# Opaque, never shown or stored, and may hold a signature: characters checked, not length.
OPAQUE_FIELDS = frozenset({"ext"})


def _safe_text(credential: Credential) -> Credential:
    """Every text a parser kept, checked once more: a field a parser did not clean itself
    (a DCC name, a BHYT clinic code, the person key) must not carry control, bidi or
    unassigned characters to the screen, the store or a log, nor pass a checkpoint."""
    problems: list[str] = list(credential.problems)
    changed = False

    def safe(key: str, value: Any) -> Any:
        if isinstance(value, list):
            return [safe(key, v) for v in value]
        if not isinstance(value, str):
            return value
        limit = (MAX_NAME if key in NAME_FIELDS
                 else MAX_PAYLOAD if key in OPAQUE_FIELDS else MAX_TEXT)
        text, found = clean(value, limit=limit)
        if not found:
            return value  # untouched: the parser's own form (spacing) stays as it was
        nonlocal changed
        changed = True
        problems.extend(found)
        return text

    fields = {k: safe(k, v) for k, v in credential.fields.items()}
    display = {k: safe(k, v) for k, v in credential.display.items()}
    person_key = safe("person_key", credential.person_key)
    if not changed:
        return credential
    unique = tuple(dict.fromkeys(problems))
    return dataclasses.replace(credential, fields=fields, display=display,
                               person_key=person_key or None, problems=unique)


def _drop_dollar(parts: list[str]) -> list[str]:
    return parts[:-1] + [parts[-1][:-1].rstrip()]
