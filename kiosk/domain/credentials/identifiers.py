"""The full identity numbers a code carries, typed and normalised.

One person shows different codes (CCCD card, PC-Covid / VNeID QR, BHYT card, vaccine
passport) that carry the same numbers in different fields: the 12-digit CCCD number is also
the personal identification number PC-Covid and VNeID put in their document field, the old
9-digit CMND appears on a CCCD and in PC-Covid, the 10-digit social-insurance number is the
tail of the old 15-character BHYT card.  Each parser lists every *full* number it read as
``(type, number)`` pairs; a masked one (``******012345``) identifies nobody and is left out.
The watchlist hashes the number alone (see docs/credentials.md, "Identifiers").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

CCCD = re.compile(r"\d{12}")
CMND = re.compile(r"\d{9}")
BHXH = re.compile(r"\d{10}")  # social-insurance number, the new BHYT card number
BHYT_CARD = re.compile(r"[A-Z]{2}\d{13}")  # 2 letters, benefit level, province, BHXH number
QID = re.compile(r"\d{10,24}")
PASSPORT = re.compile(r"(?=[A-Z0-9]*\d)[A-Z0-9]{6,16}")
UVCI = re.compile(r"(URN:UVCI:)?\d\d:[A-Z]{2}[:/][A-Z0-9/#:.\-]{4,72}")

# The types a number can have; "document" is PC-Covid's field when its shape says nothing.
TYPES = ("cccd", "cmnd", "qid", "bhyt", "bhxh", "passport", "uvci")

Identifier = tuple[str, str]


def normalize(value: str) -> str:
    """``" 0011 8501 2345 "`` -> ``"001185012345"``: NFKC (full-width digits), no spaces, upper."""
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def type_of(number: str) -> str | None:
    """The identifier type a normalised number has by its shape; None when it is none.

    ``*`` (an app's masking) or any other character makes it not a full identifier.
    """
    if CCCD.fullmatch(number):
        return "cccd"
    if CMND.fullmatch(number):
        return "cmnd"
    if BHXH.fullmatch(number):
        return "bhxh"
    if BHYT_CARD.fullmatch(number):
        return "bhyt"
    if QID.fullmatch(number):
        return "qid"
    if UVCI.fullmatch(number):
        return "uvci"
    if PASSPORT.fullmatch(number):
        return "passport"
    return None


def bhyt(card: str) -> set[Identifier]:
    """A BHYT card number and, for the 15-character card, the BHXH number at its end."""
    card = normalize(card)
    if BHYT_CARD.fullmatch(card):
        return {("bhyt", card), ("bhxh", card[5:])}
    if BHXH.fullmatch(card):
        return {("bhxh", card)}
    return set()


def document(number: str) -> set[Identifier]:
    """PC-Covid's document field: a CCCD, CMND or passport number, unless masked."""
    number = normalize(number)
    kind = type_of(number)
    if kind is None or kind == "uvci":
        return set()
    return {(kind if kind in ("cccd", "cmnd") else "passport", number)}


def numbers(identifiers: Iterable[Identifier]) -> set[str]:
    """The numbers alone, for the watchlist."""
    return {number for _, number in identifiers}
