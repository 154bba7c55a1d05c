"""Quarantine watchlist: Argon2id hashes, inclusive end dates, staleness, document errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from kiosk.domain import watchlist as wlmod
from kiosk.domain.credentials import recognise
from kiosk.domain.documents import DocumentError, validate_watchlist
from kiosk.domain.model import Decision, Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.reasons import REASONS
from kiosk.domain.watchlist import DEFAULT_KDF, KdfParams, Watchlist, derive
from kiosk.errors import ConfigError

ISSUED = datetime(2022, 6, 1, tzinfo=UTC)
PEPPER = b"pepper-16-bytes!"
CCCD = "001185012345||Trần Thị Bích Ngọc|14071985|Nữ|Hà Nội|10052021"


def make(keys, **kw) -> Watchlist:
    return Watchlist.from_json(Watchlist.build(keys, PEPPER, issued_at=ISSUED, **kw))


def test_document_holds_no_person_key():
    data = Watchlist.build([("001185012345", date(2022, 6, 10))], PEPPER, issued_at=ISSUED)
    assert b"001185012345" not in data
    doc = json.loads(data)
    assert doc["version"] == 2 and doc["salt"] == PEPPER.hex()
    assert doc["kdf"] == {"name": "argon2id", "version": 19, "time_cost": 1,
                          "memory_kib": 12288, "parallelism": 1}
    assert doc["entries"][0]["until"] == "2022-06-10"
    # The entry is Argon2id (RFC 9106) of the number under the list's salt, nothing else.
    from argon2.low_level import Type, hash_secret_raw

    want = hash_secret_raw(b"001185012345", PEPPER, time_cost=1, memory_cost=12288,
                           parallelism=1, hash_len=32, type=Type.ID, version=19)
    assert doc["entries"][0]["h"] == want.hex()


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


def _doc(**changes) -> str:
    doc = json.loads(Watchlist.build([("001185012345", date(2022, 6, 10))], PEPPER,
                                     issued_at=ISSUED))
    for key, value in changes.items():
        if key.startswith("kdf_"):
            doc["kdf"][key[4:]] = value
        elif value is None:
            doc.pop(key)
        else:
            doc[key] = value
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ("[]", "expected an object"),
        ('{"version": 3}', "watchlist.version is 3"),
        (_doc(issued_at="x"), "watchlist.issued_at"),
        (_doc(salt="zz"), "watchlist.salt"),
        (_doc(salt="00" * 8), "watchlist.salt is 8 byte(s)"),
        (_doc(entries=[{"h": "00"}]), "watchlist.entries[0]"),
        (_doc(entries=[{"h": "00" * 32}]), "watchlist.entries[0]"),  # no until
        (_doc(kdf=None), "watchlist.kdf is None"),
        (_doc(kdf_name="scrypt"), "watchlist.kdf.name is 'scrypt'"),
        (_doc(kdf_version=16), "watchlist.kdf.version is 16"),
        (_doc(kdf_parallelism=4), "watchlist.kdf.parallelism is 4"),
        (_doc(kdf_salt="00"), "unknown member(s) ['salt']"),
        (_doc(kdf_time_cost=0), "watchlist.kdf.time_cost is 0"),
        (_doc(kdf_time_cost=True), "watchlist.kdf.time_cost is True"),
        (_doc(kdf_memory_kib="12288"), "watchlist.kdf.memory_kib is '12288'"),
        (_doc(kdf_memory_kib=4096), "watchlist.kdf.memory_kib is 4096: too weak"),
        (_doc(kdf_memory_kib=1 << 20), "memory_kib 1048576 is too costly"),
        (_doc(kdf_time_cost=5), "time_cost 5 x memory_kib 12288 is too costly"),
        ("{", "not valid JSON"),
    ],
)
def test_bad_documents_name_the_member(doc, needle):
    with pytest.raises(ConfigError) as e:
        Watchlist.from_json(doc)
    assert needle in str(e.value)


def test_old_sha256_list_is_refused_with_a_rebuild_message():
    """A version-1 list (salted SHA-256) is refused by the kiosk and by the central's check."""
    import hashlib

    salt = b"pepper"
    old = json.dumps({
        "version": 1, "issued_at": ISSUED.isoformat(),
        "expires_at": (ISSUED + timedelta(days=1)).isoformat(), "salt": salt.hex(),
        "entries": [{"h": hashlib.sha256(salt + b"001185012345").hexdigest(),
                     "until": "2022-06-10"}],
    }).encode()
    with pytest.raises(ConfigError, match="rebuild the list with 'checkpoint-kiosk watchlist"):
        Watchlist.from_json(old)
    with pytest.raises(DocumentError, match="watchlist.version is 1"):
        validate_watchlist(old)


def test_a_stronger_list_is_accepted_and_matches():
    strong = KdfParams(time_cost=2, memory_kib=16 * 1024)
    data = Watchlist.build([("001185012345", date(2022, 6, 10))], PEPPER, issued_at=ISSUED,
                           kdf=strong)
    wl = Watchlist.from_json(data)
    assert wl.kdf == strong and wl.matches("001185012345", at=ISSUED)
    assert wl.digest("001185012345") != derive("001185012345", PEPPER, DEFAULT_KDF)


def test_salt_separates_lists():
    a = Watchlist.from_json(Watchlist.build([("001185012345", date(2022, 6, 10))],
                                            issued_at=ISSUED))
    b = Watchlist.from_json(Watchlist.build([("001185012345", date(2022, 6, 10))],
                                            issued_at=ISSUED))
    assert a.salt != b.salt and a.digest("001185012345") != b.digest("001185012345")
    assert a.matches("001185012345", at=ISSUED) and b.matches("001185012345", at=ISSUED)


class CountingWatchlist(Watchlist):
    """The real list, counting the hashes a match computes."""

    hashed: list[str]

    def digest(self, number: str) -> str:
        self.hashed.append(number)
        return super().digest(number)


def test_a_scan_hashes_each_distinct_number_once_and_at_most_the_cap():
    wl = make([("001185012345", date(2022, 6, 10))])
    counting = CountingWatchlist(salt=wl.salt, entries=dict(wl._entries),
                                 issued_at=wl.issued_at, expires_at=wl.expires_at, kdf=wl.kdf)
    counting.hashed = []
    assert counting.matches_any(["001185012345", " 0011 8501 2345", "001185012345"], at=ISSUED)
    assert counting.hashed == ["001185012345"]
    counting.hashed = []
    many = [f"{i:012d}" for i in range(30)]
    assert not counting.matches_any(many, at=ISSUED)
    assert len(counting.hashed) == wlmod.MAX_NUMBERS_PER_SCAN


def test_from_file(tmp_path):
    path = tmp_path / "watchlist.json"
    path.write_bytes(Watchlist.build([("k", date(2022, 6, 2))], issued_at=ISSUED))
    assert len(Watchlist.from_file(path)) == 1
    with pytest.raises(ConfigError, match="cannot read the watchlist"):
        Watchlist.from_file(tmp_path / "missing.json")
