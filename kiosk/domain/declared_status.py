"""Declarations recorded at kiosks, folded into the status document the central publishes.

A person an officer declared on one kiosk's form (source ``declared``, with a document
number) must pass the declaration rule at the next kiosk once that kiosk has synced.  The
central keeps what the province imported (``status-doc build``, published as ``status``)
and the declared check-ins it received; :class:`DeclarationFolder` makes the published
document from both:

* each declaration becomes ``declared_at`` = the check-in's event time and
  ``declared_until`` = the Vietnam date of that time + the province's ``valid_days`` (the
  published policy's declaration rule; 3 days, the national platform's, without one);
* hashed exactly as every status record is (:func:`kiosk.domain.status.person_digest`, with
  the imported document's salt and ``kdf``), so a declaration of a person already in the
  import lands on that person's record;
* of two declarations of one person the one valid longer wins (then the later one), also
  against the imported record's own;
* a declaration already expired, or too far in the future to be a real time, is left out,
  and every record is checked with :func:`kiosk.domain.status.parse_facts`, so one odd row
  never stops the publication.

The central (``offline_queue.central.people``) imports nothing from ``kiosk``: it is handed
a folder where it is built, like the validators.  It passes the rows it stores after
ingest: the person key (the opened identifier) and the row's own columns.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from kiosk.domain.policy import DeclarationRule, Policy
from kiosk.domain.status import AHEAD, FIRST_CASE, VERSION, parse_facts, person_digest
from kiosk.domain.watchlist import (
    DEFAULT_KDF,
    MIN_SALT_BYTES,
    KdfParams,
    json_object,
    local_date,
    read_kdf,
)
from kiosk.errors import ConfigError

# Without a policy that says otherwise: the national platform's declaration code lasts 3 days.
DEFAULT_VALID_DAYS = DeclarationRule().valid_days
# A document made of declarations only (nothing imported) is fresh this long; the central
# republishes well before (offline_queue.central.people.REFRESH).
VALID_FOR = timedelta(hours=24)
# Digests kept between foldings (one Argon2id hash each, ~5 ms): a declaration is hashed
# once while the salt stays, not at every republication.
CACHE_SIZE = 500_000


@dataclass(frozen=True)
class Folded:
    """The document to publish and what went into it (counts only)."""

    body: bytes
    expires_at: datetime
    records: int
    declarations: int
    skipped: int
    valid_days: int


def valid_days_of(policy: bytes | None) -> int:
    """The declaration's validity the province set in its published policy (the default
    when there is none, or it cannot be read: the central's publish check refuses such a
    policy anyway)."""
    if not policy:
        return DEFAULT_VALID_DAYS
    try:
        return Policy.from_json(policy, source="policy document").rules.declaration.valid_days
    except (ConfigError, ValueError, RecursionError):
        return DEFAULT_VALID_DAYS


def _end(at: datetime | None, until: date | None, valid_days: int) -> date:
    """The last day a declaration counts at a kiosk (its rule checks both)."""
    ends = [d for d in (local_date(at + timedelta(days=valid_days)) if at else None, until)
            if d is not None]
    return min(ends) if ends else date.min


class DeclarationFolder:
    """Makes the status document from the import and the kiosks' declarations."""

    def __init__(self, *, valid_for: timedelta = VALID_FOR, cache_size: int = CACHE_SIZE
                 ) -> None:
        self.valid_for = valid_for
        self.cache_size = cache_size
        self._own_salt = secrets.token_bytes(MIN_SALT_BYTES)
        self._cache_key: tuple[bytes, KdfParams] | None = None
        self._digests: dict[str, str] = {}
        self.hashed = 0  # Argon2id hashes computed (tests and the bench read it)

    def _digest(self, number: str, salt: bytes, kdf: KdfParams) -> str:
        if self._cache_key != (salt, kdf):
            self._cache_key, self._digests = (salt, kdf), {}
        digest = self._digests.get(number)
        if digest is None:
            digest = person_digest(salt, number, kdf)
            self.hashed += 1
            if len(self._digests) >= self.cache_size:
                self._digests.clear()
            self._digests[number] = digest
        return digest

    def __call__(self, *, imported: bytes | None, policy: bytes | None,
                 declarations: Iterable[tuple[str, datetime, int | None]],
                 now: datetime) -> Folded:
        """``declarations``: (person key, declared at, birth year or None) of each declared
        check-in the central keeps (within its retention)."""
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        valid_days = valid_days_of(policy)
        if imported:
            # Checked by the status validator when the province published it.
            doc = cast(dict[str, Any], json_object(imported, "status"))
            salt, kdf = bytes.fromhex(doc["salt"]), read_kdf(doc, "status")
            records: list[dict[str, Any]] = list(doc["records"])
            expires_at = max(datetime.fromisoformat(doc["expires_at"]), now)
        else:
            salt, kdf, records = self._own_salt, DEFAULT_KDF, []
            expires_at = now + self.valid_for
        latest, dropped = self._latest(declarations, salt, kdf, valid_days, now)
        index = {h.lower(): i for i, record in enumerate(records) for h in record["h"]}
        skipped = 0
        for digest, (at, until, birth_year) in latest.items():
            i = index.get(digest)
            record: dict[str, Any] = dict(records[i]) if i is not None else {"h": [digest]}
            facts = {k: v for k, v in record.items() if k != "h"}
            old_at = parse_facts(facts, where="", now=now).declared_at if i is not None \
                and "declared_at" in facts else None
            old_until = date.fromisoformat(facts["declared_until"]) \
                if facts.get("declared_until") else None
            if i is not None and (old_at or old_until) and \
                    (_end(old_at, old_until, valid_days), old_at or at) >= (until, at):
                continue  # the import's own declaration is valid as long, or longer
            record["declared_at"], record["declared_until"] = at.isoformat(), until.isoformat()
            if birth_year is not None and record.get("birth_year") is None:
                record["birth_year"] = birth_year
            try:
                parse_facts({k: v for k, v in record.items() if k != "h"}, where="", now=now)
            except ConfigError:
                skipped += 1
                continue
            if i is None:
                records.append(record)
            else:
                records[i] = record
        body = json.dumps({"version": VERSION, "issued_at": now.isoformat(),
                           "expires_at": expires_at.isoformat(), "salt": salt.hex(),
                           "kdf": kdf.as_json(), "records": records},
                          separators=(",", ":"), ensure_ascii=False).encode()
        return Folded(body, expires_at, len(records), len(latest) - skipped,
                      skipped + dropped, valid_days)

    def _latest(self, declarations: Iterable[tuple[str, datetime, int | None]], salt: bytes,
                kdf: KdfParams, valid_days: int, now: datetime
                ) -> tuple[dict[str, tuple[datetime, date, int | None]], int]:
        """Per person (digest): the declaration valid longest, then the latest; and how
        many were left out (expired, or timed impossibly)."""
        today = local_date(now)
        latest: dict[str, tuple[datetime, date, int | None]] = {}
        dropped = 0
        for person_key, at, birth_year in declarations:
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            until = local_date(at + timedelta(days=valid_days))
            if not person_key or at > now + AHEAD or local_date(at) < FIRST_CASE \
                    or until < today or now - at > timedelta(days=valid_days):
                dropped += 1
                continue
            digest = self._digest(person_key, salt, kdf)
            known = latest.get(digest)
            if known is None or (until, at) > (known[1], known[0]):
                latest[digest] = (at, until, birth_year if known is None or birth_year
                                  else known[2])
        return latest, dropped
