"""Sealed identities: what a kiosk writes instead of a document number (docs/privacy.md).

A kiosk seals each check-in's identity (its ``person_key``, and an override reason that
holds a digit) to the central's X25519 *sealing key* before the row touches its disk; only
the central, which holds the private key, can open it.  The construction is hybrid
public-key encryption from ``cryptography``'s primitives (RFC 9180's shape, not its wire
format, which needs cryptography >= 45):

- a *session*: the kiosk makes an ephemeral X25519 key pair in memory (at each start of the
  store, and again every :data:`SESSION_ROWS` rows), computes the shared secret with the
  central's public key, derives a ChaCha20-Poly1305 key with HKDF-SHA256 (salt: both public
  keys) and forgets the ephemeral private key.  The derived key lives in RAM only;
- each identity: ChaCha20-Poly1305 with a random 96-bit nonce, the check-in's id and device
  as associated data (a sealed identity cannot be moved to another row);
- the text: ``seal1.<key id>.<ephemeral public key>.<nonce + ciphertext>`` (base64url).

One Diffie-Hellman per session rather than per row keeps the central's opening cheap: it
caches the derived key per (key id, ephemeral key), so a batch of 500 rows of one session
costs one X25519 and 500 AEAD openings (measured: docs/privacy.md).

The central's sealing public key reaches the kiosk signed by the central's pinned Ed25519
document-signing key (:func:`sealing_statement`), so a man in the middle cannot give a
kiosk his own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = "seal1"
KEY_PREFIX = "x25519:"
_INFO = b"checkpoint-kiosk seal v1"
_AAD = b"checkpoint-kiosk sealed identity v1\n"
_STATEMENT = b"checkpoint-kiosk sealing key v1\n"
KEY_ID_HEX = 16
NONCE = 12
# A session key seals at most this many rows: far below ChaCha20-Poly1305's random-nonce
# bound (2^32 messages), and a new session bounds what one RAM snapshot could open.
SESSION_ROWS = 100_000
# Fields an identity may carry, and their longest (the wire's limits).
IDENTITY_FIELDS = {"person_key": 256, "override_reason": 1000}
_IDENTITY_NAMES = frozenset(IDENTITY_FIELDS)
MAX_SEALED = 2048  # characters of sealed text (a 1000-character reason sealed is ~1.4 k)


class SealError(ValueError):
    """A sealed identity that cannot be opened, or a sealing key not to trust; says why."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealError(f"the sealed identity's {what} is not base64url") from None


def raw_public(key: X25519PublicKey | X25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public: bytes) -> str:
    """A sealing key's id: the first 16 hex digits of SHA-256 of its 32 raw bytes."""
    return hashlib.sha256(public).hexdigest()[:KEY_ID_HEX]


def key_text(public: bytes) -> str:
    return KEY_PREFIX + base64.b64encode(public).decode("ascii")


def parse_key(text: object, what: str = "sealing key") -> bytes:
    """The 32 raw bytes of ``x25519:<base64>``; SealError says what is wrong."""
    if not isinstance(text, str) or not text.startswith(KEY_PREFIX):
        raise SealError(f"{what} {str(text)[:60]!r} is not a key; expected '{KEY_PREFIX}' "
                        "and 32 bytes in base64")
    try:
        raw = base64.b64decode(text[len(KEY_PREFIX):].encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SealError(f"{what} is not valid base64") from None
    if len(raw) != 32:
        raise SealError(f"{what} has {len(raw)} bytes; an X25519 key has 32")
    return raw


def aad_for(checkin_id: str, device_id: str) -> bytes:
    """The associated data of a row's sealed identity: its id and device."""
    return f"{checkin_id}\n{device_id}".encode()


def _derive(shared: bytes, ephemeral: bytes, recipient: bytes) -> ChaCha20Poly1305:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient,
               info=_INFO).derive(shared)
    return ChaCha20Poly1305(key)


