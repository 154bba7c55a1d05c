"""Checkpoint policy and the decision maker: pass, check (an officer must look) or stop.

A :class:`Policy` is a named profile (``border``, ``hospital``, ``office``) overlaid by
the ``[policy]`` table of the kiosk config or a down-synced policy document, both read by
the one validator here.  Its :class:`Rules` are what a province writes: a movement
declaration, the risk level of where the person comes from, and the health proofs
(vaccination, negative test, recovery), each by direction, with age exemptions.
:class:`Checker` applies it to a recognised credential, with the trust list for EU DCC
signatures, the quarantine watchlist, the status document (what the national platforms know
about the person) and the commune risk levels.  Missing or stale documents give ``check``
with that reason: never a silent pass, never a crash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.domain.credentials.dcc import DccEvidence, verify
from kiosk.domain.model import DIRECTIONS, PERSON_KINDS, Credential, Decision, Kind, Outcome
from kiosk.domain.status import TEST_TYPES, HealthStatus, RiskLevels, StatusList
from kiosk.domain.trustlist import TrustList
from kiosk.domain.watchlist import Watchlist, local_date
from kiosk.errors import ConfigError, KioskError

log = logging.getLogger(__name__)

ID_KINDS = frozenset({Kind.CCCD, Kind.PC_COVID, Kind.BHYT})
CERTIFICATE_TYPES = ("vaccination", "test", "recovery")
DISPLAY_FIELDS = ("name", "id", "birth_year")
UNSIGNED_ID = ("pass", "check")
TEST_NEGATIVE = "260415000"  # SNOMED CT "Not detected"
TEST_POSITIVE = "260373001"  # SNOMED CT "Detected"
# EU DCC test types (value set covid-19-lab-test-type) in the status document's words.
DCC_TEST_TYPES = {"LP6464-4": "pcr", "LP217198-3": "rapid_antigen"}
CLOCK_SLACK = timedelta(minutes=5)

# Reasons that mean "do not let this person through" rather than "an officer must look".
STOP_REASONS = frozenset({"watchlist", "test_positive", "dcc_signature_invalid", "dcc_key_usage",
                          "origin_risk_stop"})


# -- the rules a province writes -----------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """What every rule has: whether it is used, for which directions, who is exempt.

    ``use``: ``off``; ``required`` (must be met on its own); for the health proofs
    (vaccination, test, recovery) also ``proof``: one met proof of those marked ``proof`` is
    enough.  ``exempt_under_age``: people certainly younger (by the birth date on the code,
    else the status record's birth year) are exempt; 0 = nobody.  ``from_level``: the rule
    applies only to people coming from a commune of this risk level or above (an unknown
    origin: it applies); 0 = everyone.
    """

    use: str = "off"
    directions: tuple[str, ...] = DIRECTIONS
    exempt_under_age: int = 0
    from_level: int = 0


@dataclass(frozen=True)
class DeclarationRule(Rule):
    """A health and movement declaration made within ``valid_days`` (and not past the
    platform's own ``declared_until``)."""

    valid_days: int = 3


@dataclass(frozen=True)
class OriginRule(Rule):
    """The risk level of the commune the person declared coming from: at ``check_from_level``
    or above an officer checks, at ``stop_from_level`` or above the person is stopped (0: never)."""

    check_from_level: int = 3
    stop_from_level: int = 0


@dataclass(frozen=True)
class VaccinationRule(Rule):
    min_doses: int = 2
    min_days_since_last: int = 14
    max_days_since_last: int = 0  # 0: no limit


@dataclass(frozen=True)
class NegativeTestRule(Rule):
    """A negative test within ``max_hours[type]`` hours; a type not listed does not count."""

    max_hours: tuple[tuple[str, int], ...] = (("pcr", 72), ("rapid_antigen", 72))

    def hours_for(self, test_type: str | None) -> int | None:
        return dict(self.max_hours).get(test_type or "")


@dataclass(frozen=True)
class RecoveryRule(Rule):
    within_days: int = 180


@dataclass(frozen=True)
class Rules:
    """The rules of a policy, in the order they are evaluated."""

    declaration: DeclarationRule = DeclarationRule()
    origin: OriginRule = OriginRule()
    vaccination: VaccinationRule = VaccinationRule()
    test: NegativeTestRule = NegativeTestRule()
    recovery: RecoveryRule = RecoveryRule()

    def in_force(self) -> list[tuple[str, Rule]]:
        return [(name, rule) for name in RULE_NAMES
                if (rule := getattr(self, name)).use != "off"]


RULE_NAMES = ("declaration", "origin", "vaccination", "test", "recovery")
PROOF_RULES = ("vaccination", "test", "recovery")
USES = {"declaration": ("off", "required"), "origin": ("off", "required"),
        "vaccination": ("off", "proof", "required"), "test": ("off", "proof", "required"),
        "recovery": ("off", "proof", "required")}
RULE_TYPES: dict[str, type[Rule]] = {
    "declaration": DeclarationRule, "origin": OriginRule, "vaccination": VaccinationRule,
    "test": NegativeTestRule, "recovery": RecoveryRule}


@dataclass(frozen=True)
class HealthQuestion:
    """A yes/no question of the declaration form, in both screen languages."""

    id: str
    vi: str
    en: str


MAX_QUESTIONS = 4  # one page of the form, each answer button gloves-sized
MAX_QUESTION_TEXT = 120
QUESTION_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")


@dataclass(frozen=True)
class Policy:
    """What a checkpoint accepts.  Defaults are the ``border`` profile."""

    profile: str = "border"
    # Credential kinds accepted as identity at this checkpoint.
    accepted_kinds: tuple[str, ...] = PERSON_KINDS
    # What an ID card (no signature to verify) gives on its own: "check" sends every ID-card
    # holder to an officer whatever the rules say.
    unsigned_id: str = "pass"
    # Consult the quarantine watchlist; a missing list then gives ``watchlist_missing``.
    watchlist: bool = True
    trust_list_max_age_hours: int = 72
    # Display fields the store may keep (data minimisation).
    keep_fields: tuple[str, ...] = DISPLAY_FIELDS
    rules: Rules = field(default_factory=lambda: BORDER_RULES)
    # The yes/no health questions an officer asks a person declared on the kiosk's form
    # (kiosk.domain.declaration); a "yes" to any gives check (health_answer_yes).
    health_questions: tuple[HealthQuestion, ...] = ()

    @property
    def trust_list_max_age(self) -> timedelta:
        return timedelta(hours=self.trust_list_max_age_hours)

    @property
    def require_certificate(self) -> bool:
        """Whether a health proof (vaccination, test or recovery) is asked for."""
        return any(getattr(self.rules, name).use != "off" for name in PROOF_RULES)

    @property
    def certificate_types(self) -> tuple[str, ...]:
        return tuple(n for n in PROOF_RULES if getattr(self.rules, n).use != "off")

    @property
    def needs_status(self) -> bool:
        """Whether any rule reads the status document (the status strip says so)."""
        return bool(self.rules.in_force())

    @classmethod
    def load(cls, name_or_path: str, overrides: Mapping[str, object] | None = None) -> Policy:
        """A named profile or a .toml/.json policy document, then ``overrides`` on top.

        Raises :class:`ConfigError` naming the key (``policy.rules.test.max_hours``),
        showing the bad value and listing the valid choices or range.
        """
        if name_or_path in PROFILES:
            base, doc = PROFILES[name_or_path], {}
        elif Path(name_or_path).suffix.lower() in (".toml", ".json"):
            doc = _read_document(Path(name_or_path))
            profile = doc.pop("profile", None)
            if profile not in PROFILES:
                raise ConfigError(
                    f"policy.profile in {name_or_path} is {profile!r}; "
                    f"choose one of {', '.join(PROFILES)}"
                )
            base = PROFILES[profile]
        else:
            raise ConfigError(
                f"policy {name_or_path!r} is neither a profile ({', '.join(PROFILES)}) "
                "nor a .toml/.json policy file"
            )
        extra = dict(overrides or {})
        profile_override = extra.pop("profile", base.profile)
        if profile_override != base.profile:
            raise ConfigError(
                f"policy.profile override {profile_override!r} contradicts the profile "
                f"{base.profile!r} being loaded; pass the profile as the name to load"
            )
        return _applied(_applied(base, doc), extra)

    @classmethod
    def from_table(cls, table: Mapping[str, object], *, source: str = "policy") -> Policy:
        """A policy table (the config's ``[policy]`` or a synced document): profile + rules.

        Only a profile *name* is taken from it, never a file path: a document that came over
        the network must not make the kiosk read a local file.  No ``profile`` means
        ``border``, the strictest.
        """
        if not isinstance(table, Mapping):
            raise ConfigError(
                f"{source} is a JSON {type(table).__name__}, expected an object such as "
                '{"profile": "hospital", "keep_fields": ["name"]}'
            )
        rules = dict(table)
        profile = rules.pop("profile", "border")
        if not isinstance(profile, str) or profile not in PROFILES:
            raise ConfigError(
                f"{source}: policy.profile is {profile!r}; choose one of {', '.join(PROFILES)}"
            )
        try:
            return cls.load(profile, rules)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    @classmethod
    def from_json(cls, data: bytes | str, *, source: str = "policy document") -> Policy:
        """The down-synced policy document; raises :class:`ConfigError` naming the bad key."""
        try:
            table = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(f"{source} is not valid JSON: {e}") from e
        return cls.from_table(table, source=source)


def _read_document(path: Path) -> dict[str, object]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the policy file {str(path)!r}: {e.strerror}") from e
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(data)
        else:
            doc = tomllib.loads(data.decode("utf-8"))
            # Accept a whole kiosk config as well as a bare policy table.
            if isinstance(doc.get("policy"), dict):
                doc = doc["policy"]
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"policy file {str(path)!r} cannot be parsed: {e}") from e
    if not isinstance(doc, dict):
        raise ConfigError(f"policy file {str(path)!r} holds a {type(doc).__name__}, not a table")
    return dict(doc)


# -- the one validator: TOML in config, JSON from the central --------------------------------

# key -> (kind, allowed choices or (min, max))
_SETTINGS: dict[str, tuple[str, Any]] = {
    "accepted_kinds": ("choices", PERSON_KINDS),
    "unsigned_id": ("choice", UNSIGNED_ID),
    "watchlist": ("bool", None),
    "trust_list_max_age_hours": ("int", (1, 24 * 90)),
    "keep_fields": ("choices", DISPLAY_FIELDS),
    "health_questions": ("questions", None),
}
_COMMON: dict[str, tuple[str, Any]] = {
    "directions": ("choices", DIRECTIONS),
    "exempt_under_age": ("int", (0, 120)),
    "from_level": ("int", (0, 4)),
}
_RULE_KEYS: dict[str, dict[str, tuple[str, Any]]] = {
    "declaration": {"valid_days": ("int", (1, 30))},
    "origin": {"check_from_level": ("int", (0, 4)), "stop_from_level": ("int", (0, 4))},
    "vaccination": {"min_doses": ("int", (1, 9)), "min_days_since_last": ("int", (0, 365)),
                    "max_days_since_last": ("int", (0, 3650))},
    "test": {"max_hours": ("hours_by_type", (1, 720))},
    "recovery": {"within_days": ("int", (1, 3650))},
}
# The flat keys of policies written before the rules (issue 13), kept so that a kiosk's
# config or a province's document from then still loads: each sets one rule parameter.
_LEGACY: dict[str, tuple[str, str, tuple[str, Any]]] = {
    "min_doses": ("vaccination", "min_doses", ("int", (1, 9))),
    "min_days_since_last_dose": ("vaccination", "min_days_since_last", ("int", (0, 365))),
    "max_days_since_last_dose": ("vaccination", "max_days_since_last", ("int", (0, 3650))),
    "max_test_hours": ("test", "max_hours", ("int", (1, 720))),
    "max_recovery_days": ("recovery", "within_days", ("int", (1, 3650))),
}
_LEGACY_PROOF = {"require_certificate": ("bool", None),
                 "certificate_types": ("choices", CERTIFICATE_TYPES)}
_KEYS = (*_SETTINGS, "rules", *_LEGACY_PROOF, *_LEGACY)


def _applied(policy: Policy, values: Mapping[str, object]) -> Policy:
    """``policy`` with ``values`` (a ``[policy]`` table without ``profile``) laid over it."""
    settings: dict[str, Any] = {}  # each checked by _valid_value for its key
    for key, value in values.items():
        if key in _SETTINGS:
            settings[key] = _valid_value(f"policy.{key}", *_SETTINGS[key], value)
        elif key not in _KEYS:
            raise ConfigError(
                f"policy.{key} is not a policy setting; valid keys: profile, {', '.join(_KEYS)}"
            )
    rules, touched = _applied_rules(policy.rules, values.get("rules"))
    rules = _applied_legacy(rules, values, touched)
    return dataclasses.replace(policy, **settings, rules=rules)


def _applied_rules(rules: Rules, table: object) -> tuple[Rules, set[tuple[str, str]]]:
    """``rules`` with a ``rules`` table over them; also which (rule, key) pairs it set."""
    touched: set[tuple[str, str]] = set()
    if table is None:
        return rules, touched
    if not isinstance(table, Mapping):
        raise ConfigError(f"policy.rules is {table!r}; expected a table of rules such as "
                          '{"declaration": {"use": "required", "valid_days": 3}}')
    changes: dict[str, Any] = {}
    for name, spec in table.items():
        if name not in RULE_NAMES:
            raise ConfigError(f"policy.rules.{name} is not a rule; rules: {', '.join(RULE_NAMES)}")
        where = f"policy.rules.{name}"
        if spec is False:
            spec = {"use": "off"}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where} is {spec!r}; expected a table of its settings, or false "
                              "to switch it off")
        keys = {"use": ("choice", USES[name]), **_COMMON, **_RULE_KEYS[name]}
        params: dict[str, object] = {}
        for key, value in spec.items():
            if key not in keys:
                raise ConfigError(f"{where}.{key} is not a setting of this rule; valid keys: "
                                  f"{', '.join(keys)}")
            params[key] = _valid_value(f"{where}.{key}", *keys[key], value)
            touched.add((name, key))
        if params.get("directions") == ():
            raise ConfigError(f"{where}.directions is []; a rule for no direction is "
                              'use = "off"')
        changes[name] = dataclasses.replace(getattr(rules, name), **params)
    return dataclasses.replace(rules, **changes), touched


