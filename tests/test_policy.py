"""Policy profiles, loading and validation, decisions for ID cards, reasons, overrides."""

from __future__ import annotations

import ast
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kiosk.domain.credentials import recognise
from kiosk.domain.model import Credential, Decision, Kind, Outcome
from kiosk.domain.policy import PROFILES, Checker, Override, Policy
from kiosk.domain.reasons import PRIVATE, REASONS, WAIT_FOR_OFFICER
from kiosk.errors import ConfigError, KioskError

AT = datetime(2022, 6, 1, 8, 0, tzinfo=UTC)
CCCD = "001185012345||Trần Thị Bích Ngọc|14071985|Nữ|Hà Nội|10052021"
BHYT = (
    "DN4010123456789|"
    + "Lê An".encode().hex()
    + "|02/03/1990|2|"
    + b"HN".hex()
    + "|01 - 043|01/01/2022|{to}|15/12/2021$"
)


def decide(payload, policy="hospital", **overrides):
    checker = Checker(policy=Policy.load(policy, {"watchlist": False, **overrides}))
    return checker.decide(recognise(payload), at=AT)


def test_profiles_shipped():
    assert set(PROFILES) == {"border", "hospital", "office"}
    assert Policy.load("border") == Policy()
    assert Policy.load("office").keep_fields == ("name",)


@pytest.mark.parametrize(
    ("policy", "overrides", "expected"),
    [
        # No status or risk-level document yet: the border's rules cannot be evaluated.
        ("border", {}, Decision(Outcome.CHECK, ("status_missing", "risk_list_missing"))),
        ("border", {"rules": {"origin": False}}, Decision(Outcome.CHECK, ("status_missing",))),
        ("hospital", {}, Decision(Outcome.PASS, ())),
        ("hospital", {"unsigned_id": "check"}, Decision(Outcome.CHECK, ("unsigned_id_only",))),
        (
            "hospital",
            {"accepted_kinds": ["eu_dcc"]},
            Decision(Outcome.CHECK, ("kind_not_accepted",)),
        ),
    ],
)
def test_id_card_decisions(policy, overrides, expected):
    assert decide(CCCD, policy, **overrides) == expected


def test_cross_check_problem_gives_check():
    forged = CCCD.replace("001185", "001186")
    assert decide(forged) == Decision(Outcome.CHECK, ("cccd_birth_year_mismatch",))


def test_bhyt_expiry_is_a_reason():
    assert decide(BHYT.format(to="31/12/2022")) == Decision(Outcome.PASS, ())
    assert decide(BHYT.format(to="31/05/2022")) == Decision(Outcome.CHECK, ("bhyt_expired",))


def test_not_a_person_and_unknown():
    assert decide("https://tokhaiyte.vn/x") == Decision(Outcome.CHECK, ("not_a_person",))
    assert decide("hello") == Decision(Outcome.CHECK, ("unrecognised",))


def test_decide_never_raises_on_odd_credentials():
    odd = Credential(kind=Kind.BHYT, person_key="x", fields={"valid_to": 5})
    naive = datetime(2022, 6, 1)
    checker = Checker(policy=Policy.load("hospital"))
    assert checker.decide(odd, at=naive).outcome in Outcome


def test_overrides_and_files(tmp_path: Path):
    # The flat keys of policies written before the rules still load, onto the rules.
    p = Policy.load("border", {"max_test_hours": 48, "certificate_types": ["test", "test"]})
    assert p.rules.test.max_hours == (("pcr", 48), ("rapid_antigen", 48))
    assert p.certificate_types == ("test",) and p.rules.vaccination.use == "off"
    toml = tmp_path / "kiosk.toml"
    toml.write_text('[policy]\nprofile = "hospital"\nunsigned_id = "check"\n', encoding="utf-8")
    assert Policy.load(str(toml)).unsigned_id == "check"
    doc = tmp_path / "policy.json"
    doc.write_text(json.dumps({"profile": "office", "max_test_hours": 24}), encoding="utf-8")
    loaded = Policy.load(str(doc), {"max_test_hours": 12})
    assert (loaded.profile, loaded.rules.test.hours_for("pcr")) == ("office", 12)


