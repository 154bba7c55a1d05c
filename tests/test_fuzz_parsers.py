"""No input of any length or bytes makes the parsers or the Checker raise, and they are fast."""

from __future__ import annotations

import json
import random
import time
import zlib
from datetime import UTC, datetime

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.domain.credentials import recognise
from kiosk.domain.credentials._text import MAX_NAME, is_unsafe
from kiosk.domain.credentials.base45 import b45encode
from kiosk.domain.model import Credential, Kind, Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.trustlist import TrustList

AT = datetime(2022, 6, 1, tzinfo=UTC)
CHECKER = Checker(policy=Policy.load("border"), trust_list=TrustList([], fetched_at=AT))
SEEDS = [
    "001185012345||Trần Thị Bích Ngọc|14071985|Nữ|Hà Nội|10052021",
    "******012345|NGUYEN VAN BINH|1990-**-**|0|162979388586171234|1<GD4790*******<0912******",
    "DN4010123456789|4cc3aa|02/03/1990|2|4841|01 - 043|01/01/2022|31/12/2022|15/12/2021$",
    "HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOOK.IR9B+9D-8Q:9PCGEGM2SDRQ14MK.ITR3",
    "https://tokhaiyte.vn/?venue=1",
]


def check(payload: bytes | str) -> None:
    credential = recognise(payload)
    assert isinstance(credential, Credential)
    decision = CHECKER.decide(credential, at=AT)
    assert decision.outcome in Outcome
    json.dumps({"f": credential.fields, "d": credential.display, "c": credential.checks})
    if not credential.kind.is_person:
        assert credential.person_key is None and credential.display == {}
    assert_safe(credential)


def texts(credential: Credential) -> list[str]:
    out = [credential.person_key or "", *credential.display.values()]
    for value in credential.fields.values():
        out += [v for v in value if isinstance(v, str)] if isinstance(value, list) else (
            [value] if isinstance(value, str) else [])
    return out


def assert_safe(credential: Credential) -> None:
    """Nothing that reaches the screen, the store or a log hides or reorders text."""
    for text in texts(credential):
        assert not any(is_unsafe(c) for c in text), repr(text)
    assert len(credential.display.get("name", "")) <= MAX_NAME


# Names as a hostile or broken reader delivers them: Vietnamese letters mixed with control,
# bidi, format, replacement, private-use and unassigned characters, at any length.
HOSTILE_CHARS = st.sampled_from(
    ["\x00", "\x1b", "\x07", "\x1f", "\x7f", "\x85", "\x9b", "\u202a", "\u202e", "\u2066",
     "\u2069", "\u200e", "\u200f", "\u200b", "\ufeff", "\ufffd", "\ue000", "\U000e0001",
     "\u0378", "\u2028"])
NAMES = st.lists(
    st.sampled_from(["Trần", "Thị", "Bích", "Ngọc", "Nguyễn", "Văn", "An", " "]) | HOSTILE_CHARS,
    min_size=1, max_size=60,
).map("".join) | st.text(min_size=1, max_size=400)


def wrap(kind: str, name: str) -> str:
    if kind == "cccd":
        return f"001185012345||{name}|14071985|Nữ|Hà Nội|10052021"
    if kind == "pc_covid":
        return f"001185012345|{name}|1985-07-14|0|162979388586171234|"
    return (f"GD4790123456789|{name.encode('utf-8', 'surrogatepass').hex()}|14/07/1985|2|4841"
            "|01 - 043|01/01/2022|31/12/2099|15/12/2021$")