def _applied_legacy(rules: Rules, values: Mapping[str, object],
                    touched: set[tuple[str, str]]) -> Rules:
    def conflict(key: str, name: str, param: str) -> None:
        if (name, param) in touched:
            raise ConfigError(f"policy.{key} and policy.rules.{name}.{param} are both set; "
                              f"keep policy.rules.{name}.{param} only")

    changes: dict[str, Any] = {}
    if any(k in values for k in _LEGACY_PROOF):
        require = _valid_value("policy.require_certificate", *_LEGACY_PROOF["require_certificate"],
                               values.get("require_certificate",
                                          any(getattr(rules, n).use != "off" for n in PROOF_RULES)))
        types = _choices("policy.certificate_types", CERTIFICATE_TYPES,
                         values.get("certificate_types", CERTIFICATE_TYPES))
        for name in PROOF_RULES:
            conflict("certificate_types" if "certificate_types" in values
                     else "require_certificate", name, "use")
            current = getattr(rules, name)
            use = (current.use if current.use != "off" else "proof") if (
                require and name in types) else "off"
            changes[name] = dataclasses.replace(current, use=use)
    for key, (name, param, spec) in _LEGACY.items():
        if key not in values:
            continue
        conflict(key, name, param)
        value = _valid_value(f"policy.{key}", *spec, values[key])
        if key == "max_test_hours":
            value = tuple((t, value) for t in TEST_TYPES)
        changes[name] = dataclasses.replace(changes.get(name, getattr(rules, name)),
                                            **{param: value})
    return dataclasses.replace(rules, **changes)


