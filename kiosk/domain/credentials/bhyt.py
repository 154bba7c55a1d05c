"""Health-insurance (BHYT) card QR: ``|``-separated, ends with ``$``, name/address hex UTF-8.

Fields: 0 card number, 1 name (hex), 2 birth date, 3 sex (1 male, 2 female),
4 address (hex), 5 clinic code, 6/7 valid from/to, 8 issue date; 9-13 undocumented.
Validity against the clock is the Checker's job (an expired card is a reason).
"""

from __future__ import annotations

import re
import unicodedata

from kiosk.domain.credentials import identifiers as ids
from kiosk.domain.credentials._dates import parse_dmy
from kiosk.domain.credentials._text import MAX_NAME, clean
from kiosk.domain.credentials.masking import mask_id, mask_name
from kiosk.domain.model import Credential, Kind

CARD = re.compile(r"[A-Z]{2}\d{13}|\d{10}")
HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
SEX = {"1": "male", "2": "female"}


def looks_like(parts: list[str]) -> bool:
    return len(parts) >= 8 and HEX.fullmatch(parts[1]) is not None and _unhex(parts[1]) is not None


def _unhex(value: str) -> str | None:
    try:
        text = bytes.fromhex(value).decode("utf-8")
    except ValueError:
        return None
    return unicodedata.normalize("NFC", text)


def parse(parts: list[str]) -> Credential:
    card = parts[0].strip().upper()
    name, name_problems = clean(_unhex(parts[1]) or "", limit=MAX_NAME)
    dob = parse_dmy(parts[2])
    # Some cards print only the birth year.
    birth_year = str(dob.year) if dob else (parts[2] if re.fullmatch(r"\d{4}", parts[2]) else None)
    address, address_problems = clean(
        (_unhex(parts[4]) if HEX.fullmatch(parts[4]) else None) or "")
    valid_from = parse_dmy(parts[6])
    valid_to = parse_dmy(parts[7])
    issued = parse_dmy(parts[8]) if len(parts) > 8 else None
    checks: dict[str, bool | None] = {
        "card_number": CARD.fullmatch(card) is not None,
        "name": bool(name),
        "birth_date": birth_year is not None,
        "validity_dates": valid_from is not None and (valid_to is None or valid_to >= valid_from),
    }
    problems = [*name_problems, *address_problems]
    if not checks["card_number"]:
        problems.append("bhyt_card_number_invalid")
    if not name:
        problems.append("bhyt_name_missing")
    if not checks["birth_date"]:
        problems.append("bhyt_birth_date_invalid")
    if not checks["validity_dates"]:
        problems.append("bhyt_dates_invalid")
    fields = {
        "card_number": card,
        "name": name,
        "birth_date": dob.isoformat() if dob else None,
        "birth_year": birth_year,
        "sex": SEX.get(parts[3].strip()),
        "address": address,
        "clinic": parts[5].strip(),
        "valid_from": valid_from.isoformat() if valid_from else None,
        "valid_to": valid_to.isoformat() if valid_to else None,
        "issue_date": issued.isoformat() if issued else None,
    }
    display = {"name": mask_name(name), "id": mask_id(card)}
    if birth_year:
        display["birth_year"] = birth_year
    return Credential(
        kind=Kind.BHYT,
        person_key=card,
        display=display,
        fields=fields,
        checks=checks,
        problems=tuple(problems),
        identifiers=frozenset(ids.bhyt(card)),
    )
