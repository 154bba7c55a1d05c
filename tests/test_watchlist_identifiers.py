"""Issue 9, #9: a watchlisted person is stopped whichever of their codes they show.

Every full identity number a code carries (CCCD, old CMND, QID, BHYT / BHXH, passport,
UVCI) is checked against the watchlist; the hash is over the number, so the CCCD number
a PC-Covid QR carries in its document field hits the entry made for the CCCD card.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.domain.credentials import from_cccd_number, recognise
from kiosk.domain.model import Decision, Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.watchlist import Watchlist
from kiosk.testing import dcc_issue as di

AT = datetime(2022, 6, 1, 3, 0, tzinfo=UTC)
UNTIL = date(2022, 6, 14)
CCCD = "001185012345"
CMND = "012345678"
QID = "162979388586171234"
BHYT_CARD = "GD4790123456789"
BHXH = "0123456789"  # the last ten characters of the card above


def hexs(text: str) -> str:
    return text.encode().hex()


def bhyt(card: str) -> str:
    return (f"{card}|{hexs('Trần Thị Bích Ngọc')}|14/07/1985|2|{hexs('Hà Nội')}"
            "|01 - 043|01/01/2022|31/12/2022|15/12/2021$")


def dcc(uvci: str) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    dsc = di.make_dsc(key, not_before=AT - timedelta(days=9), not_after=AT + timedelta(days=9))
    cose = di.sign(di.vaccination(uvci=uvci), key, dsc=dsc, issued_at=AT - timedelta(days=1),
                   expires_at=AT + timedelta(days=9))
    return di.encode(cose)


UVCI = "URN:UVCI:01:VN:TEST0000000077#K"
# (watchlisted number, a code of another kind that carries it)
CASES = {
    "cccd card": (CCCD, f"{CCCD}||Trần Thị Bích Ngọc|14071985|Nữ|Hà Nội|10052021"),
    "old cmnd on a cccd card": (
        CMND, f"001185099999|{CMND}|Trần Thị Bích Ngọc|14071985|Nữ|Hà Nội|10052021"),
    "pc-covid carrying the cccd number": (
        CCCD, f"{CCCD}|TRAN THI BICH NGOC|1985-07-14|0|162979388586179999|1<2<0912******"),
    "pc-covid carrying the old cmnd": (
        CMND, f"{CMND}|TRAN THI BICH NGOC|1985-**-**|0|162979388586179999|"),
    "pc-covid by its qid, document masked": (
        QID, f"******012345|TRAN THI BICH NGOC|1985-**-**|0|{QID}|"),
    "pc-covid carrying a passport number": (
        "C1234567", "C1234567|TRAN THI BICH NGOC|1985-07-14|0|162979388586179999|"),
    "pc-covid carrying the insurance card in ext": (
        BHXH, f"******012345|TRAN THI BICH NGOC|1985-**-**|0|162979388586179999|"
              f"1<2<{BHYT_CARD}<0912******"),
    "bhyt card by its full number": (BHYT_CARD, bhyt(BHYT_CARD)),
    "old bhyt card by the social-insurance number": (BHXH, bhyt(BHYT_CARD)),
    "new bhyt card (the social-insurance number)": (BHXH, bhyt(BHXH)),
    "typed by an officer": (CCCD, CCCD),
    "vaccine passport by its uvci": (UVCI, dcc(UVCI)),
    "number written with spaces in the list": ("0011 8501 2345", CCCD),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("profile", ["border", "hospital"])
def test_every_code_carrying_a_watchlisted_number_stops(case, profile):
    number, payload = CASES[case]
    watchlist = Watchlist.from_json(Watchlist.build([(number, UNTIL)], issued_at=AT))
    checker = Checker(policy=Policy.load(profile), watchlist=watchlist)
    credential = from_cccd_number(payload) if payload == CCCD else recognise(payload)
    assert checker.decide(credential, at=AT) == Decision(Outcome.STOP, ("watchlist",))


def test_the_same_codes_pass_when_someone_else_is_listed():
    watchlist = Watchlist.from_json(Watchlist.build([("079203001234", UNTIL)], issued_at=AT))
    checker = Checker(policy=Policy.load("hospital"), watchlist=watchlist)
    for case, (_, payload) in CASES.items():
        if payload.startswith("HC1:"):
            continue  # no trust list here: a certificate alone is not a pass
        credential = from_cccd_number(payload) if payload == CCCD else recognise(payload)
        assert checker.decide(credential, at=AT).outcome is not Outcome.STOP, case


def test_a_masked_document_number_identifies_nobody():
    c = recognise("******012345|TRAN THI BICH NGOC|1985-**-**|0|162979388586179999|1<0912345678")
    # A phone number in EXT is not an insurance number; the masked field is no number.
    assert c.identifiers == {("qid", "162979388586179999")}


def test_identifiers_are_typed():
    c = recognise(CASES["old cmnd on a cccd card"][1])
    assert c.identifiers == {("cccd", "001185099999"), ("cmnd", CMND)}
    c = recognise(bhyt(BHYT_CARD))
    assert c.identifiers == {("bhyt", BHYT_CARD), ("bhxh", BHXH)}
    c = recognise(CASES["pc-covid carrying the cccd number"][1])
    assert c.identifiers == {("cccd", CCCD), ("qid", "162979388586179999")}
