"""The DCC schema check: the official schemas, per declared version, and what the spec allows.

The kiosk validates with fastjsonschema (compiled, fast on the Pi); jsonschema's draft 2020-12
validator, the reference implementation of the draft the schemas declare, is the oracle the
fast path must equal: on every official vector and on generated certificates.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cbor2
import jsonschema
import pytest
from conftest import REPO, SHARED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.domain.credentials import dcc, dcc_schema, recognise
from kiosk.domain.model import Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.trustlist import TrustList, build_json
from kiosk.testing import dcc_issue as di

SCHEMAS = REPO / "kiosk" / "domain" / "credentials" / "eu_dcc_schemas"
AT = datetime(2022, 6, 1, 10, 0, tzinfo=UTC)


def oracle(hcert) -> bool:
    """The official schema's verdict through the reference implementation, plus one-of-v/t/r."""
    version = dcc_schema.schema_for(hcert.get("ver")) if isinstance(hcert, dict) else None
    if version is None:
        return False
    schema = dcc_schema.load_schema(version)
    ok = jsonschema.Draft202012Validator(schema).is_valid(hcert)
    return ok and sum(k in hcert for k in ("v", "t", "r")) == 1


def test_vendored_versions_are_the_files_and_documented():
    files = sorted(p.stem for p in SCHEMAS.glob("*.json"))
    assert sorted(dcc_schema.VERSIONS, key=dcc_schema._key) == list(dcc_schema.VERSIONS)
    assert set(files) == set(dcc_schema.VERSIONS)
    readme = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    for version in dcc_schema.VERSIONS:
        schema = dcc_schema.load_schema(version)
        assert schema["$comment"] == f"Schema version {version}"
        assert f"| {version}.json | {version} |" in readme
    assert "Apache License" in (SCHEMAS / "LICENSE").read_text(encoding="utf-8")


def test_importing_loads_no_schema():
    """The domain does no I/O at import: the schemas are read on the first certificate."""
    code = (
        "from kiosk.domain.credentials import dcc_schema as s;"
        "assert s._validator.cache_info().currsize == 0;"
        "s.validate({'ver': '1.3.0'});"
        "assert s._validator.cache_info().currsize == 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize(
    ("declared", "used"),
    [
        ("1.0.0", "1.0.0"),
        ("1.2.1", "1.2.1"),
        ("1.3.4", "1.3.3"),  # a newer patch: the newest published schema not newer than it
        ("1.2.9", "1.2.1"),
        ("1.9.0", "1.3.3"),
        ("0.9.0", None),
        ("2.0.0", None),
        ("1.3", None),
        ("1.3.0 ", None),
        ("١.٣.٠", None),  # Arabic-Indic digits are digits to Python's \d, not to the spec
        (130, None),
        (None, None),
    ],
)
def test_version_selection(declared, used):
    assert dcc_schema.schema_for(declared) == used


def test_unknown_version_is_named_in_the_error():
    errors = dcc_schema.validate({**di.vaccination(), "ver": "2.0.0"})
    assert errors and "'2.0.0'" in errors[0] and "1.3.3" in errors[0]


def _two_doses(ver: str) -> dict:
    hcert = di.vaccination(dose=2, doses=2, date="2022-01-10")
    first = {**hcert["v"][0], "dn": 1, "dt": "2021-12-01", "ci": "URN:UVCI:01:VN:DOSE1#Y"}
    return {**hcert, "ver": ver, "v": [first, hcert["v"][0]]}


@pytest.mark.parametrize(("ver", "ok"), [("1.0.0", True), ("1.2.1", True), ("1.3.0", False)])
def test_two_entries_follow_the_declared_version(ver, ok):
    """Two vaccination entries are valid up to 1.2.1 (vectors RO/2, SK/3), not from 1.3.0."""
    hcert = _two_doses(ver)
    assert (not dcc_schema.validate(hcert)) is ok is oracle(hcert)


