"""Chip citizen ID card (CCCD) QR: ``number|old id|name|ddmmyyyy|Nam/Nữ|address|ddmmyyyy``.

The 12-digit number encodes the birth province, century and sex, and the last two
digits of the birth year; those are cross-checked against the printed fields so a
tampered or corrupted code shows up as reasons (never as an exception).
"""

from __future__ import annotations

import re
from datetime import date

from kiosk.domain.credentials._dates import parse_dmy
from kiosk.domain.credentials._text import MAX_NAME, clean
from kiosk.domain.credentials.masking import mask_id, mask_name
from kiosk.domain.model import Credential, Kind

NUMBER = re.compile(r"\d{12}")
OLD_ID = re.compile(r"\d{9}|\d{12}")

# Province codes of birth registration (Circular 07/2016/TT-BCA, 63 provinces).
PROVINCES: dict[str, str] = {
    "001": "Hà Nội", "002": "Hà Giang", "004": "Cao Bằng", "006": "Bắc Kạn",
    "008": "Tuyên Quang", "010": "Lào Cai", "011": "Điện Biên", "012": "Lai Châu",
    "014": "Sơn La", "015": "Yên Bái", "017": "Hòa Bình", "019": "Thái Nguyên",
    "020": "Lạng Sơn", "022": "Quảng Ninh", "024": "Bắc Giang", "025": "Phú Thọ",
    "026": "Vĩnh Phúc", "027": "Bắc Ninh", "030": "Hải Dương", "031": "Hải Phòng",
    "033": "Hưng Yên", "034": "Thái Bình", "035": "Hà Nam", "036": "Nam Định",
    "037": "Ninh Bình", "038": "Thanh Hóa", "040": "Nghệ An", "042": "Hà Tĩnh",
    "044": "Quảng Bình", "045": "Quảng Trị", "046": "Thừa Thiên Huế", "048": "Đà Nẵng",
    "049": "Quảng Nam", "051": "Quảng Ngãi", "052": "Bình Định", "054": "Phú Yên",
    "056": "Khánh Hòa", "058": "Ninh Thuận", "060": "Bình Thuận", "062": "Kon Tum",
    "064": "Gia Lai", "066": "Đắk Lắk", "067": "Đắk Nông", "068": "Lâm Đồng",
    "070": "Bình Phước", "072": "Tây Ninh", "074": "Bình Dương", "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu", "079": "TP Hồ Chí Minh", "080": "Long An",
    "082": "Tiền Giang", "083": "Bến Tre", "084": "Trà Vinh", "086": "Vĩnh Long",
    "087": "Đồng Tháp", "089": "An Giang", "091": "Kiên Giang", "092": "Cần Thơ",
    "093": "Hậu Giang", "094": "Sóc Trăng", "095": "Bạc Liêu", "096": "Cà Mau",
}  # fmt: skip

SEX = {"nam": "male", "nữ": "female", "nu": "female"}


def looks_like(parts: list[str]) -> bool:
    return len(parts) >= 6 and NUMBER.fullmatch(parts[0]) is not None


