"""EU DCCs signed in the test with keys made here: ES256 and PS256, EKU limits, time windows."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kiosk.domain.credentials import recognise
from kiosk.domain.credentials.base45 import b45decode, b45encode
from kiosk.domain.model import Kind, Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.trustlist import TrustList, build_json
from kiosk.testing import dcc_issue as di

AT = datetime(2022, 6, 1, 1, 0, tzinfo=UTC)
DSC_FROM, DSC_TO = datetime(2022, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def issue(
    key,
    hcert=None,
    *,
    types=(),
    iat=AT - timedelta(days=1),
    exp=AT + timedelta(days=300),
    kid_in="protected",
    dsc_from=DSC_FROM,
    dsc_to=DSC_TO,
    fetched=AT,
):
    dsc = di.make_dsc(key, not_before=dsc_from, not_after=dsc_to, types=types)
    cose = di.sign(
        hcert or di.vaccination(), key, dsc=dsc, issued_at=iat, expires_at=exp, kid_in=kid_in
    )
    trust = TrustList.from_json(build_json([(dsc, "VN")]), fetched_at=fetched)
    return di.encode(cose), trust


# The certificate's own rules: the border's declaration and origin rules, which need the
# status and risk-level documents, are tested in tests/test_policy_rules.py.
NO_STATUS_RULES = {"declaration": False, "origin": False}


def decide(payload, trust, *, policy="border", at=AT, **overrides):
    checker = Checker(
        policy=Policy.load(policy, {"watchlist": False, "rules": NO_STATUS_RULES, **overrides}),
        trust_list=trust,
    )
    return checker.evaluate(recognise(payload), at=at)


@pytest.mark.parametrize("key_name", ["ec_key", "rsa_key"])
def test_valid_certificate_passes(key_name, request):
    payload, trust = issue(request.getfixturevalue(key_name), types=("vaccination",))
    credential, decision = decide(payload, trust)
    assert decision.outcome == Outcome.PASS, decision
    assert credential.kind == Kind.EU_DCC
    assert credential.person_key == "URN:UVCI:01:VN:TEST0000000001#X"
    assert credential.display == {
        "name": "Nguyễn V*** A*",
        "id": "********01#X",
        "birth_year": "1985",
    }
    steps = ("prefix", "base45", "zlib", "cose", "signature", "schema", "key_usage", "expiry")
    assert all(credential.checks[c] is True for c in steps)
    assert credential.fields["algorithm"] == ("ES256" if key_name == "ec_key" else "PS256")


def test_kid_in_unprotected_header_is_used(ec_key):
    payload, trust = issue(ec_key, kid_in="unprotected")
    assert decide(payload, trust)[1].outcome == Outcome.PASS


def test_tampered_payload_fails_signature_and_stops(ec_key):
    payload, trust = issue(ec_key)
    message = cbor2.loads(zlib.decompress(b45decode(payload[4:])))
    protected, unprotected, body, signature = message.value
    claims = cbor2.loads(body)
    claims[-260][1]["v"][0]["dn"] = 3
    forged = cbor2.dumps(
        cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(claims), signature])
    )
    credential, decision = decide(di.encode(forged), trust)
    assert credential.checks["signature"] is False
    assert decision.outcome == Outcome.STOP
    assert "dcc_signature_invalid" in decision.reasons


def test_signer_not_in_trust_list_is_checked(ec_key):
    payload, _ = issue(ec_key)
    _, other = issue(ec.generate_private_key(ec.SECP256R1()))
    credential, decision = decide(payload, other)
    assert credential.checks["signer"] is False and credential.checks["signature"] is False
    assert decision == decision.__class__(Outcome.CHECK, ("dcc_signer_unknown",))


@pytest.mark.parametrize(
    ("types", "hcert", "ok"),
    [
        (("vaccination",), di.vaccination(), True),
        (("test",), di.vaccination(), False),
        (("recovery",), di.test_result(), False),
        (("test", "recovery"), di.recovery(), True),
        ((), di.test_result(), True),  # no DCC OID: may sign every type
    ],
)
def test_extended_key_usage_limits_types(ec_key, types, hcert, ok):
    payload, trust = issue(ec_key, hcert, types=types)
    credential, decision = decide(payload, trust, policy="hospital")
    assert credential.checks["key_usage"] is ok
    assert (decision.outcome == Outcome.STOP) is (not ok)
    assert ("dcc_key_usage" in decision.reasons) is (not ok)


def test_validity_window_is_inclusive(ec_key):
    iat, exp = AT - timedelta(days=1), AT + timedelta(days=1)
    payload, trust = issue(ec_key, iat=iat, exp=exp, fetched=iat)
    for at, ok, reason in [
        (iat, True, None),
        (exp, True, None),
        (iat - timedelta(seconds=1), False, "dcc_not_yet_valid"),
        (exp + timedelta(seconds=1), False, "dcc_expired"),
    ]:
        credential, decision = decide(payload, trust, at=at, policy="hospital")
        assert credential.checks["expiry"] is ok, at
        assert (reason in decision.reasons) if reason else decision.outcome == Outcome.PASS


def test_dsc_outside_its_validity(ec_key):
    payload, trust = issue(ec_key, dsc_to=AT - timedelta(days=1))
    credential, decision = decide(payload, trust, policy="hospital")
    assert credential.checks["dsc_validity"] is False
    assert decision.outcome == Outcome.CHECK and "dcc_signer_expired" in decision.reasons


def test_missing_and_stale_trust_list_never_pass(ec_key):
    payload, trust = issue(ec_key, fetched=AT - timedelta(hours=73))
    credential, decision = decide(payload, None)
    assert credential.checks["signature"] is None
    assert decision.outcome == Outcome.CHECK and "trust_list_missing" in decision.reasons
    credential, decision = decide(payload, trust)
    assert credential.checks["signature"] is True
    assert decision == decision.__class__(Outcome.CHECK, ("trust_list_stale",))
    assert decide(payload, trust, trust_list_max_age_hours=96)[1].outcome == Outcome.PASS
    undated = TrustList(list(trust))
    assert "trust_list_stale" in decide(payload, undated)[1].reasons


def test_algorithm_must_match_key(ec_key, rsa_key):
    """An RSA signature under an EC DSC's kid cannot verify (no algorithm confusion)."""
    dsc = di.make_dsc(ec_key, not_before=DSC_FROM, not_after=DSC_TO)
    cose = di.sign(di.vaccination(), rsa_key, dsc=dsc, issued_at=AT, expires_at=AT)
    trust = TrustList.from_json(build_json([(dsc, "VN")]), fetched_at=AT)
    assert decide(di.encode(cose), trust)[0].checks["signature"] is False


