"""The document validators the central and the sync worker share with the kiosk (issue 9, #10)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.domain.documents import VALIDATORS, DocumentError, validate
from kiosk.domain.policy import Policy
from kiosk.domain.trustlist import build_json
from kiosk.domain.watchlist import Watchlist
from kiosk.errors import KioskError
from kiosk.testing import dcc_issue as di

AT = datetime(2022, 6, 1, tzinfo=UTC)


def dsc() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return di.make_dsc(key, not_before=AT - timedelta(days=1), not_after=AT + timedelta(days=9))


def test_one_validator_per_document_and_errors_are_both_families():
    assert set(VALIDATORS) == {"policy", "trust_list", "watchlist", "status", "risk_levels",
                               "officers"}
    assert issubclass(DocumentError, ValueError) and issubclass(DocumentError, KioskError)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("policy", b'{"profile": "hospital", "keep_fields": ["name"]}'),
        ("policy", b"{}"),  # no profile: border, the strictest
        ("watchlist", Watchlist.build([("001185012345", date(2022, 6, 9))], issued_at=AT)),
        ("watchlist", Watchlist.build([], issued_at=AT)),  # nobody under an order today
    ],
)
def test_documents_a_kiosk_can_apply_are_accepted(name, body):
    VALIDATORS[name](body)


def test_a_trust_list_with_a_usable_signer_is_accepted():
    VALIDATORS["trust_list"](build_json([(dsc(), "VN")]))


@pytest.mark.parametrize(
    ("name", "body", "needles"),
    [
        ("policy", b'{"profile": "airport"}', ["'policy'", "policy.profile", "'airport'",
                                                "border, hospital, office"]),
        # A path would make the kiosk read a local file: only profile names are documents.
        ("policy", b'{"profile": "/etc/passwd.json"}', ["policy.profile", "'/etc/passwd.json'"]),
        ("policy", b'{"profile": "hospital", "keep_fields": ["address"]}',
         ["policy.keep_fields", "'address'"]),
        ("policy", b'{"max_test_hours": "72"}', ["policy.max_test_hours", "'72'"]),
        ("policy", b'["border"]', ["'policy'", "list", "expected an object"]),
        ("policy", b"{", ["'policy'", "not valid JSON"]),
        ("watchlist", b'{"entries": []}', ["'watchlist'", "watchlist.version", "None"]),
        ("watchlist", b'{"version": 2, "issued_at": "2022-06-01T00:00:00+00:00", '
                      b'"expires_at": "2022-06-02T00:00:00+00:00", '
                      b'"salt": "00000000000000000000000000000000", "kdf": {"name": "argon2id", '
                      b'"version": 19, "time_cost": 1, "memory_kib": 12288, "parallelism": 1}, '
                      b'"entries": [{"h": "00", "until": "2022-06-09"}]}',
         ["'watchlist'", "watchlist.entries[0]", "'00'"]),
        ("watchlist", b'{"version": 2, "issued_at": "2022-06-02T00:00:00+00:00", '
                      b'"expires_at": "2022-06-01T00:00:00+00:00", "salt": "00", "entries": []}',
         ["watchlist.expires_at", "before issued_at"]),
        ("trust_list", b'{"kid": "x"}', ["'trust_list'", "expected an array"]),
        ("trust_list", b'[{"kid": "AAAA", "rawData": "not base64!"}]',
         ["'trust_list'", "none of its 1 entries", "eu_dcc"]),
        ("trust_list", b"[]", ["'trust_list'", "none of its 0 entries"]),
    ],
)
def test_documents_a_kiosk_cannot_apply_are_refused_with_key_and_value(name, body, needles):
    with pytest.raises(DocumentError) as e:
        VALIDATORS[name](body)
    for needle in needles:
        assert needle in str(e.value), str(e.value)


def test_valid_means_the_kiosks_loader_applies_it():
    body = json.dumps({"profile": "hospital", "keep_fields": ["name"]}).encode()
    validate("policy", body)
    assert Policy.from_json(body).keep_fields == ("name",)
    with pytest.raises(DocumentError, match="unknown document 'menu'"):
        validate("menu", b"{}")


@pytest.mark.parametrize("name", ["policy", "trust_list", "watchlist"])
def test_deep_nesting_and_huge_numbers_are_refused_not_crashes(name):
    with pytest.raises(DocumentError, match="nested too deeply"):
        VALIDATORS[name](b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(DocumentError):
        VALIDATORS[name](b'{"max_test_hours": ' + b"9" * 5000 + b"}")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=20,
)
KEYS = st.sampled_from(["profile", "keep_fields", "watchlist", "min_doses", "version", "salt",
                        "issued_at", "expires_at", "entries", "h", "until", "kid", "rawData"])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["policy", "trust_list", "watchlist"]),
       JSON | st.dictionaries(KEYS, JSON, max_size=6) | st.lists(st.dictionaries(KEYS, JSON)))
def test_any_json_is_applied_or_refused_with_a_document_error(name, value):
    """Nothing a central publishes makes the validator (so the kiosk's loader) raise another way."""
    try:
        VALIDATORS[name](json.dumps(value).encode())
    except DocumentError:
        pass