def test_two_groups_are_refused_in_every_version():
    """One certificate, one type (vector DGC2, schema 1.2.1): v and r side by side."""
    hcert = {**di.vaccination(), "ver": "1.2.1", "r": di.recovery()["r"]}
    assert jsonschema.Draft202012Validator(dcc_schema.load_schema("1.2.1")).is_valid(hcert)
    assert any("exactly one of v, t, r" in e for e in dcc_schema.validate(hcert))


def test_empty_manufacturer_and_date_with_time_are_valid():
    """An empty ma (vector HU/2) and a date field with a time (SG/4): format is annotation."""
    hcert = di.test_result()
    hcert["t"][0]["ma"] = ""
    assert dcc_schema.validate(hcert) == []
    rec = di.recovery()
    rec["r"][0]["fr"] = "2022-01-01T00:00:00.000Z"
    assert dcc_schema.validate(rec) == [] and oracle(rec)


@pytest.fixture(scope="module")
def ec_key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _decide(key, hcert, *, at=AT):
    dsc = di.make_dsc(key, not_before=AT - timedelta(days=300), not_after=AT + timedelta(days=300))
    cose = di.sign(
        hcert, key, dsc=dsc, issued_at=AT - timedelta(days=1), expires_at=AT + timedelta(days=30)
    )
    trust = TrustList.from_json(build_json([(dsc, "VN")]), fetched_at=at)
    # The certificate's own rules only: the border's declaration and origin rules need the
    # status and risk-level documents (tests/test_policy_rules.py).
    policy = Policy.load("border", {"watchlist": False,
                                    "rules": {"declaration": False, "origin": False}})
    checker = Checker(policy=policy, trust_list=trust)
    return checker.evaluate(recognise(di.encode(cose)), at=at)


@pytest.mark.parametrize(
    "sampled",
    [
        datetime(2022, 6, 1, 8, 0, tzinfo=UTC),  # cbor2 writes an aware datetime as tag 0
        cbor2.CBORTag(1, int(datetime(2022, 6, 1, 8, 0, tzinfo=UTC).timestamp())),
        cbor2.CBORTag(1, datetime(2022, 6, 1, 8, 0, tzinfo=UTC).timestamp() + 0.5),
    ],
    ids=["tag0", "tag1-int", "tag1-float"],
)
def test_tagged_sample_time_is_accepted_and_used(ec_key, sampled):
    """The spec lets t/sc be a CBOR tag 0 or 1 date-time (vector SE/2)."""
    credential, decision = _decide(ec_key, di.test_result(sampled=sampled))
    assert credential.checks["schema"] is True
    assert credential.fields["sampled_at"].startswith("2022-06-01T08:00:00")
    assert decision.outcome == Outcome.PASS, decision


def test_other_tags_stay_invalid(ec_key):
    """A date as CBOR tag 1004 (RFC 8943) is not what the DCC spec allows for sc."""
    credential, decision = _decide(
        ec_key, di.test_result(sampled=cbor2.CBORTag(1004, "2022-06-01"))
    )
    assert credential.checks["schema"] is False and decision.outcome != Outcome.PASS


def test_newest_entry_is_judged_and_every_uvci_listed(ec_key):
    """RO/2: dose 1/2 then dose 2/2 in one 1.0.0 certificate is a complete vaccination."""
    credential, decision = _decide(ec_key, _two_doses("1.0.0"))
    assert credential.checks["schema"] is True
    assert credential.fields["dose_number"] == 2 and decision.outcome == Outcome.PASS, decision
    assert {n for _, n in credential.identifiers} == {
        "URN:UVCI:01:VN:DOSE1#Y",
        "URN:UVCI:01:VN:TEST0000000001#X",
    }


# --- the fast path equals the reference implementation --------------------------------