@pytest.mark.parametrize(
    ("hcert", "overrides", "reasons", "outcome"),
    [
        (di.vaccination(dose=1, doses=2), {}, ("vaccination_incomplete",), Outcome.CHECK),
        (di.vaccination(date="2022-05-25"), {}, ("vaccination_too_recent",), Outcome.CHECK),
        (
            di.vaccination(date="2021-01-01"),
            {"max_days_since_last_dose": 270},
            ("vaccination_too_old",),
            Outcome.CHECK,
        ),
        (di.vaccination(dose=1, doses=1), {"min_doses": 1}, (), Outcome.PASS),
        (di.test_result(sampled="2022-05-31T12:00:00Z"), {}, (), Outcome.PASS),
        (
            di.test_result(sampled="2022-05-31T12:00:00Z"),
            {"max_test_hours": 6},
            ("test_too_old",),
            Outcome.CHECK,
        ),
        (di.test_result(result="260373001"), {}, ("test_positive",), Outcome.STOP),
        (di.recovery(), {}, (), Outcome.PASS),
        (di.recovery(), {"max_recovery_days": 30}, ("recovery_not_valid",), Outcome.CHECK),
        (
            di.recovery(),
            {"certificate_types": ["vaccination"]},
            ("certificate_type_not_accepted",),
            Outcome.CHECK,
        ),
    ],
)
def test_certificate_rules(ec_key, hcert, overrides, reasons, outcome):
    payload, trust = issue(ec_key, hcert)
    decision = decide(payload, trust, **overrides)[1]
    assert decision.reasons == reasons and decision.outcome == outcome


def test_positive_test_stops_even_where_no_certificate_is_required(ec_key):
    payload, trust = issue(ec_key, di.test_result(result="260373001"))
    assert decide(payload, trust, policy="hospital")[1].outcome == Outcome.STOP


def test_schema_violation_is_reported(ec_key):
    hcert = di.vaccination()
    del hcert["nam"]["fnt"]
    payload, trust = issue(ec_key, hcert)
    credential, decision = decide(payload, trust)
    assert credential.checks["schema"] is False and credential.checks["signature"] is True
    assert "dcc_schema_invalid" in decision.reasons and decision.outcome == Outcome.CHECK


def test_zlib_bomb_is_refused():
    bomb = "HC1:" + b45encode(zlib.compress(b"\0" * 1_000_000))
    c = recognise(bomb)
    assert c.checks["zlib"] is False and c.problems == ("dcc_zlib_invalid",)


def test_base45_round_trip_and_rfc_examples():
    assert b45encode(b"AB") == "BB8"
    assert b45encode(b"Hello!!") == "%69 VD92EX0"
    assert b45decode("QED8WEX0") == b"ietf!"
    for bad in ("GGW", "A", ":::"):
        with pytest.raises(ValueError):
            b45decode(bad)
