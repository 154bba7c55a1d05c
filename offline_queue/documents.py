"""Down-synced documents the decision needs: policy, trust list, watchlist, the status of
people (declarations, vaccination, tests, recovery), the commune risk levels and the named
officers (who may open the officer panel, each with a PIN of their own)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

# Formats agreed with the credentials engineer; the queue stores them as opaque bytes
# and only checks that they are JSON of the right outer shape before applying them.
DOCUMENT_NAMES = ("policy", "trust_list", "watchlist", "status", "risk_levels", "officers")
_OUTER_TYPE = {"policy": dict, "trust_list": list, "watchlist": dict, "status": dict,
               "risk_levels": dict, "officers": dict}


@dataclass(frozen=True)
class Document:
    name: str
    body: bytes
    etag: str | None
    fetched_at: datetime
    expires_at: datetime | None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def check_name(name: str) -> str:
    if name not in DOCUMENT_NAMES:
        raise ValueError(f"unknown document {name!r}; use one of {', '.join(DOCUMENT_NAMES)}")
    return name


def validate(name: str, body: bytes) -> None:
    """Raise ValueError unless ``body`` is JSON with the outer type ``name`` needs."""
    check_name(name)
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"document {name!r} is not valid JSON: {e}") from e
    expected = _OUTER_TYPE[name]
    if not isinstance(value, expected):
        wanted = "object" if expected is dict else "array"
        raise ValueError(f"document {name!r} must be a JSON {wanted}, got {type(value).__name__}")


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
