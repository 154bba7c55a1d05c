"""The rules a province writes, one at a time, and the one validator for TOML and JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from policy_people import (
    AT,
    CCCD,
    DECLARED,
    HIGH,
    ISSUED,
    LOW,
    QID,
    TRUST,
    VACCINATED,
    cccd,
    dcc_vaccinated,
    pc_covid,
)

from kiosk.domain.credentials import recognise
from kiosk.domain.model import Outcome
from kiosk.domain.policy import Checker, Policy
from kiosk.domain.reasons import REASONS
from kiosk.domain.status import HealthStatus, RiskLevels, StatusList
from kiosk.errors import ConfigError

NOTHING = {"declaration": False, "origin": False, "vaccination": False, "test": False,
           "recovery": False}


def only(**rules):
    """A hospital policy (no rules) with just ``rules`` switched on."""
    return Policy.load("hospital", {"watchlist": False, "rules": {**NOTHING, **rules}})


def status_of(facts, numbers=(CCCD,), *, issued=ISSUED, expires=None):
    people = [(numbers, facts)] if facts is not None else []
    return StatusList.from_json(StatusList.build(people, issued_at=issued, expires_at=expires))


RISK = RiskLevels.from_json(RiskLevels.build({LOW: 1, HIGH: 3, "00010": 4}, issued_at=ISSUED))


def explain(policy, facts=None, *, code=None, status=True, risk=RISK, direction="in", at=AT,
            **status_kw):
    checker = Checker(policy=policy, trust_list=TRUST,
                      status=status_of(facts, **status_kw) if status else None, risk_levels=risk)
    return checker.explain(recognise(code or cccd()), at=at, direction=direction)


def reasons(*args, **kw):
    return explain(*args, **kw).decision.reasons


# -- declaration -----------------------------------------------------------------------------

DECLARATION = {"use": "required", "valid_days": 3}


def test_declaration_within_its_days_passes_and_older_is_expired():
    policy = only(declaration=DECLARATION)
    assert reasons(policy, DECLARED) == ()
    old = replace(DECLARED, declared_at=AT - timedelta(days=3, minutes=1))
    assert reasons(policy, old) == ("declaration_expired",)
    assert reasons(only(declaration={**DECLARATION, "valid_days": 7}), old) == ()


def test_the_platforms_own_end_date_ends_a_declaration():
    policy = only(declaration=DECLARATION)
    ended = replace(DECLARED, declared_until=date(2022, 5, 31))
    assert reasons(policy, ended) == ("declaration_expired",)
    assert reasons(policy, HealthStatus(declared_until=date(2022, 6, 1))) == ()


def test_no_declaration_no_document_or_a_stale_document_are_each_named():
    policy = only(declaration=DECLARATION)
    assert reasons(policy, None) == ("declaration_missing",)
    assert reasons(policy, None, status=False) == ("status_missing",)
    stale = {"issued": AT - timedelta(days=3), "expires": AT - timedelta(days=2)}
    # Not found in a stale document: they may have declared since.
    assert reasons(policy, None, **stale) == ("status_stale",)
    # Found: a declaration made yesterday is good whatever the document's age.
    recent = replace(DECLARED, declared_at=AT - timedelta(days=2, hours=12))
    assert reasons(policy, recent, **stale) == ()


# -- vaccination -----------------------------------------------------------------------------

VACCINATION = {"use": "required", "min_doses": 2, "min_days_since_last": 14}


@pytest.mark.parametrize(("facts", "expected"), [
    (HealthStatus(**VACCINATED), ()),
    (HealthStatus(doses=1, last_dose=date(2022, 3, 1)), ("vaccination_incomplete",)),
    (HealthStatus(doses=3, last_dose=date(2022, 5, 25)), ("vaccination_too_recent",)),
    (DECLARED, ("vaccination_missing",)),
    (None, ("vaccination_missing",)),
])
def test_vaccination_doses_and_days_since_the_last(facts, expected):
    assert reasons(only(vaccination=VACCINATION), facts) == expected


def test_vaccination_too_long_ago_when_the_province_sets_a_limit():
    policy = only(vaccination={**VACCINATION, "max_days_since_last": 60})
    assert reasons(policy, HealthStatus(**VACCINATED)) == ("vaccination_too_old",)


def test_a_verified_certificate_is_a_vaccination_proof_too():
    policy = only(vaccination=VACCINATION)
    result = explain(policy, None, code=dcc_vaccinated())
    assert result.decision.outcome is Outcome.PASS
    assert [(r.rule, r.result, r.source) for r in result.rules] == [
        ("vaccination", "met", "certificate")]


# -- age exemptions ---------------------------------------------------------------------------


def test_under_the_age_is_exempt_and_an_unknown_age_is_a_reason():
    policy = only(vaccination={**VACCINATION, "exempt_under_age": 18})
    child = cccd("001310012345", "02022010")
    assert reasons(policy, None, code=child, numbers=("001310012345",)) == ()
    assert reasons(policy, None) == ("vaccination_missing",)  # an adult of 1985
    # The year only, and 17 or 18 that year: the exemption cannot be judged.
    assert reasons(policy, None, code=pc_covid("2004-**-**"), numbers=(QID,)) == (
        "vaccination_missing", "age_unknown")
    # The same person met the rule anyway: the age does not matter.
    assert reasons(policy, HealthStatus(**VACCINATED), code=pc_covid("2004-**-**"),
                   numbers=(QID,)) == ()
    # The record's birth year helps when the code has none.
    masked = pc_covid("****-**-**")
    assert reasons(policy, HealthStatus(birth_year=2012, **VACCINATED), code=masked,
                   numbers=(QID,)) == ()
    assert reasons(policy, replace(DECLARED, birth_year=2012), code=masked,
                   numbers=(QID,)) == ()


# -- negative test ---------------------------------------------------------------------------

TEST = {"use": "required", "max_hours": {"pcr": 72, "rapid_antigen": 24}}


@pytest.mark.parametrize(("test_type", "hours", "expected"), [
    ("pcr", 30, ()),
    ("pcr", 73, ("test_too_old",)),
    ("rapid_antigen", 23, ()),
    ("rapid_antigen", 30, ("test_too_old",)),
    ("pcr", -1, ("test_in_future",)),
])
def test_a_negative_test_within_the_hours_of_its_type(test_type, hours, expected):
    facts = HealthStatus(test_type=test_type, tested_at=AT - timedelta(hours=hours))
    assert reasons(only(test=TEST), facts) == expected


def test_a_test_type_the_province_does_not_list_does_not_count():
    facts = HealthStatus(test_type="rapid_antigen", tested_at=AT - timedelta(hours=1))
    assert reasons(only(test={**TEST, "max_hours": {"pcr": 72}}), facts) == (
        "test_type_not_accepted",)


# -- recovery --------------------------------------------------------------------------------


def test_recovery_within_the_days():
    policy = only(recovery={"use": "required", "within_days": 90})
    assert reasons(policy, HealthStatus(recovered_since=date(2022, 4, 1))) == ()
    assert reasons(policy, HealthStatus(recovered_since=date(2022, 1, 1))) == (
        "recovery_not_valid",)
    assert reasons(policy, DECLARED) == ("recovery_missing",)


# -- the proofs together ---------------------------------------------------------------------


def test_one_proof_is_enough_and_none_at_all_is_one_reason():
    policy = only(vaccination={**VACCINATION, "use": "proof"}, test={**TEST, "use": "proof"},
                  recovery={"use": "proof", "within_days": 180})
    pcr = HealthStatus(test_type="pcr", tested_at=AT - timedelta(hours=5))
    result = explain(policy, pcr)
    assert result.decision.outcome is Outcome.PASS
    assert [(r.rule, r.result) for r in result.rules][-1] == ("proof", "met")
    assert reasons(policy, DECLARED) == ("health_proof_missing",)
    # What failed is said when there is something on record.
    assert reasons(policy, HealthStatus(doses=1, last_dose=date(2022, 3, 1))) == (
        "vaccination_incomplete",)
    assert reasons(policy, None, status=False) == ("status_missing",)


def test_a_required_test_on_top_of_a_proof_for_people_from_high_risk_communes():
    policy = only(vaccination={**VACCINATION, "use": "proof"},
                  test={**TEST, "from_level": 3})
    from_low = HealthStatus(origin=LOW, **VACCINATED)
    from_high = HealthStatus(origin=HIGH, **VACCINATED)
    assert reasons(policy, from_low) == ()
    assert reasons(policy, from_high) == ("test_missing",)
    # Origin unknown: the stricter rule applies.
    assert reasons(policy, HealthStatus(**VACCINATED)) == ("test_missing",)


# -- origin ----------------------------------------------------------------------------------


def test_origin_risk_level_checks_or_stops():
    policy = only(origin={"use": "required", "check_from_level": 3, "stop_from_level": 4})
    assert reasons(policy, DECLARED) == ()
    assert reasons(policy, replace(DECLARED, origin=HIGH)) == ("origin_risk_high",)
    stopped = explain(policy, replace(DECLARED, origin="00010")).decision
    assert (stopped.outcome, stopped.reasons) == (Outcome.STOP, ("origin_risk_stop",))
    assert reasons(policy, replace(DECLARED, origin="99999")) == ("origin_level_unknown",)
    assert reasons(policy, HealthStatus(**VACCINATED)) == ("origin_unknown",)
    assert reasons(policy, DECLARED, risk=None) == ("risk_list_missing",)


def test_a_commune_not_listed_takes_the_default_level():
    policy = only(origin={"use": "required", "check_from_level": 3})
    risk = RiskLevels.from_json(RiskLevels.build({HIGH: 3}, default_level=1, issued_at=ISSUED))
    assert reasons(policy, replace(DECLARED, origin="99999"), risk=risk) == ()


# -- directions ------------------------------------------------------------------------------


def test_rules_differ_by_direction():
    policy = only(declaration=DECLARATION,
                  vaccination={**VACCINATION, "directions": ["in"]})
    facts = replace(DECLARED, doses=1, last_dose=date(2022, 3, 1))
    assert reasons(policy, facts, direction="in") == ("vaccination_incomplete",)
    result = explain(policy, facts, direction="out")
    assert result.decision.outcome is Outcome.PASS
    assert ("vaccination", "not_applied") in [(r.rule, r.result) for r in result.rules]


# -- matching by every identifier, what is shown ---------------------------------------------


def test_a_person_is_found_by_any_number_and_two_records_are_merged():
    policy = only(declaration=DECLARATION, vaccination=VACCINATION)
    code = f"{CCCD}|TRAN THI BICH NGOC|1985-07-14|0|{QID}|"  # PC-Covid with the CCCD number
    body = StatusList.build([((QID,), DECLARED), ((CCCD,), HealthStatus(**VACCINATED))],
                            issued_at=ISSUED)
    checker = Checker(policy=policy, status=StatusList.from_json(body))
    result = checker.explain(recognise(code), at=AT)
    assert result.decision.outcome is Outcome.PASS
    assert result.credential.checks["status"] is True
    assert result.decision.found == {
        "declared_on": "2022-05-31", "doses": 2, "last_dose_month": "2022-03"}


def test_what_was_found_is_shown_with_the_decision_but_not_when_stopped():
    result = explain(only(declaration=DECLARATION), DECLARED)
    assert "status" not in result.credential.display  # the store keeps display fields only
    assert result.decision.found == {"declared_on": "2022-05-31"}
    assert explain(only(declaration=DECLARATION), None).decision.found == {}
    assert explain(only(), DECLARED).decision.found is None  # no rule read it
    stop = only(origin={"use": "required", "stop_from_level": 4})
    assert explain(stop, replace(DECLARED, origin="00010")).decision.found is None


# -- one validator ---------------------------------------------------------------------------


@pytest.mark.parametrize(("overrides", "needle"), [
    ({"rules": {"vacination": {}}}, r"policy\.rules\.vacination is not a rule; rules: "),
    ({"rules": {"test": {"max_hour": 3}}},
     r"policy\.rules\.test\.max_hour is not a setting of this rule; valid keys: use, "),
    ({"rules": {"test": {"max_hours": {"pcr": 0}}}},
     r"policy\.rules\.test\.max_hours\.pcr is 0; expected a whole number 1\.\.720"),
    ({"rules": {"test": {"max_hours": {"saliva": 4}}}},
     r"policy\.rules\.test\.max_hours has the test type 'saliva'"),
    ({"rules": {"declaration": {"use": "proof"}}},
     r"policy\.rules\.declaration\.use is 'proof'; choose one of off, required"),
    ({"rules": {"vaccination": {"directions": ["north"]}}},
     r"policy\.rules\.vaccination\.directions has 'north'"),
    ({"rules": {"vaccination": {"directions": []}}}, r"a rule for no direction"),
    ({"rules": {"vaccination": {"exempt_under_age": -1}}},
     r"policy\.rules\.vaccination\.exempt_under_age is -1"),
    ({"rules": {"origin": True}}, r"policy\.rules\.origin is True; expected a table"),
    ({"rules": ["declaration"]}, r"policy\.rules is \['declaration'\]"),
    ({"max_test_hours": 48, "rules": {"test": {"max_hours": {"pcr": 4}}}},
     r"policy\.max_test_hours and policy\.rules\.test\.max_hours are both set"),
    ({"max_tests": 1}, r"policy\.max_tests is not a policy setting"),
])
def test_a_bad_rule_is_refused_naming_the_key_and_showing_the_value(overrides, needle):
    with pytest.raises(ConfigError, match=needle):
        Policy.load("border", overrides)


def test_toml_in_config_and_json_from_the_central_give_the_same_policy(tmp_path: Path):
    toml = tmp_path / "kiosk.toml"
    toml.write_text('[policy]\nprofile = "hospital"\n'
                    '[policy.rules.declaration]\nuse = "required"\nvalid_days = 5\n'
                    '[policy.rules.test]\nuse = "required"\ndirections = ["in"]\n'
                    'max_hours = { pcr = 48 }\n', encoding="utf-8")
    body = json.dumps({"profile": "hospital", "rules": {
        "declaration": {"use": "required", "valid_days": 5},
        "test": {"use": "required", "directions": ["in"], "max_hours": {"pcr": 48}}}})
    assert Policy.load(str(toml)) == Policy.from_json(body)
    with pytest.raises(ConfigError, match=r"policy document: policy\.rules\.test\.use is 'x'"):
        Policy.from_json('{"profile": "hospital", "rules": {"test": {"use": "x"}}}')


def test_a_rule_table_is_laid_over_the_profiles_rule_key_by_key():
    policy = Policy.load("border", {"rules": {"vaccination": {"min_doses": 3}}})
    assert policy.rules.vaccination.min_doses == 3
    assert policy.rules.vaccination.exempt_under_age == 18  # the border's, kept
    assert Policy.load("border", {"rules": {"origin": False}}).rules.origin.use == "off"


def test_every_rule_reason_has_an_english_message():
    codes = {"declaration_missing", "declaration_expired", "origin_unknown", "origin_risk_high",
             "origin_risk_stop", "origin_level_unknown", "health_proof_missing",
             "vaccination_missing", "test_missing", "test_type_not_accepted", "recovery_missing",
             "age_unknown", "status_missing", "status_stale", "risk_list_missing",
             "risk_list_stale"}
    assert codes <= REASONS.keys()