def needs_sealing(reason: str | None) -> bool:
    """An override reason is sealed when it holds a digit: every document number does
    (CCCD, CMND, passport, BHYT, UVCI), the officer panel's reason codes do not."""
    return bool(reason) and any(c.isdigit() for c in reason or "")


# -- the signed public key ------------------------------------------------------------------


@dataclass(frozen=True)
class SealingKey:
    """The central's sealing public key as a kiosk trusts it."""

    public: bytes
    created_at: str

    @property
    def id(self) -> str:
        return key_id(self.public)

    def as_json(self) -> dict[str, str]:
        return {"public_key": key_text(self.public), "key_id": self.id,
                "created_at": self.created_at}

    @classmethod
    def from_json(cls, value: Any) -> SealingKey:
        if not isinstance(value, Mapping):
            raise SealError("the sealing key is not a JSON object")
        created = value.get("created_at")
        if not isinstance(created, str) or len(created) > 64:
            raise SealError("the sealing key has no created_at text")
        key = cls(parse_key(value.get("public_key")), created)
        if value.get("key_id") not in (None, key.id):
            raise SealError(f"the sealing key's key_id {str(value.get('key_id'))[:20]!r} is "
                            f"not its own ({key.id})")
        return key


def sealing_statement(key: SealingKey) -> bytes:
    """The exact bytes the central's signing key signs to vouch for a sealing key."""
    return b"".join((_STATEMENT, key_text(key.public).encode(), b"\n", key.id.encode(), b"\n",
                     key.created_at.encode()))


def read_signed_key(value: Any) -> tuple[SealingKey, str, bytes]:
    """(key, fingerprint of the signing key that vouches, signature) of a ``sealing_key``
    member of ``GET /v1/keys``; SealError when malformed."""
    if not isinstance(value, Mapping):
        raise SealError("the central's key list has no sealing_key object")
    key = SealingKey.from_json(value)
    signer = value.get("signed_by")
    if not isinstance(signer, str) or len(signer) != 64:
        raise SealError("the sealing key names no signing key (signed_by)")
    signature = value.get("signature")
    try:
        raw = base64.b64decode(str(signature).encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SealError("the sealing key's signature is not base64") from None
    if len(raw) != 64:
        raise SealError(f"the sealing key's signature has {len(raw)} bytes, not 64")
    return key, signer.lower(), raw


def verify_signed_key(signing_public: bytes, key: SealingKey, signature: bytes) -> None:
    """SealError unless ``signing_public`` (the pinned Ed25519 key) signed ``key``."""
    try:
        Ed25519PublicKey.from_public_bytes(signing_public).verify(signature,
                                                                  sealing_statement(key))
    except InvalidSignature:
        raise SealError(f"the sealing key {key.id} is not signed by the pinned central key; "
                        "refused (a substituted key?)") from None


# -- the kiosk's side -------------------------------------------------------------------------


class Sealer:
    """Seals identities to one central key with a session key held in RAM only."""

    def __init__(self, key: SealingKey) -> None:
        self.key = key
        self._lock = threading.Lock()
        self._new_session()

    def _new_session(self) -> None:
        ephemeral = X25519PrivateKey.generate()
        self._ephemeral = raw_public(ephemeral)
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.key.public))
        self._aead = _derive(shared, self._ephemeral, self.key.public)
        self._used = 0
        self._head = f"{PREFIX}.{self.key.id}.{_b64url(self._ephemeral)}."

    def seal(self, identity: Mapping[str, str], aad: bytes) -> str:
        """The sealed text of ``identity`` (field -> text, :data:`IDENTITY_FIELDS`)."""
        plain = json.dumps(dict(identity), ensure_ascii=False, sort_keys=True,
                           separators=(",", ":")).encode()
        with self._lock:
            if self._used >= SESSION_ROWS:
                self._new_session()
            self._used += 1
            nonce = os.urandom(NONCE)
            return self._head + _b64url(nonce + self._aead.encrypt(nonce, plain, _AAD + aad))


# -- the central's side -------------------------------------------------------------------------


