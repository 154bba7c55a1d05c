"""``checkpoint-kiosk inspect``: recognise, verify and decide one payload, print JSON."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kiosk.domain.credentials import recognise
from kiosk.domain.model import Credential, Decision
from kiosk.domain.policy import Checker, Policy, load_lists
from kiosk.domain.trustlist import TrustList
from kiosk.domain.watchlist import Watchlist


def inspect_payload(
    payload: bytes | str,
    *,
    checker: Checker,
    at: datetime,
) -> dict[str, Any]:
    """The JSON object ``inspect`` prints (also used by bench/inspect.py)."""
    credential, decision = checker.evaluate(recognise(payload), at=at)
    return to_json(credential, decision, checker=checker, at=at)


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
    }
    out["lists"] = _lists(checker.trust_list, checker.watchlist, checker.policy, at)
    return out


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
    policy_name: str,
    at_text: str | None,
    payload: str,
) -> None:  # fmt: skip
    """Recognise, verify and decide one QR PAYLOAD; print one JSON object.

    PAYLOAD is the decoded QR text; '-' reads it from stdin as raw bytes.
    Exit status is 0 whenever a JSON answer is printed, also for invalid credentials.

    Example: checkpoint-kiosk inspect --policy hospital --at 2022-06-01T08:00:00+07:00 -
    """
    at = _parse_at(at_text)
    policy = Policy.load(policy_name)
    trust, watch = load_lists(trust_list, watchlist)
    data: bytes | str = sys.stdin.buffer.read() if payload == "-" else payload
    answer = inspect_payload(data, checker=Checker(policy=policy, trust_list=trust,
                                                   watchlist=watch), at=at)  # fmt: skip
    click.echo(json.dumps(answer, ensure_ascii=False))