@pytest.mark.parametrize(
    ("name", "overrides", "needle"),
    [
        ("airport", None, "neither a profile"),
        (
            "border",
            {"max_test_hours": 0},
            r"policy\.max_test_hours is 0; expected a whole number 1\.\.720",
        ),
        ("border", {"max_test_hours": "72"}, r"policy\.max_test_hours is '72'"),
        (
            "border",
            {"unsigned_id": "yes"},
            r"policy\.unsigned_id is 'yes'; choose one of pass, check",
        ),
        (
            "border",
            {"accepted_kinds": ["cccd", "passport"]},
            r"policy\.accepted_kinds has 'passport'",
        ),
        (
            "border",
            {"accepted_kinds": "cccd"},
            r"policy\.accepted_kinds is 'cccd'; expected a list",
        ),
        ("border", {"watchlist": 1}, r"policy\.watchlist is 1; expected true or false"),
        ("border", {"max_tests": 1}, r"policy\.max_tests is not a policy setting"),
        ("border", {"profile": "office"}, r"policy\.profile override 'office'"),
    ],
)
def test_bad_values_name_key_value_and_choices(name, overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        Policy.load(name, overrides)


def test_bad_policy_files(tmp_path: Path):
    bad = tmp_path / "p.json"
    bad.write_text('{"profile": "zoo"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="policy.profile .* is 'zoo'; choose one of border"):
        Policy.load(str(bad))
    with pytest.raises(ConfigError, match="cannot read the policy file"):
        Policy.load(str(tmp_path / "missing.toml"))


def test_override_keeps_the_original_decision():
    checker = Checker(policy=Policy.load("border"))
    original = checker.decide(recognise(CCCD), at=AT)
    override = Override(original, Outcome.PASS, " officer_documents_checked ", officer="cb-07")
    assert override.decision == Decision(Outcome.PASS, ("officer_override",))
    assert override.record_fields("c-1") == {"override_of": "c-1", "original_decision": "check",
                                             "override_reason": "officer_documents_checked"}
    with pytest.raises(KioskError, match="needs a reason"):
        Override(original, Outcome.PASS, "  ")


def test_every_reason_code_in_the_sources_has_messages():
    """Collect every snake_case string literal that is a reason code and look it up."""
    root = Path(__file__).resolve().parents[1] / "kiosk" / "domain"
    used: set[str] = set()
    for path in [*root.glob("credentials/*.py"), root / "policy.py", root / "status.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                v = node.value
                if v.startswith(
                    (
                        "cccd_",
                        "bhyt_",
                        "pc_covid_",
                        "dcc_",
                        "trust_list_",
                        "watchlist",
                        "vaccination_",
                        "test_",
                        "recovery_",
                        "text_",
                        "declaration_",
                        "origin_",
                        "status_",
                        "risk_list_",
                        "health_proof",
                        "age_",
                    )
                ):
                    used.add(v)
    used |= {f"dcc_{s}_invalid" for s in ("prefix", "base45", "zlib", "cose", "cwt", "schema")}
    used -= {
        "test_result",
        "test_type",
        "test_name",
        "test_device",
        "test_centre",
        "trust_list_max_age_hours",
        "dcc_",
    }  # field and setting names, not reasons
    missing = sorted(code for code in used if code not in REASONS)
    assert not missing


def _codes_put_into_decisions(tree: ast.AST) -> set[str]:
    """snake_case literals a module puts where reason codes go: the reasons of a
    ``Decision(...)``, or appended / added to a list named ``...reasons`` or ``...problems``
    (the self-test's ``problems`` are sentences, not codes)."""
    def literals(node: ast.AST | None) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value} if re.fullmatch(r"[a-z][a-z0-9_]*", node.value) else set()
        if isinstance(node, ast.Tuple | ast.List):
            return {v for e in node.elts for v in literals(e)}
        return set()

    def is_codes(target: ast.AST) -> bool:
        name = target.id if isinstance(target, ast.Name) else \
            target.attr if isinstance(target, ast.Attribute) else ""
        return name.endswith(("reasons", "problems"))

    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "Decision" and len(node.args) > 1:
                found |= literals(node.args[1])
            elif isinstance(func, ast.Attribute) and func.attr in ("append", "extend") \
                    and is_codes(func.value) and node.args:
                found |= literals(node.args[0])
        elif isinstance(node, ast.AugAssign) and is_codes(node.target):
            found |= literals(node.value)
    return found


def test_every_reason_code_any_layer_decides_with_has_a_message():
    """Reason codes added outside the domain (the scan loop's ``not_recorded``) reach the
    screen too; without a message the citizen would read the raw code."""
    root = Path(__file__).resolve().parents[1] / "kiosk"
    used: set[str] = set()
    for path in root.rglob("*.py"):
        used |= _codes_put_into_decisions(ast.parse(path.read_text(encoding="utf-8")))
    assert {"not_a_person", "internal_error", "watchlist", "officer_override"} <= used  # found
    assert sorted(code for code in used if code not in REASONS) == []


def test_messages_are_short_english_and_private_ones_generic():
    # The Vietnamese of each is checked with the catalogues (tests/test_ui_text.py).
    for code, en in REASONS.items():
        assert en and en.isascii() and len(en) <= 80, code
    for code in PRIVATE:
        assert REASONS[code] == WAIT_FOR_OFFICER
