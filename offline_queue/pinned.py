"""The kiosk's side of signed documents: the central key it pins and the versions in force.

Kept in the queue database's ``sync_meta`` (the sync worker owns it and may write it):

- ``central_key``: the pinned key now (``ed25519:<base64>``), after any rotation;
- ``central_key_anchor``: where that pin started: the key provisioning wrote into the
  config (``sync.central_key``), or ``tofu`` when the kiosk had none (an upgrade);
- ``central_key_warning``: why the pin deserves a look (trusted on first use);
- ``document_versions``: JSON ``{name: version}`` of the documents in force;
- ``document_errors``: JSON ``[[name, why], ...]`` of the last pull, for ``status``.

A new anchor in the config (the kiosk was provisioned again) starts over from it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from offline_queue.outbox import Outbox
from offline_queue.signing import (
    Rotation,
    SignatureError,
    fingerprint,
    follow_rotations,
    key_text,
    parse_key,
    read_keys,
)

log = logging.getLogger(__name__)

TOFU = "tofu"
TOFU_WARNING = ("the central's signing key {fp} was trusted on first use (this kiosk was "
                "enrolled before documents were signed); re-provision it with the central's "
                "key fingerprint to make sure it is the right central")


class PinnedKey:
    """Which key a document must be signed by, following rotations the pinned key signed.

    ``anchor`` is the config's ``sync.central_key`` (None: not provisioned with one).
    ``fetch_keys`` returns the central's ``GET /v1/keys`` answer (parsed JSON).
    """

    def __init__(self, outbox: Outbox, anchor: str | None,
                 fetch_keys: Callable[[], object]) -> None:
        self.outbox = outbox
        self.anchor = anchor or None
        self.fetch_keys = fetch_keys
        self._keys: tuple[bytes, list[Rotation]] | None = None  # one fetch per pull
        self._answer: object = None  # the raw answer of that fetch
        if self.anchor is not None:
            parse_key(self.anchor, "sync.central_key")  # a bad config stops start-up

    def begin_pull(self) -> None:
        self._keys = None
        self._answer = None

    def answer(self) -> object:
        """The central's ``GET /v1/keys`` answer of this pull (fetched once per pull)."""
        self._central_keys()
        return self._answer

    def _meta(self) -> dict[str, str]:
        return self.outbox.meta()

    def pinned(self) -> bytes | None:
        """The key documents must be signed by now; None before any pin."""
        meta = self._meta()
        stored = self._stored(meta.get("central_key"))
        if self.anchor is None:
            return stored if meta.get("central_key_anchor") == TOFU else None
        if stored is not None and meta.get("central_key_anchor") == self.anchor:
            return stored
        # Provisioned (again): start from the config's key, with no version in force.
        self.outbox.set_meta(central_key=self.anchor, central_key_anchor=self.anchor,
                             central_key_warning=None, document_versions=None)
        return parse_key(self.anchor)

    @staticmethod
    def _stored(text: str | None) -> bytes | None:
        """The pin kept in the database; None (with a warning) if it was damaged: the
        kiosk then starts again from the config's key, or pins on first use."""
        if not text:
            return None
        try:
            return parse_key(text)
        except SignatureError as e:
            log.warning("sync: the pinned central key in the queue database is unreadable "
                        "(%s); starting again from the configured key", e)
            return None

    def warning(self) -> str | None:
        return self._meta().get("central_key_warning")

    def _central_keys(self) -> tuple[bytes, list[Rotation]]:
        if self._keys is None:
            answer = self.fetch_keys()
            self._keys = read_keys(answer)
            self._answer = answer
        return self._keys

    def key_for(self, signer: str) -> bytes:
        """The key a document signed by fingerprint ``signer`` is checked against: the
        pinned one, a rotation of it (then pinned), or on first use the central's own."""
        pinned = self.pinned()
        if pinned is not None and fingerprint(pinned) == signer:
            return pinned
        current, rotations = self._central_keys()
        if pinned is None:
            if fingerprint(current) != signer:
                raise SignatureError(f"the document is signed by key {signer[:16]}…, not the "
                                     f"central's current key {fingerprint(current)[:16]}…; "
                                     "refused")
            warning = TOFU_WARNING.format(fp=fingerprint(current))
            self.outbox.set_meta(central_key=key_text(current), central_key_anchor=TOFU,
                                 central_key_warning=warning)
            log.warning("sync: %s", warning)
            return current
        new = follow_rotations(pinned, rotations, signer)
        self.outbox.set_meta(central_key=key_text(new))
        log.info("sync: the central rotated its signing key %s… -> %s…; pinned the new key",
                 fingerprint(pinned)[:16], signer[:16])
        return new

    def versions(self) -> dict[str, int]:
        try:
            value = json.loads(self._meta().get("document_versions") or "{}")
        except ValueError:
            return {}
        return {k: v for k, v in value.items() if isinstance(v, int)} \
            if isinstance(value, dict) else {}

    def record(self, versions: dict[str, int], errors: tuple[tuple[str, str], ...]) -> None:
        """The versions now in force and the refusals of this pull (``status`` reads them);
        written only when they changed (an SD card wears)."""
        values = {
            "document_versions": json.dumps(versions, sort_keys=True) if versions else None,
            "document_errors": json.dumps([list(e) for e in errors], ensure_ascii=False)
            if errors else None}
        meta = self._meta()
        if any(meta.get(k) != v for k, v in values.items()):
            self.outbox.set_meta(**values)