def _valid_value(name: str, kind: str, spec: Any, value: object) -> object:
    """``value`` as the policy keeps it, or ConfigError naming ``name`` and what it takes."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{name} is {value!r}; expected true or false")
    elif kind == "int":
        lo, hi = spec
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"{name} is {value!r}; expected a whole number {lo}..{hi}")
    elif kind == "choice":
        if value not in spec:
            raise ConfigError(f"{name} is {value!r}; choose one of {', '.join(spec)}")
    elif kind == "choices":
        return _choices(name, spec, value)
    elif kind == "hours_by_type":
        return _hours_by_type(name, spec, value)
    elif kind == "questions":
        return _questions(name, value)
    return value


def _questions(name: str, value: object) -> tuple[HealthQuestion, ...]:
    """The declaration form's yes/no questions: ``[{id, vi, en}, ...]``, at most four."""
    example = ('[{id = "fever", vi = "Có sốt, ho, khó thở không?", '
               'en = "Fever, cough or short of breath?"}]')
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{name} is {value!r}; expected a list of questions, e.g. {example}")
    if len(value) > MAX_QUESTIONS:
        raise ConfigError(f"{name} has {len(value)} questions; at most {MAX_QUESTIONS} fit "
                          "the form (ask the rest on paper)")
    out: list[HealthQuestion] = []
    for i, item in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(item, Mapping) or set(item) != {"id", "vi", "en"}:
            raise ConfigError(f"{where} is {item!r}; expected a table with exactly id, vi and "
                              f"en, e.g. {example}")
        qid = item["id"]
        if not isinstance(qid, str) or not QUESTION_ID.fullmatch(qid):
            raise ConfigError(f"{where}.id is {qid!r}; expected a short code of a-z, 0-9 and _ "
                              "starting with a letter, e.g. \"fever\"")
        if any(q.id == qid for q in out):
            raise ConfigError(f"{where}.id {qid!r} is used twice; give each question its own id")
        texts = {}
        for lang in ("vi", "en"):
            text = item[lang]
            if (not isinstance(text, str) or not text.strip()
                    or len(text) > MAX_QUESTION_TEXT
                    or any(unicodedata.category(c)[0] == "C" for c in text)):
                raise ConfigError(f"{where}.{lang} is {text!r}; expected the question as "
                                  f"plain text of 1..{MAX_QUESTION_TEXT} characters")
            texts[lang] = unicodedata.normalize("NFC", " ".join(text.split()))
        out.append(HealthQuestion(qid, texts["vi"], texts["en"]))
    return tuple(out)


