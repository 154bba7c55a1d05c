"""Quarantine watchlist: salted hashes, inclusive end dates, staleness, document errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from kiosk.domain.credentials import recognise
from kiosk.domain.model import Decision, Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.reasons import REASONS
from kiosk.domain.watchlist import Watchlist
from kiosk.errors import ConfigError

ISSUED = datetime(2022, 6, 1, tzinfo=UTC)
CCCD = "001185012345||Trần Thị Bích Ngọc|14071985|Nữ|Hà Nội|10052021"


def make(keys, **kw) -> Watchlist:
    return Watchlist.from_json(Watchlist.build(keys, b"pepper", issued_at=ISSUED, **kw))


def test_document_holds_no_person_key():
    data = Watchlist.build([("001185012345", date(2022, 6, 10))], b"pepper", issued_at=ISSUED)
    assert b"001185012345" not in data
    doc = json.loads(data)
    assert doc["version"] == 1 and doc["salt"] == b"pepper".hex()
    assert doc["entries"][0]["until"] == "2022-06-10"


def test_until_is_inclusive_in_vietnam_time():
    wl = make([("001185012345", date(2022, 6, 10))], valid_for=timedelta(days=30))
    # 2022-06-10 23:30 in Hà Nội is 16:30 UTC: still under the order.
    assert wl.matches("001185012345", at=datetime(2022, 6, 10, 16, 30, tzinfo=UTC))
    # 2022-06-11 00:30 in Hà Nội is 17:30 UTC on the 10th: the order has ended.
    assert not wl.matches("001185012345", at=datetime(2022, 6, 10, 17, 30, tzinfo=UTC))
    assert not wl.matches("001185012346", at=ISSUED)
    assert not wl.matches(None, at=ISSUED)


def test_stale_after_expiry():
    wl = make([], valid_for=timedelta(hours=12))
    assert not wl.is_stale(ISSUED + timedelta(hours=12))
    assert wl.is_stale(ISSUED + timedelta(hours=12, seconds=1))


def test_match_stops_with_a_generic_public_message():
    wl = make([("001185012345", date(2022, 6, 10))])
    checker = Checker(policy=Policy.load("hospital"), watchlist=wl)
    decision = checker.decide(recognise(CCCD), at=ISSUED)
    assert decision == Decision(Outcome.STOP, ("watchlist",))
    assert REASONS["watchlist"] == "Please wait for an officer"  # vi: tests/test_ui_text.py


def test_stale_or_missing_list_gives_check():
    checker = Checker(policy=Policy.load("hospital"), watchlist=make([]))
    late = ISSUED + timedelta(days=2)
    assert checker.decide(recognise(CCCD), at=late) == Decision(Outcome.CHECK, ("watchlist_stale",))
    checker = Checker(policy=Policy.load("hospital"))
    assert checker.decide(recognise(CCCD), at=ISSUED).reasons == ("watchlist_missing",)
    checker = Checker(policy=Policy.load("office"))
    assert checker.decide(recognise(CCCD), at=ISSUED) == Decision(Outcome.PASS, ())


def test_later_end_date_wins_for_duplicates():
    wl = make([("k", date(2022, 6, 2)), ("k", date(2022, 6, 20)), ("k", date(2022, 6, 5))])
    assert wl.matches("k", at=datetime(2022, 6, 15, tzinfo=UTC))


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ("[]", "expected an object"),
        ('{"version": 2}', "watchlist.version"),
        ('{"version": 1, "issued_at": "x"}', "watchlist.issued_at"),
        (
            '{"version": 1, "issued_at": "2022-06-01", "expires_at": "2022-06-02", "salt": "zz"}',
            "watchlist.salt",
        ),
        (
            '{"version": 1, "issued_at": "2022-06-01", "expires_at": "2022-06-02", "salt": "00",'
            ' "entries": [{"h": "00"}]}',
            "watchlist.entries[0]",
        ),
        ("{", "not valid JSON"),
    ],
)
def test_bad_documents_name_the_member(doc, needle):
    with pytest.raises(ConfigError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        Watchlist.from_json(doc)


def test_from_file(tmp_path):
    path = tmp_path / "watchlist.json"
    path.write_bytes(Watchlist.build([("k", date(2022, 6, 2))], issued_at=ISSUED))
    assert len(Watchlist.from_file(path)) == 1
    with pytest.raises(ConfigError, match="cannot read the watchlist"):
        Watchlist.from_file(tmp_path / "missing.json")
