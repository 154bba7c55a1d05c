"""National personal COVID QR (Decision 1405/QĐ-BTTTT, format v1.1).

``document|NAME|YYYY-MM-DD|0 or 1|QID|EXT``; apps may mask the document number and the
day/month of birth with ``*``.  The QID is the stable person key.
"""

from __future__ import annotations

import re

from kiosk.domain.credentials import identifiers as ids
from kiosk.domain.credentials._text import MAX_NAME, clean
from kiosk.domain.credentials.masking import mask_id, mask_name
from kiosk.domain.model import Credential, Kind

DOB = re.compile(r"(\d{4}|\*{4})-(\d{2}|\*{2})-(\d{2}|\*{2})")
QID = re.compile(r"\d{10,24}")
DOCUMENT = re.compile(r"[0-9A-Za-z*]{6,16}")


def looks_like(parts: list[str]) -> bool:
    return (
        len(parts) >= 5
        and DOB.fullmatch(parts[2]) is not None
        and parts[3] in ("0", "1")
        and QID.fullmatch(parts[4]) is not None
    )


def parse(parts: list[str]) -> Credential:
    document, name, dob, declared, qid = parts[:5]
    ext = parts[5] if len(parts) > 5 else ""
    name, name_problems = clean(name, limit=MAX_NAME)
    m = DOB.fullmatch(dob)
    assert m is not None  # looks_like() matched it
    year = m[1] if m[1].isdigit() else None
    checks: dict[str, bool | None] = {
        "document_number": DOCUMENT.fullmatch(document) is not None,
        "name": bool(name),
    }
    problems = list(name_problems)
    if not checks["document_number"]:
        problems.append("pc_covid_document_invalid")
    if not name:
        problems.append("pc_covid_name_missing")
    if len(parts) > 6:
        # A ``|`` inside EXT is not in the format; keep the code but let an officer look.
        checks["field_count"] = False
        problems.append("pc_covid_extra_fields")
    ext_parts = ext.split("<") if ext else []
    fields = {
        "document_number": document,
        "name": name,
        "birth_date": dob,
        "birth_year": year,
        "declared_by_proxy": declared == "1",
        "qid": qid,
        # Sub-field order is not certain (payloads.md, section 2): kept opaque.
        "ext": ext_parts,
    }
    display = {"name": mask_name(name), "id": mask_id(document)}
    if year:
        display["birth_year"] = year
    identifiers = ids.document(document)
    if ids.QID.fullmatch(qid):
        identifiers.add(("qid", qid))
    for item in ext_parts:
        # Only a full 15-character insurance card: a bare 10-digit sub-field may be a phone
        # number, and the proxy's QID is someone else's.
        if ids.BHYT_CARD.fullmatch(ids.normalize(item)):
            identifiers |= ids.bhyt(item)
    return Credential(
        kind=Kind.PC_COVID,
        person_key=qid,
        display=display,
        fields=fields,
        checks=checks,
        problems=tuple(problems),
        identifiers=frozenset(identifiers),
    )
