"""``checkpoint-kiosk inspect``: recognise, verify and decide one payload, print JSON."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kiosk.domain.credentials import recognise
from kiosk.domain.model import DIRECTIONS, Credential, Decision
from kiosk.domain.policy import Checker, Evaluation, Policy, load_lists
from kiosk.domain.status import RiskLevels, StatusList
from kiosk.domain.trustlist import TrustList
from kiosk.domain.watchlist import Watchlist


def inspect_payload(
    payload: bytes | str,
    *,
    checker: Checker,
    at: datetime,
    direction: str = "in",
) -> dict[str, Any]:
    """The JSON object ``inspect`` prints (also used by bench/inspect.py)."""
    result = checker.explain(recognise(payload), at=at, direction=direction)
    out = to_json(result.credential, result.decision, checker=checker, at=at)
    out["direction"] = direction
    out.update(_rules(result))
    return out


def _rules(result: Evaluation) -> dict[str, Any]:
    """Which rule decided: each rule's result, and the rules whose reasons are in the decision."""
    return {
        "rules": [{"rule": r.rule, "result": r.result, "reasons": list(r.reasons),
                   "source": r.source, "detail": r.detail, "counted": r.counted}
                  for r in result.rules],
        "decided_by": list(result.decided_by),
    }


def to_json(
    credential: Credential, decision: Decision, *, checker: Checker, at: datetime
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": credential.kind.value,
        "person_key": credential.person_key,
        # Every full number the watchlist was checked against, as [type, number].
        "identifiers": sorted([list(i) for i in credential.identifiers]),
        "display": credential.display,
        "fields": credential.fields,
        "checks": credential.checks,
        "decision": decision.outcome.value,
        "reasons": list(decision.reasons),
        # What the status document holds about the person, masked, as the screen shows it.
        "found": decision.found,
    }
    out["lists"] = _lists(checker.trust_list, checker.watchlist, checker.policy, at)
    out["lists"].update(_documents(checker.status, checker.risk_levels, at))
    return out


def _documents(status: StatusList | None, risk: RiskLevels | None,
               at: datetime) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for name, doc in (("status", status), ("risk_levels", risk)):
        if doc is not None:
            info[name] = {"entries": len(doc), "issued_at": doc.issued_at.isoformat(),
                          "expires_at": doc.expires_at.isoformat(), "stale": doc.is_stale(at)}
    return info


def _lists(
    trust_list: TrustList | None, watchlist: Watchlist | None, policy: Policy, at: datetime
) -> dict[str, Any]:
    """Age and expiry of the lists the decision used: stale lists must be visible."""
    info: dict[str, Any] = {"policy": policy.profile, "validation_time": at.isoformat()}
    if trust_list is not None:
        age = trust_list.age(at)
        info["trust_list"] = {
            "signers": len(trust_list),
            "skipped": trust_list.skipped,
            "fetched_at": trust_list.fetched_at.isoformat() if trust_list.fetched_at else None,
            "age_hours": round(age.total_seconds() / 3600, 2) if age is not None else None,
            "stale": trust_list.is_stale(at, policy.trust_list_max_age),
        }
    if watchlist is not None:
        info["watchlist"] = {
            "entries": len(watchlist),
            "issued_at": watchlist.issued_at.isoformat(),
            "expires_at": watchlist.expires_at.isoformat(),
            "stale": watchlist.is_stale(at),
        }
    return info


def _parse_at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time; e.g. 2022-06-01T08:30:00+07:00",
            param_hint="--at",
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@click.command()
@click.option(
    "--trust-list",
    type=click.Path(dir_okay=False, path_type=Path),
    help="EU-gateway-shaped JSON list of document signers; age = file mtime.",
)
@click.option(
    "--watchlist",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Quarantine watchlist JSON (salted hashes with end dates).",
)
@click.option(
    "--status",
    "status_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Status document (declarations and health status, hashed), e.g. from status-doc build.",
)
@click.option(
    "--risk-levels",
    "risk_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Commune risk-level document.",
)
@click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
    default="in",
    show_default=True,
    help="Which way the person goes: rules may differ by direction.",
)
@click.option(
    "--policy",
    "policy_name",
    default="border",
    show_default=True,
    help="Profile name (border, hospital, office) or a .toml/.json policy file.",
)
@click.option(
    "--at",
    "at_text",
    metavar="ISO8601",
    help="Validation time (default: now; naive times are UTC).",
)
@click.argument("payload")
def inspect(
    trust_list: Path | None,
    watchlist: Path | None,
    status_file: Path | None,
    risk_file: Path | None,
    direction: str,
    policy_name: str,
    at_text: str | None,
    payload: str,
) -> None:  # fmt: skip
    """Recognise, verify and decide one QR PAYLOAD; print one JSON object.

    PAYLOAD is the decoded QR text; '-' reads it from stdin as raw bytes.
    Exit status is 0 whenever a JSON answer is printed, also for invalid credentials.
    "rules" shows how each rule of the policy came out and "decided_by" the rules whose
    reasons are in the decision.

    Example: checkpoint-kiosk inspect --status status.json --at 2022-06-01T08:00:00+07:00 -
    """
    at = _parse_at(at_text)
    policy = Policy.load(policy_name)
    trust, watch = load_lists(trust_list, watchlist)
    data: bytes | str = sys.stdin.buffer.read() if payload == "-" else payload
    status = StatusList.from_file(status_file) if status_file else None
    risk = RiskLevels.from_file(risk_file) if risk_file else None
    checker = Checker(policy=policy, trust_list=trust, watchlist=watch, status=status,
                      risk_levels=risk)
    answer = inspect_payload(data, checker=checker, at=at, direction=direction)
    click.echo(json.dumps(answer, ensure_ascii=False))
