"""Validators for the documents the central publishes and the kiosk applies.

"Valid" means "can be applied": each validator runs :func:`load`, the very function
:class:`kiosk.runtime.checker.LiveChecker` applies a stored document with (over
:meth:`Policy.from_json`,
:meth:`TrustList.from_json`, :meth:`Watchlist.from_json`, :meth:`StatusList.from_json`,
:meth:`RiskLevels.from_json`), so the central (on publish) and
the sync worker (before storing) refuse exactly what a kiosk could not use.  The queue and the
central import nothing from ``kiosk``; they are handed ``VALIDATORS`` where they are built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from types import MappingProxyType
from typing import Literal, overload

from kiosk.domain.officers import OfficerList
from kiosk.domain.policy import Policy
from kiosk.domain.status import RiskLevels, StatusList
from kiosk.domain.trustlist import TrustList
from kiosk.domain.watchlist import Watchlist
from kiosk.errors import ConfigError


class DocumentError(ConfigError):
    """A down-synced document cannot be applied (a ValueError too)."""


def load_policy(body: bytes) -> Policy:
    """The policy a document sets; raises :class:`DocumentError` naming the bad key."""
    try:
        return Policy.from_json(body, source="policy document")
    except ConfigError as e:
        raise DocumentError(f"document 'policy' cannot be applied: {e}") from None


def load_trust_list(body: bytes, *, fetched_at: datetime | None = None) -> TrustList:
    """The trust list a document holds; raises :class:`DocumentError` unless a signer is usable."""
    try:
        trust_list = TrustList.from_json(body, fetched_at=fetched_at)
    except ConfigError as e:
        raise DocumentError(f"document 'trust_list' cannot be applied: {e}") from None
    if len(trust_list) == 0:
        # The loader skips unusable entries (real lists hold a few); a list of nothing but
        # those verifies no certificate at all, which is a publishing mistake, not a policy.
        raise DocumentError(
            f"document 'trust_list' cannot be applied: none of its {trust_list.skipped} "
            "entries is a usable document signer (each needs base64 kid and rawData holding a "
            "DER X.509 certificate with an EC or RSA key, certificateType 'DSC'); to stop "
            "accepting certificates, remove 'eu_dcc' from policy.accepted_kinds instead"
        )
    return trust_list


def load_watchlist(body: bytes) -> Watchlist:
    """The watchlist a document holds; raises :class:`DocumentError` naming the bad member."""
    try:
        return Watchlist.from_json(body)
    except ConfigError as e:
        raise DocumentError(f"document 'watchlist' cannot be applied: {e}") from None


def load_status(body: bytes) -> StatusList:
    """The status document (people's declarations and health status); raises
    :class:`DocumentError` naming the bad record and field."""
    try:
        return StatusList.from_json(body)
    except ConfigError as e:
        raise DocumentError(f"document 'status' cannot be applied: {e}") from None


def load_risk_levels(body: bytes) -> RiskLevels:
    """The commune risk levels; raises :class:`DocumentError` naming the bad commune."""
    try:
        return RiskLevels.from_json(body)
    except ConfigError as e:
        raise DocumentError(f"document 'risk_levels' cannot be applied: {e}") from None


def load_officers(body: bytes) -> OfficerList:
    """The named officers and their PINs' hashes; raises :class:`DocumentError` naming the
    bad officer and field (never a PIN)."""
    try:
        return OfficerList.from_json(body)
    except ConfigError as e:
        raise DocumentError(f"document 'officers' cannot be applied: {e}") from None


Applied = Policy | TrustList | Watchlist | StatusList | RiskLevels | OfficerList
"""A document as the kiosk applies it."""

_LOADERS: dict[str, Callable[[bytes], Applied]] = {
    "policy": load_policy, "watchlist": load_watchlist, "status": load_status,
    "risk_levels": load_risk_levels, "officers": load_officers}


@overload
def load(name: Literal["policy"], body: bytes, *,
         fetched_at: datetime | None = None) -> Policy: ...
@overload
def load(name: Literal["trust_list"], body: bytes, *,
         fetched_at: datetime | None = None) -> TrustList: ...
@overload
def load(name: Literal["watchlist"], body: bytes, *,
         fetched_at: datetime | None = None) -> Watchlist: ...
@overload
def load(name: Literal["status"], body: bytes, *,
         fetched_at: datetime | None = None) -> StatusList: ...
@overload
def load(name: Literal["risk_levels"], body: bytes, *,
         fetched_at: datetime | None = None) -> RiskLevels: ...
@overload
def load(name: Literal["officers"], body: bytes, *,
         fetched_at: datetime | None = None) -> OfficerList: ...
@overload
def load(name: str, body: bytes, *, fetched_at: datetime | None = None) -> Applied: ...


def load(name: str, body: bytes, *, fetched_at: datetime | None = None) -> Applied:
    """Document ``name`` as the kiosk applies it (``LiveChecker`` calls this)."""
    try:
        if name == "trust_list":
            return load_trust_list(body, fetched_at=fetched_at)
        if name in _LOADERS:
            return _LOADERS[name](body)
    except RecursionError:
        # json.loads of a few thousand nested brackets: an attack, not a document.
        raise DocumentError(f"document {name!r} cannot be applied: its JSON is nested too "
                            "deeply to be a document") from None
    raise DocumentError(f"unknown document {name!r}; use one of {', '.join(VALIDATORS)}")


def validate_policy(body: bytes) -> None:
    """Raise :class:`DocumentError` unless ``body`` is a policy document a kiosk can apply."""
    load_policy(body)


def validate_trust_list(body: bytes) -> None:
    """Raise :class:`DocumentError` unless ``body`` is a trust list with a usable signer."""
    load_trust_list(body)


def validate_watchlist(body: bytes) -> None:
    """Raise :class:`DocumentError` unless ``body`` is a watchlist document a kiosk can apply."""
    load_watchlist(body)


def validate(name: str, body: bytes) -> None:
    """Validate document ``name``; raises :class:`DocumentError` (also for an unknown name)."""
    load(name, body)


VALIDATORS: Mapping[str, Callable[[bytes], None]] = MappingProxyType({
    name: partial(validate, name)
    for name in ("policy", "trust_list", "watchlist", "status", "risk_levels", "officers")
})
