"""Checkpoint policy and the decision maker: pass, check (an officer must look) or stop.

A :class:`Policy` is a named profile (``border``, ``hospital``, ``office``) overlaid by
the ``[policy]`` table of the kiosk config or a down-synced policy document.
:class:`Checker` applies it to a recognised credential, with the trust list for EU DCC
signatures and the quarantine watchlist.  Stale or missing lists give ``check`` with
that reason: never a silent pass, never a crash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.domain.credentials.dcc import DccEvidence, verify
from kiosk.domain.model import PERSON_KINDS, Credential, Decision, Kind, Outcome
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

# Reasons that mean "do not let this person through" rather than "an officer must look".
STOP_REASONS = frozenset({"watchlist", "test_positive", "dcc_signature_invalid", "dcc_key_usage"})


@dataclass(frozen=True)
class Policy:
    """What a checkpoint accepts.  Defaults are the ``border`` profile."""

    profile: str = "border"
    # Credential kinds accepted as identity at this checkpoint.
    accepted_kinds: tuple[str, ...] = PERSON_KINDS
    # Whether a valid vaccination / test / recovery certificate (EU DCC) is required.
    require_certificate: bool = True
    # Which certificate types satisfy the requirement.
    certificate_types: tuple[str, ...] = CERTIFICATE_TYPES
    min_doses: int = 2
    min_days_since_last_dose: int = 14
    max_days_since_last_dose: int = 0  # 0: no limit
    max_test_hours: int = 72
    max_recovery_days: int = 180
    # What an ID card alone (no signature to verify) gives when no certificate is required.
    unsigned_id: str = "check"
    # Consult the quarantine watchlist; a missing list then gives ``watchlist_missing``.
    watchlist: bool = True
    trust_list_max_age_hours: int = 72
    # Display fields the store may keep (data minimisation).
    keep_fields: tuple[str, ...] = DISPLAY_FIELDS

    @property
    def trust_list_max_age(self) -> timedelta:
        return timedelta(hours=self.trust_list_max_age_hours)

    @classmethod
    def load(cls, name_or_path: str, overrides: Mapping[str, Any] | None = None) -> Policy:
        """A named profile or a .toml/.json policy document, then ``overrides`` on top.

        Raises :class:`ConfigError` naming the key (``policy.max_test_hours``), showing the
        bad value and listing the valid choices or range.
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
        return dataclasses.replace(base, **_validated({**doc, **extra}))

    @classmethod
    def from_table(cls, table: Mapping[str, Any], *, source: str = "policy") -> Policy:
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


def _read_document(path: Path) -> dict[str, Any]:
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


# key -> (kind, allowed choices or (min, max))
_RULES: dict[str, tuple[str, Any]] = {
    "accepted_kinds": ("choices", PERSON_KINDS),
    "require_certificate": ("bool", None),
    "certificate_types": ("choices", CERTIFICATE_TYPES),
    "min_doses": ("int", (1, 9)),
    "min_days_since_last_dose": ("int", (0, 365)),
    "max_days_since_last_dose": ("int", (0, 3650)),
    "max_test_hours": ("int", (1, 720)),
    "max_recovery_days": ("int", (1, 3650)),
    "unsigned_id": ("choice", UNSIGNED_ID),
    "watchlist": ("bool", None),
    "trust_list_max_age_hours": ("int", (1, 24 * 90)),
    "keep_fields": ("choices", DISPLAY_FIELDS),
}