LENIENT = {p: Checker(policy=Policy.load(p, {"watchlist": False}),
                      trust_list=TrustList([], fetched_at=AT)) for p in ("office", "hospital")}


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(["cccd", "pc_covid", "bhyt"]), NAMES, st.sampled_from(list(LENIENT)))
def test_a_name_with_unsafe_characters_or_too_long_never_passes(kind, name, profile):
    """Issue 9, #13: with the profiles that pass an ID card alone, a name that is not plain
    text (or longer than a name can be) is *check*, and what is kept is clean."""
    credential = recognise(wrap(kind, name))
    assert_safe(credential)
    decision = LENIENT[profile].decide(credential, at=AT)
    words = "".join(" " if is_unsafe(c) else c for c in name).split()
    if any(is_unsafe(c) for c in name) or len(" ".join(words)) > MAX_NAME:
        assert decision.outcome is not Outcome.PASS, (name, decision)
    if credential.kind is Kind.CCCD and words and decision.outcome is Outcome.PASS:
        # Masking still hides every given name (nothing joined them into one word).
        assert credential.display["name"].split()[1:] == [
            w[0] + "*" * (1 if i == len(words) - 2 else 3) for i, w in enumerate(words[1:])]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=5000))
def test_any_bytes(payload):
    check(payload)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=3000))
def test_any_text(payload):
    check(payload)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 200), st.characters()), max_size=8)
)
def test_mutated_real_shapes(seed, edits):
    text = list(seed)
    for pos, char in edits:
        text.insert(min(pos, len(text)), char)
    check("".join(text))


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats()
        | st.text(max_size=20)
        | st.binary(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=5)
            | st.dictionaries(st.integers(-300, 10) | st.text(max_size=5), inner, max_size=5)
        ),
        max_leaves=30,
    )
)
def test_hostile_cose_and_cwt_structures(obj):
    """Well-formed Base45/zlib around arbitrary CBOR, bare and inside a COSE_Sign1."""
    check("HC1:" + b45encode(zlib.compress(cbor2.dumps(obj))))
    body = cbor2.dumps({1: "VN", 4: 1, 6: 0, -260: {1: obj}})
    message = cbor2.CBORTag(18, [cbor2.dumps({1: -7, 4: b"12345678"}), {}, body, b"\0" * 64])
    credential = recognise("HC1:" + b45encode(zlib.compress(cbor2.dumps(message))))
    assert credential.kind == Kind.EU_DCC
    check("HC1:" + b45encode(zlib.compress(cbor2.dumps(message))))


def test_ten_thousand_random_payloads_under_ten_seconds():
    rng = random.Random(20220601)
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:|*<ăâđêôơưĐ\r\n\ufeff"
    payloads: list[bytes | str] = []
    for i in range(10_000):
        kind = i % 4
        if kind == 0:
            payloads.append(rng.randbytes(rng.randint(0, 3000)))
        elif kind == 1:
            payloads.append("HC1:" + "".join(rng.choices(alphabet[:45], k=rng.randint(0, 600))))
        elif kind == 2:
            seed = list(rng.choice(SEEDS))
            for _ in range(rng.randint(1, 5)):
                seed[rng.randrange(len(seed))] = rng.choice(alphabet)
            payloads.append("".join(seed))
        else:
            payloads.append("".join(rng.choices(alphabet, k=rng.randint(0, 400))))
    start = time.perf_counter()
    for payload in payloads:
        CHECKER.decide(recognise(payload), at=AT)
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"10 000 payloads took {elapsed:.1f} s"


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5)
                    | st.binary(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.integers(-5, 5), inner, max_size=3),
                    max_leaves=8))
def test_hostile_cose_headers(value):
    """Any CBOR value as the algorithm or the key id, in either header, is a DCC whose
    signature cannot be checked, never a parser crash.  (An array as the algorithm made
    ``ALGORITHMS.get`` raise TypeError: unhashable, and the code read as ``parser_error``.)"""
    body = cbor2.dumps({1: "VN", 4: 1, 6: 0, -260: {1: {}}})
    for protected, unprotected in (({1: value}, {}), ({}, {1: value}), ({4: value}, {}),
                                   ({}, {4: value, 1: value})):
        message = cbor2.CBORTag(18, [cbor2.dumps(protected), unprotected, body, b"\0" * 64])
        credential = recognise("HC1:" + b45encode(zlib.compress(cbor2.dumps(message))))
        assert credential.kind == Kind.EU_DCC
        assert credential.checks["cose"] is True
        assert "parser_error" not in credential.problems
        json.dumps(credential.fields)