def _choices(name: str, spec: tuple[str, ...], value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ConfigError(f"{name} is {value!r}; expected a list from {', '.join(spec)}")
    bad = [v for v in value if v not in spec]
    if bad:
        raise ConfigError(
            f"{name} has {bad[0]!r} in {list(value)!r}; choose from {', '.join(spec)}"
        )
    return tuple(dict.fromkeys(value))


def _hours_by_type(name: str, spec: tuple[int, int], value: object
                   ) -> tuple[tuple[str, int], ...]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{name} is {value!r}; expected hours by test type, e.g. "
                          "{pcr = 72, rapid_antigen = 24}")
    for test_type, hours in value.items():
        if test_type not in TEST_TYPES:
            raise ConfigError(f"{name} has the test type {test_type!r}; choose from "
                              f"{', '.join(TEST_TYPES)}")
        _valid_value(f"{name}.{test_type}", "int", spec, hours)
    return tuple(value.items())


BORDER_RULES: Rules = Rules(
    declaration=DeclarationRule(use="required", valid_days=3),
    origin=OriginRule(use="required", directions=("in",), check_from_level=3),
    vaccination=VaccinationRule(use="proof", directions=("in",), exempt_under_age=18,
                                min_doses=2, min_days_since_last=14),
    test=NegativeTestRule(use="proof", directions=("in",),
                          max_hours=(("pcr", 72), ("rapid_antigen", 24))),
    recovery=RecoveryRule(use="proof", directions=("in",), within_days=180),
)

PROFILES: dict[str, Policy] = {
    # Provincial border posts: inbound, a movement declaration, no high-risk origin, and one
    # health proof (children under 18 need none); outbound, the declaration only.
    "border": Policy(),
    # Hospital entrances: identity is enough to record who goes in and out.
    "hospital": Policy(profile="hospital", rules=Rules()),
    # Offices: staff and visitors with an ID or a certificate; no quarantine list.
    "office": Policy(
        profile="office",
        accepted_kinds=("cccd", "pc_covid", "eu_dcc"),
        watchlist=False,
        keep_fields=("name",),
        rules=Rules(),
    ),
}