def _validated(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _RULES:
            raise ConfigError(
                f"policy.{key} is not a policy setting; valid keys: profile, {', '.join(_RULES)}"
            )
        out[key] = _valid_value(f"policy.{key}", *_RULES[key], value)
    return out


def _valid_value(name: str, kind: str, spec: Any, value: Any) -> Any:
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
        if isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{name} is {value!r}; expected a list from {', '.join(spec)}")
        bad = [v for v in value if v not in spec]
        if bad:
            raise ConfigError(
                f"{name} has {bad[0]!r} in {list(value)!r}; choose from {', '.join(spec)}"
            )
        return tuple(dict.fromkeys(value))
    return value


PROFILES: dict[str, Policy] = {
    # Border posts: a verified certificate is required; an ID alone goes to an officer.
    "border": Policy(),
    # Hospital entrances: identity is enough to record who goes in and out.
    "hospital": Policy(
        profile="hospital",
        require_certificate=False,
        unsigned_id="pass",
    ),
    # Offices: staff and visitors with an ID or a certificate; no quarantine list.
    "office": Policy(
        profile="office",
        accepted_kinds=("cccd", "pc_covid", "eu_dcc"),
        require_certificate=False,
        unsigned_id="pass",
        watchlist=False,
        keep_fields=("name",),
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


class Checker:
    """Applies a :class:`Policy` to credentials; the scan loop calls it from the main thread."""

    def __init__(
        self,
        *,
        policy: Policy,
        trust_list: TrustList | None = None,
        watchlist: Watchlist | None = None,
    ) -> None:
        self.policy = policy
        self.trust_list = trust_list
        self.watchlist = watchlist

    def decide(self, credential: Credential, *, at: datetime) -> Decision:
        """The decision for ``credential`` at ``at``; never raises."""
        return self.evaluate(credential, at=at)[1]

    def evaluate(self, credential: Credential, *, at: datetime) -> tuple[Credential, Decision]:
        """The credential with its offline verification checks filled in, and the decision."""
        try:
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)
            return self._evaluate(credential, at)
        except Exception as e:  # noqa: BLE001 - a decision must always come back
            log.error("decision failed with %s; asking for an officer", type(e).__name__)
            log.debug("decision failure detail", exc_info=True)
            return credential, Decision(Outcome.CHECK, ("internal_error",))

    def _evaluate(self, credential: Credential, at: datetime) -> tuple[Credential, Decision]:
        kind = credential.kind
        if kind == Kind.VENUE:
            return credential, Decision(Outcome.CHECK, ("not_a_person",))
        if kind not in ID_KINDS and kind != Kind.EU_DCC:
            return credential, Decision(Outcome.CHECK, ("unrecognised",))
        policy = self.policy
        reasons: list[str] = []

        if policy.watchlist and self._watchlisted(credential, at, reasons):
            # Only the one reason: the screen must not tell the queue anything more.
            return credential, Decision(Outcome.STOP, ("watchlist",))

        if kind.value not in policy.accepted_kinds:
            reasons.append("kind_not_accepted")
        reasons += credential.problems

        if kind == Kind.EU_DCC:
            credential = self._verify_dcc(credential, at, reasons)
        else:
            reasons += _id_reasons(credential, at)
            if policy.require_certificate:
                reasons.append("certificate_required")
            elif policy.unsigned_id == "check":
                reasons.append("unsigned_id_only")
        return credential, _decision(reasons)

    def _watchlisted(self, credential: Credential, at: datetime, reasons: list[str]) -> bool:
        """True if any of the person's numbers is on the watchlist; a missing or stale list
        is a reason for an officer."""
        if self.watchlist is None:
            reasons.append("watchlist_missing")
            return False
        numbers = {number for _, number in credential.identifiers}
        if credential.person_key:
            numbers.add(credential.person_key)
        if self.watchlist.matches_any(numbers, at=at):
            return True
        if self.watchlist.is_stale(at):
            reasons.append("watchlist_stale")
        return False

    def _verify_dcc(self, credential: Credential, at: datetime, reasons: list[str]) -> Credential:
        evidence = credential.evidence
        if not isinstance(evidence, DccEvidence):
            return credential  # the chain failed early; its problems are already reasons
        result = verify(evidence, self.trust_list, at)
        credential = dataclasses.replace(credential, checks={**credential.checks, **result.checks})
        reasons += result.reasons
        if self.trust_list is not None and self.trust_list.is_stale(
            at, self.policy.trust_list_max_age
        ):
            reasons.append("trust_list_stale")
        if result.checks["signature"] is False:
            return credential  # nothing in an unverified certificate can be relied on
        reasons += _certificate_reasons(credential.fields, self.policy, at)
        return credential


def _decision(reasons: list[str]) -> Decision:
    unique = tuple(dict.fromkeys(reasons))
    if any(r in STOP_REASONS for r in unique):
        return Decision(Outcome.STOP, unique)
    return Decision(Outcome.CHECK if unique else Outcome.PASS, unique)


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


def _certificate_reasons(fields: Mapping[str, Any], policy: Policy, at: datetime) -> list[str]:
    cert_type = fields.get("certificate_type")
    if cert_type == "test" and fields.get("test_result") == TEST_POSITIVE:
        # A positive test stops the person whatever the profile: this is a quarantine post.
        return ["test_positive"]
    if not policy.require_certificate:
        return []
    if cert_type not in policy.certificate_types:
        return ["certificate_type_not_accepted"]
    rules = _CERTIFICATE_RULES.get(cert_type)
    return rules(fields, policy, at) if rules is not None else []


def _vaccination_reasons(fields: Mapping[str, Any], policy: Policy, at: datetime) -> list[str]:
    reasons = []
    dn, sd = fields.get("dose_number"), fields.get("total_doses")
    if not (isinstance(dn, int) and isinstance(sd, int)) or dn < sd or dn < policy.min_doses:
        reasons.append("vaccination_incomplete")
    when = _date(fields.get("vaccinated_on"))
    days = (local_date(at) - when).days if when is not None else None
    if days is None or days < policy.min_days_since_last_dose:
        reasons.append("vaccination_too_recent")
    elif policy.max_days_since_last_dose and days > policy.max_days_since_last_dose:
        reasons.append("vaccination_too_old")
    return reasons


def _test_reasons(fields: Mapping[str, Any], policy: Policy, at: datetime) -> list[str]:
    reasons = []
    if fields.get("test_result") != TEST_NEGATIVE:
        reasons.append("test_result_unknown")
    sampled = _datetime(fields.get("sampled_at"))
    if sampled is None or at - sampled > timedelta(hours=policy.max_test_hours):
        reasons.append("test_too_old")
    elif sampled > at + timedelta(minutes=5):
        reasons.append("test_in_future")
    return reasons


def _recovery_reasons(fields: Mapping[str, Any], policy: Policy, at: datetime) -> list[str]:
    today = local_date(at)
    first = _date(fields.get("first_positive_on"))
    valid_from, valid_until = _date(fields.get("valid_from")), _date(fields.get("valid_until"))
    if (
        first is None
        or valid_from is None
        or valid_until is None
        or not valid_from <= today <= valid_until
        or (today - first).days > policy.max_recovery_days
    ):
        return ["recovery_not_valid"]
    return []


# What a certificate of each type must show under a policy that requires one.
_CERTIFICATE_RULES: dict[str, Callable[[Mapping[str, Any], Policy, datetime], list[str]]] = {
    "vaccination": _vaccination_reasons,
    "test": _test_reasons,
    "recovery": _recovery_reasons,
}


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _datetime(value: Any) -> datetime | None:
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