def parse(parts: list[str]) -> Credential:
    """Parse the ``|``-separated fields of a CCCD code (already NFC, BOM and CR/LF gone)."""
    number = parts[0]
    # Seven-field form has the old 9-digit ID (possibly empty) second; the six-field
    # form re-shared through chat apps has the name there instead.
    if len(parts) >= 7 and (parts[1] == "" or OLD_ID.fullmatch(parts[1])):
        old_id, name, dob_s, sex_s, address, issued_s = parts[1:7]
        extra = parts[7:]
    else:
        old_id = ""
        name, dob_s, sex_s, address, issued_s = parts[1:6]
        extra = parts[6:]

    problems: list[str] = []
    checks: dict[str, bool | None] = {}
    dob = parse_dmy(dob_s)
    issued = parse_dmy(issued_s)
    sex = SEX.get(sex_s.strip().lower())
    name, name_problems = clean(name, limit=MAX_NAME)
    address, address_problems = clean(address)
    problems += name_problems + address_problems
    checks["name"] = bool(name)
    if not name:
        problems.append("cccd_name_missing")
    checks["birth_date"] = dob is not None and dob.year >= 1900
    if not checks["birth_date"]:
        problems.append("cccd_birth_date_invalid")
    checks["sex"] = sex is not None
    if sex is None:
        problems.append("cccd_sex_invalid")
    checks["issue_date"] = issued is not None and (dob is None or issued > dob)
    if not checks["issue_date"]:
        problems.append("cccd_issue_date_invalid")

    _number_checks(number, sex, dob, checks, problems)
    if any(e.strip() for e in extra):
        # New-model cards add empty trailing fields; non-empty ones are unknown to us.
        checks["no_unknown_fields"] = False

    fields = {
        "number": number,
        "old_id": old_id or None,
        "name": name,
        "birth_date": _iso(dob),
        "sex": sex,
        "address": address,
        "issue_date": _iso(issued),
        "province": PROVINCES.get(number[:3]),
    }
    display = {"name": mask_name(name), "id": mask_id(number)}
    if dob is not None:
        display["birth_year"] = str(dob.year)
    identifiers = {("cccd", number)}
    if old_id and OLD_ID.fullmatch(old_id):
        identifiers.add(("cmnd", old_id))
    return Credential(
        kind=Kind.CCCD,
        person_key=number,
        display=display,
        fields=fields,
        checks=checks,
        problems=tuple(problems),
        identifiers=frozenset(identifiers),
    )


def _number_checks(number: str, sex: str | None, dob: date | None,
                   checks: dict[str, bool | None], problems: list[str]) -> None:
    """What the 12 digits say themselves (province; century and sex; birth year), checked
    against the printed fields; a check whose field is unreadable is None (not done)."""
    checks["province"] = number[:3] in PROVINCES
    if not checks["province"]:
        problems.append("cccd_province_unknown")
    code = int(number[3])
    century = 1900 + (code // 2) * 100
    if sex is None:
        checks["sex_digit"] = None
    else:
        checks["sex_digit"] = (code % 2 == 1) == (sex == "female")
        if not checks["sex_digit"]:
            problems.append("cccd_sex_mismatch")
    if dob is None:
        checks["century_digit"] = checks["birth_year_digits"] = None
    else:
        checks["century_digit"] = century <= dob.year < century + 100
        if not checks["century_digit"]:
            problems.append("cccd_century_mismatch")
        checks["birth_year_digits"] = number[4:6] == f"{dob.year % 100:02d}"
        if not checks["birth_year_digits"]:
            problems.append("cccd_birth_year_mismatch")


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def from_number(number: str, *, today: date | None = None) -> Credential:
    """A CCCD typed in by an officer for someone with no QR code.

    Only the number is known, so only what it encodes is checked: the province code, and a
    century/sex digit and birth-year digits that give a birth year not in the future.
    """
    number = "".join(number.split())
    if NUMBER.fullmatch(number) is None:
        return Credential(kind=Kind.UNKNOWN, problems=("cccd_number_invalid",))
    today = today or date.today()
    problems: list[str] = []
    checks: dict[str, bool | None] = {"province": number[:3] in PROVINCES}
    if not checks["province"]:
        problems.append("cccd_province_unknown")
    code = int(number[3])
    birth_year = 1900 + (code // 2) * 100 + int(number[4:6])
    checks["century_digit"] = birth_year <= today.year
    if not checks["century_digit"]:
        problems.append("cccd_century_mismatch")
    sex = "female" if code % 2 else "male"
    display = {"id": mask_id(number)}
    if checks["century_digit"]:
        display["birth_year"] = str(birth_year)
    return Credential(
        kind=Kind.CCCD,
        person_key=number,
        display=display,
        fields={"number": number, "sex": sex, "province": PROVINCES.get(number[:3]),
                "birth_year": birth_year if checks["century_digit"] else None},
        checks=checks,
        problems=tuple(problems),
        identifiers=frozenset({("cccd", number)}),
    )
