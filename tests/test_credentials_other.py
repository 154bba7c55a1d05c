"""Personal COVID QR, health-insurance card, venue and unknown codes, masking."""

from __future__ import annotations

import json
import unicodedata

import pytest

from kiosk.domain.credentials import recognise
from kiosk.domain.credentials.masking import mask_id, mask_name
from kiosk.domain.model import Kind

PC_COVID = "******012345|NGUYEN VAN BINH|1990-**-**|0|162979388586171234|1<GD4790*******<0912******"


def hexs(text: str) -> str:
    return text.encode("utf-8").hex()


BHYT = (
    f"DN4010123456789|{hexs('Lê Thị Hạnh')}|02/03/1990|2|{hexs('12 Lý Thường Kiệt, Hà Nội')}"
    "|01 - 043|01/01/2022|31/12/2022|15/12/2021|-|4|01/01/2017|ABCDEF|abc123$"
)


def test_pc_covid_masked():
    c = recognise(PC_COVID)
    assert c.kind == Kind.PC_COVID
    assert c.person_key == "162979388586171234"
    assert c.display == {"name": "NGUYEN V*** B*", "id": "********2345", "birth_year": "1990"}
    assert c.fields["ext"] == ["1", "GD4790*******", "0912******"]
    assert c.fields["declared_by_proxy"] is False
    assert c.problems == ()


def test_pc_covid_unmasked_and_without_ext():
    c = recognise("001090012345|TRAN VAN C|1990-05-06|1|162979388586171299|")
    assert c.kind == Kind.PC_COVID
    assert c.person_key == "162979388586171299"
    assert c.fields["birth_date"] == "1990-05-06"
    assert c.fields["declared_by_proxy"] is True
    assert c.fields["ext"] == []


def test_bhyt_hex_fields_decoded():
    c = recognise(BHYT)
    assert c.kind == Kind.BHYT
    assert c.person_key == "DN4010123456789"
    assert c.fields["name"] == "Lê Thị Hạnh"
    assert c.fields["address"] == "12 Lý Thường Kiệt, Hà Nội"
    assert c.fields["valid_from"] == "2022-01-01"
    assert c.fields["valid_to"] == "2022-12-31"
    assert c.fields["sex"] == "female"
    assert c.display == {"name": "Lê T*** H*", "id": "********6789", "birth_year": "1990"}
    assert c.problems == ()


def test_bhyt_nfd_name_is_normalised_and_dollar_optional():
    nfd = unicodedata.normalize("NFD", "Lê Thị Hạnh")
    c = recognise(BHYT.replace(hexs("Lê Thị Hạnh"), hexs(nfd)).rstrip("$"))
    assert c.kind == Kind.BHYT
    assert c.fields["name"] == "Lê Thị Hạnh"


@pytest.mark.parametrize(
    ("payload", "host"),
    [
        ("https://tokhaiyte.vn/?page=Declaration&venue=12345", "tokhaiyte.vn"),
        ("https://kbyt.pccovid.gov.vn/qr/ABCDEF", "kbyt.pccovid.gov.vn"),
        ("https://e.coronawarn.app?v=1#CAESJQgBEgpBZ", "e.coronawarn.app"),
        ("http://example.com/menu", "example.com"),
    ],
)
def test_venue_links_keep_only_the_host(payload, host):
    c = recognise(payload)
    assert c.kind == Kind.VENUE
    assert c.person_key is None and c.display == {}
    assert c.fields["host"] == host
    assert payload not in json.dumps(c.fields)


@pytest.mark.parametrize(
    "payload",
    [
        "NZCOVIDTRACER:eyJnbG4iOiI5NDI5MDQ3MDAwMDAwIiwidmVyIjoiYzE5OjEifQ==",
        "WIFI:S:Cafe;T:WPA;P:secret-password;;",
    ],
)
def test_posters_and_wifi_are_venues_without_the_payload(payload):
    c = recognise(payload)
    assert c.kind == Kind.VENUE
    assert "secret" not in json.dumps(c.fields) and "eyJ" not in json.dumps(c.fields)


@pytest.mark.parametrize(
    "payload", ["hello world", "", "   \r\n", b"\xff\xfe\x00\x01", "12|34|56", "a" * 10_000]
)
def test_anything_else_is_unknown_and_echoes_nothing(payload):
    c = recognise(payload)
    assert c.kind == Kind.UNKNOWN
    assert c.person_key is None and c.display == {} and c.fields == {}


def test_mask_rules():
    assert mask_name("Nguyễn Văn An") == "Nguyễn V*** A*"
    assert mask_name("Trần Thị Bích Ngọc") == "Trần T*** B*** N*"
    assert mask_name("Lê  An") == "Lê A*"
    assert mask_name("Mai") == "Mai"
    assert mask_name("") == ""
    assert mask_name(unicodedata.normalize("NFD", "Đặng Ấn")) == "Đặng Ấ*"
    assert mask_id("001085012345") == "********2345"
    assert mask_id("123") == "***"
