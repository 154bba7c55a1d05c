"""The people of the profile table in docs/policy.md: who comes to a checkpoint, what the
national platforms know about them, and the documents the kiosk holds.

Shared by tests/test_policy_table.py (which checks the table in the docs is this table) and
tests/test_policy_rules.py.  ``python tests/policy_people.py`` prints the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.domain.credentials import recognise
from kiosk.domain.policy import PROFILES, Checker, Policy
from kiosk.domain.status import HealthStatus, RiskLevels, StatusList
from kiosk.domain.trustlist import TrustList, build_json
from kiosk.domain.watchlist import VIETNAM, Watchlist
from kiosk.testing import dcc_issue as di

AT = datetime(2022, 6, 1, 8, 0, tzinfo=VIETNAM)
ISSUED = AT - timedelta(hours=2)
CCCD = "001185012345"
QID = "162979388586171234"
BHYT_CARD = "GD4790123456789"
LOW, HIGH = "00004", "00007"  # communes at risk level 1 and 3


def cccd(number: str = CCCD, born: str = "14071985") -> str:
    return f"{number}||Trần Thị Bích Ngọc|{born}|Nữ|Hà Nội|10052021"


def pc_covid(born: str, qid: str = QID) -> str:
    return f"******012345|TRAN THI BICH NGOC|{born}|0|{qid}|"


def bhyt(card: str = BHYT_CARD) -> str:
    hexs = "Trần Thị Bích Ngọc".encode().hex()
    return (f"{card}|{hexs}|14/07/1985|2|{'Hà Nội'.encode().hex()}"
            "|01 - 043|01/01/2022|31/12/2022|15/12/2021$")


_KEY = ec.generate_private_key(ec.SECP256R1())
_DSC = di.make_dsc(_KEY, not_before=AT - timedelta(days=90), not_after=AT + timedelta(days=90))
TRUST = TrustList.from_json(build_json([(_DSC, "VN")]), fetched_at=ISSUED)


def dcc_vaccinated() -> str:
    cose = di.sign(di.vaccination(date="2022-03-01"), _KEY, dsc=_DSC,
                   issued_at=AT - timedelta(days=30), expires_at=AT + timedelta(days=300))
    return di.encode(cose)


DECLARED = HealthStatus(declared_at=AT - timedelta(days=1), origin=LOW)
VACCINATED = dict(doses=2, last_dose=date(2022, 3, 1))


@dataclass(frozen=True)
class Person:
    """Someone at the checkpoint: the code shown and what the status document holds."""

    who: str
    code: str
    numbers: tuple[str, ...] = (CCCD,)
    facts: HealthStatus | None = None
    status: bool = True  # whether the kiosk has a status document yet
    watchlisted: bool = False
    extra: dict = field(default_factory=dict)


def with_(base: HealthStatus, **kw) -> HealthStatus:
    from dataclasses import replace
    return replace(base, **kw)


PEOPLE: tuple[Person, ...] = (
    Person("adult, declared, 2 doses", cccd(), facts=with_(DECLARED, **VACCINATED)),
    Person("the same, before the first status document", cccd(),
           facts=with_(DECLARED, **VACCINATED), status=False),
    Person("adult, nothing on record", cccd()),
    Person("adult, declared 5 days ago, 2 doses", cccd(),
           facts=with_(DECLARED, declared_at=AT - timedelta(days=5), **VACCINATED)),
    Person("adult, declared, 1 dose", cccd(),
           facts=with_(DECLARED, doses=1, last_dose=date(2022, 3, 1))),
    Person("adult, declared, last dose 5 days ago", cccd(),
           facts=with_(DECLARED, doses=2, last_dose=date(2022, 5, 27))),
    Person("adult, declared, PCR 30 h ago", cccd(),
           facts=with_(DECLARED, test_type="pcr", tested_at=AT - timedelta(hours=30))),
    Person("adult, declared, rapid test 30 h ago", cccd(),
           facts=with_(DECLARED, test_type="rapid_antigen",
                       tested_at=AT - timedelta(hours=30))),
    Person("adult, declared, recovered 2 months ago", cccd(),
           facts=with_(DECLARED, recovered_since=date(2022, 4, 1))),
    Person("child of 12, declared, not vaccinated", cccd("001310012345", "02022010"),
           numbers=("001310012345",), facts=DECLARED),
    Person("PC-Covid, birth year 2004 only, declared, not vaccinated",
           pc_covid("2004-**-**"), numbers=(QID,), facts=DECLARED),
    Person("adult from a level-3 commune, declared, 2 doses", cccd(),
           facts=with_(DECLARED, origin=HIGH, **VACCINATED)),
    Person("BHYT card, declared under its number, 2 doses", bhyt(), numbers=(BHYT_CARD,),
           facts=with_(DECLARED, **VACCINATED)),
    Person("vaccine passport (verified), not declared", dcc_vaccinated(), numbers=()),
    Person("adult on the quarantine watchlist", cccd(), facts=with_(DECLARED, **VACCINATED),
           watchlisted=True),
)

COLUMNS = (("border", "in"), ("border", "out"), ("hospital", "in"), ("office", "in"))


def checker(person: Person, policy: Policy) -> Checker:
    status = None
    if person.status:
        people = [(person.numbers, person.facts)] if person.facts and person.numbers else []
        status = StatusList.from_json(StatusList.build(people, issued_at=ISSUED))
    risk = RiskLevels.from_json(RiskLevels.build({LOW: 1, HIGH: 3}, issued_at=ISSUED))
    watch = Watchlist.from_json(Watchlist.build(
        [(CCCD, date(2022, 6, 14))] if person.watchlisted else [], issued_at=ISSUED))
    return Checker(policy=policy, trust_list=TRUST, watchlist=watch, status=status,
                   risk_levels=risk)


def decide(person: Person, profile: str, direction: str):
    return checker(person, PROFILES[profile]).explain(recognise(person.code), at=AT,
                                                      direction=direction)


def cell(person: Person, profile: str, direction: str) -> str:
    decision = decide(person, profile, direction).decision
    reasons = ", ".join(decision.reasons)
    return f"**{decision.outcome}**" + (f" ({reasons})" if reasons else "")


def table() -> str:
    head = ["person (at 2022-06-01 08:00, documents issued 2 h before)",
            *(f"{p} {d}" if p == "border" else p for p, d in COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for person in PEOPLE:
        lines.append("| " + " | ".join([person.who, *(cell(person, p, d) for p, d in COLUMNS)])
                     + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
    assert AT.astimezone(UTC)  # the table's times are Vietnam time