def _vector_certificates() -> list[tuple[str, dict]]:
    out = []
    folders = [
        SHARED / "testdata" / "dgc-common",
        Path(__file__).parent / "data" / "dgc-member-states",
    ]
    for folder in folders:
        for path in sorted(folder.rglob("*.json")):
            vector = json.loads(path.read_text(encoding="utf-8"))
            credential = dcc.parse(vector.get("PREFIX", ""))
            if isinstance(credential.evidence, dcc.DccEvidence):
                out.append((path.name, credential.evidence.hcert))
    return out


def test_fast_path_equals_reference_on_every_vector(shared_dir):
    certificates = _vector_certificates()
    assert len(certificates) > 500
    differ = [name for name, h in certificates if (not dcc_schema.validate(h)) is not oracle(h)]
    assert differ == []


TEXT = st.one_of(
    st.text(max_size=90),
    st.sampled_from(
        ["", "ABC<DEF", "A" * 80, "A" * 81, "1979-04-14", "1979", "2021-05-25T10:27:15Z"]
    ),
)
SCALAR = st.one_of(
    TEXT, st.integers(-2, 12), st.none(), st.booleans(), st.floats(allow_nan=False), st.binary()
)
MEMBERS = ["ver", "nam", "dob", "v", "t", "r", "fn", "fnt", "gn", "gnt", "dn", "sd", "ci",
           "co", "sc", "ma", "tc", "tt", "dt", "fr", "df", "du", "is", "tg"]  # fmt: skip


@st.composite
def certificates(draw) -> dict:
    """A valid certificate of any version and type, then a few random changes to it."""
    base = draw(st.sampled_from([di.vaccination, di.test_result, di.recovery]))()
    hcert = copy.deepcopy(base)
    hcert["ver"] = draw(st.sampled_from([*dcc_schema.VERSIONS, "1.3.9", "2.0.0"]))
    if draw(st.booleans()):
        group = next(k for k in ("v", "t", "r") if k in hcert)
        hcert[group] = hcert[group] * draw(st.integers(0, 3))
    for _ in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from(["top", "nam", "entry"]))
        node = hcert
        if target == "nam" and isinstance(hcert.get("nam"), dict):
            node = hcert["nam"]
        elif target == "entry":
            group = next((hcert[k] for k in ("v", "t", "r") if isinstance(hcert.get(k), list)), [])
            node = group[0] if group and isinstance(group[0], dict) else hcert
        key = draw(st.sampled_from(MEMBERS))
        if draw(st.integers(0, 3)) == 0:
            node.pop(key, None)
        else:
            node[key] = draw(st.one_of(SCALAR, st.lists(SCALAR, max_size=2)))
    return hcert


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(certificates())
def test_fast_path_equals_reference_on_generated_certificates(hcert):
    assert (not dcc_schema.validate(hcert)) is oracle(hcert)


@settings(max_examples=150, deadline=None)
@given(
    st.recursive(
        SCALAR,
        lambda kids: (
            st.lists(kids, max_size=3)
            | st.dictionaries(st.one_of(st.sampled_from(MEMBERS), st.integers()), kids, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_any_structure_gives_a_verdict_not_an_exception(value):
    """CBOR holds what JSON cannot (integer keys, bytes): a verdict, never a crash."""
    hcert = (
        {"ver": "1.3.0", "x": value} if not isinstance(value, dict) else {"ver": "1.3.0", **value}
    )
    assert isinstance(dcc_schema.validate(hcert), list)


def test_certificate_types_only_what_the_schema_accepts():
    """dcc_schema.certificate is the one narrowing to the typed HCert: the issuer's
    certificates pass through unchanged, a broken one is None."""
    for hcert in (di.vaccination(), di.test_result(), di.recovery()):
        assert dcc_schema.certificate(hcert) is hcert
    broken = di.vaccination()
    broken["v"][0]["dn"] = "2"  # text where the schema wants a number
    assert dcc_schema.certificate(broken) is None
    assert dcc_schema.certificate(["not", "an", "object"]) is None
