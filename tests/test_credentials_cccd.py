"""Chip ID card (CCCD) codes: every variant in payloads.md, and the number cross-checks."""

from __future__ import annotations

import unicodedata

import pytest

from kiosk.domain.credentials import recognise
from kiosk.domain.model import Kind

# Synthetic person: female born 1985 in Hà Nội -> 001 / 1 / 85 / serial.
NAME = "Trần Thị Bích Ngọc"
ADDRESS = "Số 8 Ngõ 12, Phường Láng Hạ, Quận Đống Đa, Hà Nội"
SEVEN = f"001185012345|012345678|{NAME}|14071985|Nữ|{ADDRESS}|10052021"

VARIANTS = {
    "seven fields": SEVEN,
    "old id empty": f"001185012345||{NAME}|14071985|Nữ|{ADDRESS}|10052021",
    "six fields, slashed dates": f"001185012345|{NAME}|14/07/1985|Nữ|{ADDRESS}|10/05/2021",
    "new card, trailing empty fields": f"001185012345||{NAME}|14071985|Nữ|{ADDRESS}|10052021||||",
    "BOM and CR/LF as bytes": ("\ufeff" + SEVEN + "\r\n").encode("utf-8"),
    "NFD text": unicodedata.normalize("NFD", SEVEN),
    "NFD bytes with BOM": ("\ufeff" + unicodedata.normalize("NFD", SEVEN) + "\n").encode(),
}


@pytest.mark.parametrize("payload", VARIANTS.values(), ids=VARIANTS.keys())
def test_every_variant_reads_the_same_person(payload):
    c = recognise(payload)
    assert c.kind == Kind.CCCD
    assert c.person_key == "001185012345"
    assert c.problems == ()
    assert c.fields["name"] == NAME
    assert unicodedata.is_normalized("NFC", c.fields["address"])
    assert c.fields["birth_date"] == "1985-07-14"
    assert c.fields["issue_date"] == "2021-05-10"
    assert c.fields["sex"] == "female"
    assert c.fields["province"] == "Hà Nội"
    assert c.display == {"name": "Trần T*** B*** N*", "id": "********2345", "birth_year": "1985"}
    assert all(v is True for v in c.checks.values()), c.checks


def test_old_id_kept_when_present():
    assert recognise(SEVEN).fields["old_id"] == "012345678"
    assert recognise(VARIANTS["old id empty"]).fields["old_id"] is None


@pytest.mark.parametrize(
    ("number", "dob", "sex", "problem"),
    [
        ("001085012345", "14071985", "Nữ", "cccd_sex_mismatch"),  # 0 = male
        ("001385012345", "14071985", "Nữ", "cccd_century_mismatch"),  # 3 = female 2000s
        ("001186012345", "14071985", "Nữ", "cccd_birth_year_mismatch"),
        ("003185012345", "14071985", "Nữ", "cccd_province_unknown"),  # 003 is not a province
        ("001185012345", "31021985", "Nữ", "cccd_birth_date_invalid"),
        ("001185012345", "14071985", "X", "cccd_sex_invalid"),
    ],
)
def test_cross_check_mismatch_is_a_reason_not_a_crash(number, dob, sex, problem):
    c = recognise(f"{number}||{NAME}|{dob}|{sex}|{ADDRESS}|10052021")
    assert c.kind == Kind.CCCD
    assert problem in c.problems
    assert c.person_key == number


def test_male_born_2003_in_ho_chi_minh_city():
    c = recognise("079203000123||Nguyễn Văn An|01012003|Nam|Quận 1, TP HCM|05062021")
    assert c.problems == ()
    assert c.fields["province"] == "TP Hồ Chí Minh"
    assert c.display["name"] == "Nguyễn V*** A*"


def test_issue_before_birth_is_reported():
    c = recognise(f"001185012345||{NAME}|14071985|Nữ|{ADDRESS}|10051980")
    assert "cccd_issue_date_invalid" in c.problems


def test_all_63_provinces_known():
    from kiosk.domain.credentials.cccd import PROVINCES

    assert len(PROVINCES) == 63
    assert all(unicodedata.is_normalized("NFC", v) for v in PROVINCES.values())
    assert all("001" <= k <= "096" for k in PROVINCES)


def test_not_enough_fields_is_not_a_cccd():
    assert recognise("001185012345|Trần Thị|14071985").kind == Kind.UNKNOWN