@dataclass(frozen=True)
class Override:
    """An officer's decision replacing the one the kiosk made, and why.

    It is recorded as a new check-in that names the original (``record_fields``); the
    decision it records carries only ``officer_override``: the original's outcome is kept
    beside it, and the officer's reason says why.
    """

    original: Decision
    outcome: Outcome
    reason: str  # a code from the officer panel, or what a button means ("officer confirmed")
    officer: str = ""  # who made it, once officers are named

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise KioskError("an override needs a reason; type why you changed the decision")

    @property
    def decision(self) -> Decision:
        return Decision(self.outcome, ("officer_override",))

    def record_fields(self, original_checkin_id: str) -> dict[str, str]:
        """The ``CheckIn`` fields that link the new record to the one it replaces."""
        return {"override_of": original_checkin_id,
                "original_decision": self.original.outcome.value,
                "override_reason": self.reason.strip()}


# -- deciding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleResult:
    """How one rule came out for one person.

    ``result``: ``met``, ``failed``, ``unknown`` (cannot be evaluated offline: a document or a
    birth date is missing), ``exempt`` (by age), ``not_applied`` (another direction, a lower
    risk origin) or ``not_needed`` (another proof was met).  ``reasons`` are the codes it puts
    into the decision; ``counted`` is False for a single proof, whose codes reach the decision
    through the ``proof`` result that combines them.
    """

    rule: str
    result: str
    reasons: tuple[str, ...] = ()
    source: str | None = None  # "status" or "certificate": where the facts came from
    detail: str = ""
    counted: bool = True


@dataclass(frozen=True)
class Evaluation:
    """A decision with the credential as verified and how each rule came out."""

    credential: Credential
    decision: Decision
    rules: tuple[RuleResult, ...] = ()

    @property
    def decided_by(self) -> tuple[str, ...]:
        """The rules whose codes are in the decision."""
        return tuple(r.rule for r in self.rules if r.counted and r.reasons)


@dataclass(frozen=True)
class _Context:
    at: datetime
    today: date
    facts: HealthStatus | None
    status: StatusList | None
    stale: bool
    risk: RiskLevels | None
    origin_level: int | None
    certificate: Mapping[str, object] | None  # a verified EU DCC's fields
    certificate_shown: bool  # an EU DCC, verified or not: its own reasons say what is wrong

    def no_facts(self, missing: str) -> tuple[str, ...]:
        """Why a rule has nothing to go on: no document, a stale one, or nothing on record."""
        if self.status is None:
            return ("status_missing",)
        if self.facts is None and self.stale:
            return ("status_stale",)
        return (missing,)