def sealed_key_id(text: str) -> str | None:
    """The key id a sealed text names (for a report), None if it names none."""
    parts = text.split(".") if isinstance(text, str) else []
    return parts[1][:KEY_ID_HEX] if len(parts) == 4 and parts[0] == PREFIX else None


class Opener:
    """Opens sealed identities with the central's private keys (current and earlier ones);
    caches each session's AEAD object (bounded), keyed on the session's text as the rows
    carry it, so a batch of one kiosk session costs one X25519, one key derivation and one
    AEAD object, and each row no more than its own base64 and AEAD opening."""

    CACHE = 4096

    def __init__(self, private_keys: Mapping[str, X25519PrivateKey]) -> None:
        self._keys = dict(private_keys)
        # (key id, ephemeral key as base64url text) -> the session's AEAD
        self._sessions: OrderedDict[tuple[str, str], ChaCha20Poly1305] = OrderedDict()
        self._lock = threading.Lock()
        self.derived = 0  # sessions derived (an X25519 each): tests and benches read it

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def _session(self, kid: str, ephemeral_text: str) -> ChaCha20Poly1305:
        with self._lock:
            aead = self._sessions.get((kid, ephemeral_text))
            if aead is not None:
                self._sessions.move_to_end((kid, ephemeral_text))
                return aead
        private = self._keys.get(kid)
        if private is None:
            if len(kid) != KEY_ID_HEX or any(c not in "0123456789abcdef" for c in kid):
                raise SealError("the sealed identity's key id is not 16 hex digits")
            known = ", ".join(self._keys) or "none"
            raise SealError(f"sealed to key {kid!r}, which this central does not hold (it holds "
                            f"{known}); restore that key's file from the backup, then run "
                            "'checkpoint-kiosk central reopen'")
        ephemeral = _unb64url(ephemeral_text, "ephemeral key")
        if len(ephemeral) != 32:
            raise SealError(f"the sealed identity's ephemeral key has {len(ephemeral)} bytes, "
                            "not 32 (cut short?)")
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
        except ValueError:  # a low-order point gives an all-zero secret
            raise SealError("the sealed identity's ephemeral key is invalid") from None
        aead = _derive(shared, ephemeral, raw_public(private))
        with self._lock:
            self.derived += 1
            self._sessions[(kid, ephemeral_text)] = aead
            while len(self._sessions) > self.CACHE:
                self._sessions.popitem(last=False)
        return aead

    def open(self, text: object, aad: bytes) -> dict[str, str]:
        """The identity fields sealed in ``text`` for the row ``aad`` names; SealError says
        why not (malformed, cut, unknown key, changed, or moved from another row)."""
        if not isinstance(text, str) or len(text) > MAX_SEALED:
            raise SealError("the sealed identity is not text of at most "
                            f"{MAX_SEALED} characters")
        parts = text.split(".")
        if len(parts) != 4 or parts[0] != PREFIX:
            raise SealError(f"the sealed identity does not start with '{PREFIX}.' and have "
                            "four parts (cut short or not sealed by a kiosk)")
        # The key id and the ephemeral key are checked when the session is first derived
        # (a cached session's text was checked then: the same text, the same key).
        aead = self._session(parts[1], parts[2])
        body = _unb64url(parts[3], "ciphertext")
        if len(body) < NONCE + 16:
            raise SealError(f"the sealed identity's ciphertext has {len(body)} bytes, too "
                            "short to hold a nonce and a tag (cut short?)")
        try:
            plain = aead.decrypt(body[:NONCE], body[NONCE:], _AAD + aad)
        except InvalidTag:
            raise SealError("the sealed identity does not open: changed in transit or on "
                            "disk, or moved from another check-in") from None
        try:
            value = json.loads(plain)
        except ValueError:
            raise SealError("the sealed identity opened but is not JSON") from None
        if not isinstance(value, dict) or not set(value) <= _IDENTITY_NAMES or not all(
                isinstance(v, str) and len(v) <= IDENTITY_FIELDS[k] for k, v in value.items()):
            raise SealError("the sealed identity opened but holds unexpected fields")
        return value