class Checker:
    """Applies a :class:`Policy` to credentials; the scan loop calls it from the main thread."""

    def __init__(
        self,
        *,
        policy: Policy,
        trust_list: TrustList | None = None,
        watchlist: Watchlist | None = None,
        status: StatusList | None = None,
        risk_levels: RiskLevels | None = None,
    ) -> None:
        self.policy = policy
        self.trust_list = trust_list
        self.watchlist = watchlist
        self.status = status
        self.risk_levels = risk_levels

    def decide(self, credential: Credential, *, at: datetime, direction: str = "in") -> Decision:
        """The decision for ``credential`` at ``at`` going ``direction``; never raises."""
        return self.explain(credential, at=at, direction=direction).decision

    def evaluate(self, credential: Credential, *, at: datetime,
                 direction: str = "in") -> tuple[Credential, Decision]:
        """The credential with its offline verification checks filled in, and the decision."""
        result = self.explain(credential, at=at, direction=direction)
        return result.credential, result.decision

    def explain(self, credential: Credential, *, at: datetime,
                direction: str = "in") -> Evaluation:
        """The decision with how each rule came out (``inspect`` shows it); never raises."""
        try:
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            return self._evaluate(credential, at, direction)
        except Exception as e:  # noqa: BLE001 - a decision must always come back
            log.error("decision failed with %s; asking for an officer", type(e).__name__)
            log.debug("decision failure detail", exc_info=True)
            return Evaluation(credential, Decision(Outcome.CHECK, ("internal_error",)))

    def _evaluate(self, credential: Credential, at: datetime, direction: str) -> Evaluation:
        kind = credential.kind
        if kind == Kind.VENUE:
            return Evaluation(credential, Decision(Outcome.CHECK, ("not_a_person",)))
        if kind not in ID_KINDS and kind != Kind.EU_DCC:
            return Evaluation(credential, Decision(Outcome.CHECK, ("unrecognised",)))
        policy = self.policy
        reasons: list[str] = []

        if policy.watchlist and self._watchlisted(credential, at, reasons):
            # Only the one reason: the screen must not tell the queue anything more.
            return Evaluation(credential, Decision(Outcome.STOP, ("watchlist",)))

        if kind.value not in policy.accepted_kinds:
            reasons.append("kind_not_accepted")
        reasons += credential.problems

        certificate: Mapping[str, object] | None = None
        if kind == Kind.EU_DCC:
            credential, certificate = self._verify_dcc(credential, at, reasons)
        else:
            reasons += _id_reasons(credential, at)
            if policy.unsigned_id == "check":
                reasons.append("unsigned_id_only")
        credential, results, found = self._rules(credential, certificate, at, direction)
        for result in results:
            if result.counted:
                reasons += result.reasons
        return Evaluation(credential, _decision(reasons, found), tuple(results))

    def _watchlisted(self, credential: Credential, at: datetime, reasons: list[str]) -> bool:
        """True if any of the person's numbers is on the watchlist; a missing or stale list
        is a reason for an officer."""
        if self.watchlist is None:
            reasons.append("watchlist_missing")
            return False
        if self.watchlist.matches_any(_numbers(credential), at=at):
            return True
        if self.watchlist.is_stale(at):
            reasons.append("watchlist_stale")
        return False

    def _verify_dcc(self, credential: Credential, at: datetime, reasons: list[str]
                    ) -> tuple[Credential, Mapping[str, object] | None]:
        """The credential with its checks, and its fields when they can be relied on."""
        evidence = credential.evidence
        if not isinstance(evidence, DccEvidence):
            return credential, None  # the chain failed early; its problems are already reasons
        result = verify(evidence, self.trust_list, at)
        credential = dataclasses.replace(credential, checks={**credential.checks, **result.checks})
        reasons += result.reasons
        if self.trust_list is not None and self.trust_list.is_stale(
            at, self.policy.trust_list_max_age
        ):
            reasons.append("trust_list_stale")
        if result.checks["signature"] is False:
            return credential, None  # nothing in an unverified certificate can be relied on
        fields = credential.fields
        if fields.get("certificate_type") == "test" and fields.get("test_result") == TEST_POSITIVE:
            # A positive test stops the person whatever the profile: this is a quarantine post.
            reasons.append("test_positive")
            return credential, None
        return credential, fields

    # -- the rules ---------------------------------------------------------------------------

    def _rules(self, credential: Credential, certificate: Mapping[str, object] | None,
               at: datetime, direction: str
               ) -> tuple[Credential, list[RuleResult], dict[str, Any] | None]:
        """How each rule came out, and what was found to show with the decision (masked)."""
        in_force = self.policy.rules.in_force()
        if not in_force:
            return credential, [], None
        status, risk = self.status, self.risk_levels
        facts = status.lookup(_numbers(credential)) if status is not None else None
        origin = facts.origin if facts is not None else None
        ctx = _Context(at=at, today=local_date(at), facts=facts, status=status,
                       stale=status is not None and status.is_stale(at), risk=risk,
                       origin_level=risk.level_of(origin) if risk is not None else None,
                       certificate=certificate, certificate_shown=credential.kind == Kind.EU_DCC)
        credential = dataclasses.replace(
            credential,
            checks={**credential.checks, "status": None if status is None else facts is not None})
        ages = _age_bounds(credential.fields, facts, ctx.today)
        results: list[RuleResult] = []
        for name, rule in in_force:
            counted = rule.use != "proof"
            if direction not in rule.directions:
                results.append(RuleResult(name, "not_applied", detail=f"direction {direction}",
                                          counted=counted))
                continue
            if rule.from_level and ctx.origin_level is not None \
                    and ctx.origin_level < rule.from_level:
                results.append(RuleResult(name, "not_applied", counted=counted,
                                          detail=f"origin level {ctx.origin_level}"))
                continue
            exempt = _exempt(rule, ages)
            if exempt:
                results.append(RuleResult(name, "exempt", counted=counted,
                                          detail=f"under {rule.exempt_under_age}"))
                continue
            result = dataclasses.replace(_EVALUATORS[name](rule, ctx), counted=counted)
            if exempt is None and result.result != "met":
                result = dataclasses.replace(result, reasons=(*result.reasons, "age_unknown"))
            results.append(result)
        proofs = [r for r in results if not r.counted and r.result != "not_applied"]
        if proofs:
            results += _proof(proofs, certificate)
        return credential, results, facts.masked() if facts is not None else {}


def _numbers(credential: Credential) -> set[str]:
    """Every full number the code carries: the watchlist and the status match them all."""
    numbers = {number for _, number in credential.identifiers}
    if credential.person_key:
        numbers.add(credential.person_key)
    return numbers


def _proof(proofs: list[RuleResult], certificate: Mapping[str, object] | None) -> list[RuleResult]:
    """The ``proof`` rules together: one met (or exempt) is enough."""
    met = next((r for r in proofs if r.result in ("met", "exempt")), None)
    if met is not None:
        return [RuleResult("proof", "met", source=met.source, detail=f"by {met.rule}")]
    codes: list[str] = []
    with_facts = [r for r in proofs if r.source is not None]
    cert_type = certificate.get("certificate_type") if certificate is not None else None
    if certificate is not None and cert_type not in {r.rule for r in proofs}:
        codes.append("certificate_type_not_accepted")
    for r in with_facts or proofs:
        codes += r.reasons
    if not with_facts and not codes:
        pass
    elif not with_facts and set(codes) <= {"vaccination_missing", "test_missing",
                                           "recovery_missing", "age_unknown"}:
        codes = ["health_proof_missing", *(c for c in codes if c == "age_unknown")]
    unknown = any(c in ("status_missing", "status_stale", "age_unknown") for c in codes)
    return [RuleResult("proof", "unknown" if unknown else "failed",
                       tuple(dict.fromkeys(c for c in codes
                                           if c not in ("vaccination_missing", "test_missing",
                                                        "recovery_missing") or with_facts)))]


def _declaration(rule: Rule, ctx: _Context) -> RuleResult:
    assert isinstance(rule, DeclarationRule)
    facts = ctx.facts
    if facts is None or not facts.declared:
        codes = ctx.no_facts("declaration_missing")
        if ctx.stale and "status_stale" not in codes:
            codes = (*codes, "status_stale")  # it may have been made since the document
        return RuleResult("declaration", "unknown" if codes[0].startswith("status") else "failed",
                          codes)
    expired = (facts.declared_at is not None
               and ctx.at - facts.declared_at > timedelta(days=rule.valid_days)) or (
        facts.declared_until is not None and ctx.today > facts.declared_until)
    if expired:
        codes = ("declaration_expired", "status_stale") if ctx.stale else ("declaration_expired",)
        return RuleResult("declaration", "failed", codes, source="status")
    return RuleResult("declaration", "met", source="status")


def _origin(rule: Rule, ctx: _Context) -> RuleResult:
    assert isinstance(rule, OriginRule)
    if ctx.risk is None:
        return RuleResult("origin", "unknown", ("risk_list_missing",))
    if ctx.facts is None or ctx.facts.origin is None:
        codes = ctx.no_facts("origin_unknown")
        if codes == ("declaration_missing",):
            codes = ("origin_unknown",)
        return RuleResult("origin", "unknown", codes if codes[0] != "origin_unknown"
                          else ("origin_unknown",))
    level = ctx.origin_level
    if level is None:
        return RuleResult("origin", "unknown", ("origin_level_unknown",), source="status")
    stale = ("risk_list_stale",) if ctx.risk.is_stale(ctx.at) else ()
    if rule.stop_from_level and level >= rule.stop_from_level:
        return RuleResult("origin", "failed", ("origin_risk_stop",), "status", f"level {level}")
    if rule.check_from_level and level >= rule.check_from_level:
        return RuleResult("origin", "failed", ("origin_risk_high", *stale), "status",
                          f"level {level}")
    return RuleResult("origin", "unknown" if stale else "met", stale, "status", f"level {level}")


def _health(name: str, missing: str, ctx: _Context,
            from_certificate: Callable[[Mapping[str, object]], list[str]] | None,
            from_status: Callable[[HealthStatus], list[str]] | None) -> RuleResult:
    """A health proof from the certificate shown, or else from the status record."""
    codes: list[str] = []
    source = None
    if from_certificate is not None and ctx.certificate is not None:
        source = "certificate"
        codes = from_certificate(ctx.certificate)
        if not codes:
            return RuleResult(name, "met", source="certificate")
    if from_status is not None and ctx.facts is not None:
        status_codes = from_status(ctx.facts)
        if not status_codes:
            return RuleResult(name, "met", source="status")
        source = source or "status"
        codes += status_codes
        if ctx.stale:
            codes.append("status_stale")
    if source is not None:
        return RuleResult(name, "failed", tuple(dict.fromkeys(codes)), source=source)
    if ctx.certificate_shown and ctx.status is None:
        # The person showed a certificate as their proof; it is judged on its own.
        return RuleResult(name, "failed")
    codes_missing = ctx.no_facts(missing)
    return RuleResult(name, "unknown" if codes_missing[0].startswith("status") else "failed",
                      codes_missing)


def _vaccination(rule: Rule, ctx: _Context) -> RuleResult:
    assert isinstance(rule, VaccinationRule)

    def certificate(fields: Mapping[str, object]) -> list[str]:
        if fields.get("certificate_type") != "vaccination":
            return []  # handled as "no facts" below
        dn, sd = fields.get("dose_number"), fields.get("total_doses")
        complete = isinstance(dn, int) and isinstance(sd, int) and dn >= sd
        return _dose_codes(dn if complete else 0, _date(fields.get("vaccinated_on")), rule, ctx)

    def status(facts: HealthStatus) -> list[str]:
        return _dose_codes(facts.doses, facts.last_dose, rule, ctx) if facts.doses else \
            ["vaccination_missing"]

    return _health("vaccination", "vaccination_missing", ctx,
                   certificate if _cert_is(ctx, "vaccination") else None,
                   status if ctx.facts is not None and ctx.facts.doses else None)


def _dose_codes(doses: object, last: date | None, rule: VaccinationRule,
                ctx: _Context) -> list[str]:
    codes = []
    if not isinstance(doses, int) or doses < rule.min_doses:
        codes.append("vaccination_incomplete")
    days = (ctx.today - last).days if last is not None else None
    if days is None or days < rule.min_days_since_last:
        codes.append("vaccination_too_recent")
    elif rule.max_days_since_last and days > rule.max_days_since_last:
        codes.append("vaccination_too_old")
    return codes


def _test(rule: Rule, ctx: _Context) -> RuleResult:
    assert isinstance(rule, NegativeTestRule)

    def certificate(fields: Mapping[str, object]) -> list[str]:
        codes = []
        if fields.get("test_result") != TEST_NEGATIVE:
            codes.append("test_result_unknown")
        return codes + _test_codes(DCC_TEST_TYPES.get(str(fields.get("test_type"))),
                                   _datetime(fields.get("sampled_at")), rule, ctx)

    def status(facts: HealthStatus) -> list[str]:
        return _test_codes(facts.test_type, facts.tested_at, rule, ctx)

    return _health("test", "test_missing", ctx,
                   certificate if _cert_is(ctx, "test") else None,
                   status if ctx.facts is not None and ctx.facts.tested_at else None)


def _test_codes(test_type: str | None, sampled: datetime | None, rule: NegativeTestRule,
                ctx: _Context) -> list[str]:
    hours = rule.hours_for(test_type)
    if hours is None:
        return ["test_type_not_accepted"]
    if sampled is None or ctx.at - sampled > timedelta(hours=hours):
        return ["test_too_old"]
    if sampled > ctx.at + CLOCK_SLACK:
        return ["test_in_future"]
    return []


def _recovery(rule: Rule, ctx: _Context) -> RuleResult:
    assert isinstance(rule, RecoveryRule)

    def certificate(fields: Mapping[str, object]) -> list[str]:
        first = _date(fields.get("first_positive_on"))
        valid_from, valid_until = _date(fields.get("valid_from")), _date(fields.get("valid_until"))
        if (first is None or valid_from is None or valid_until is None
                or not valid_from <= ctx.today <= valid_until
                or (ctx.today - first).days > rule.within_days):
            return ["recovery_not_valid"]
        return []

    def status(facts: HealthStatus) -> list[str]:
        since = facts.recovered_since
        if since is None or since > ctx.today or (ctx.today - since).days > rule.within_days:
            return ["recovery_not_valid"]
        return []

    return _health("recovery", "recovery_missing", ctx,
                   certificate if _cert_is(ctx, "recovery") else None,
                   status if ctx.facts is not None and ctx.facts.recovered_since else None)


def _cert_is(ctx: _Context, cert_type: str) -> bool:
    return ctx.certificate is not None and ctx.certificate.get("certificate_type") == cert_type


_EVALUATORS: dict[str, Callable[[Rule, _Context], RuleResult]] = {
    "declaration": _declaration, "origin": _origin, "vaccination": _vaccination, "test": _test,
    "recovery": _recovery}


def _age_bounds(fields: Mapping[str, object], facts: HealthStatus | None,
                today: date) -> tuple[int, int] | None:
    """(youngest, oldest) the person can be today from what the code or the record says;
    None when nothing says (or the birth date is in the future)."""
    born = _birth_range(fields, facts)
    if born is None or born[1] > today or born[0].year < 1900:
        return None

    def age(on: date) -> int:
        return today.year - on.year - ((today.month, today.day) < (on.month, on.day))

    return age(born[1]), age(born[0])


def _birth_range(fields: Mapping[str, object], facts: HealthStatus | None
                 ) -> tuple[date, date] | None:
    """The earliest and latest birth date possible: a code may give the day, the month (a
    masked ``1990-05-**``) or the year only; else the status record's birth year."""
    text = str(fields.get("birth_date") or "")
    parts: list[int] = []
    for piece in (text[:4], text[5:7], text[8:10]):
        if len(piece) < 2 or not piece.isdigit():
            break
        parts.append(int(piece))
    if not text[:4].isdigit():
        year = fields.get("birth_year")
        year = int(year) if isinstance(year, int | str) and str(year).isdigit() else (
            facts.birth_year if facts is not None else None)
        parts = [year] if year else []
    try:
        if len(parts) == 3:
            born = date(*parts)
            return born, born
        if len(parts) == 2:
            year, month = parts
            last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
            return date(year, month, 1), last
        if parts:
            return date(parts[0], 1, 1), date(parts[0], 12, 31)
    except (ValueError, OverflowError):
        pass
    return None


def _exempt(rule: Rule, ages: tuple[int, int] | None) -> bool | None:
    """True: certainly under the age; False: certainly not (or no exemption); None: unknown."""
    if not rule.exempt_under_age:
        return False
    if ages is None:
        return None
    youngest, oldest = ages
    if oldest < rule.exempt_under_age:
        return True
    if youngest >= rule.exempt_under_age:
        return False
    return None


def _decision(reasons: list[str], found: dict[str, Any] | None = None) -> Decision:
    unique = tuple(dict.fromkeys(reasons))
    if any(r in STOP_REASONS for r in unique):
        # What was found is not shown when the person is stopped: the queue is watching.
        return Decision(Outcome.STOP, unique)
    return Decision(Outcome.CHECK if unique else Outcome.PASS, unique, found)


def _id_reasons(credential: Credential, at: datetime) -> list[str]:
    fields, today = credential.fields, local_date(at)
    reasons = []
    if credential.kind == Kind.BHYT:
        valid_from, valid_to = _date(fields.get("valid_from")), _date(fields.get("valid_to"))
        if valid_from and today < valid_from:
            reasons.append("bhyt_not_yet_valid")
        if valid_to and today > valid_to:
            reasons.append("bhyt_expired")
    elif credential.kind == Kind.CCCD:
        issued = _date(fields.get("issue_date"))
        if issued and issued > today:
            reasons.append("cccd_issue_date_in_future")
    return reasons


def _date(value: object) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def load_lists(
    trust_list: str | os.PathLike[str] | None, watchlist: str | os.PathLike[str] | None
) -> tuple[TrustList | None, Watchlist | None]:
    """Read the optional list files (``inspect`` and the kiosk's start-up use this)."""
    return (
        TrustList.from_file(trust_list) if trust_list else None,
        Watchlist.from_file(watchlist) if watchlist else None,
    )
