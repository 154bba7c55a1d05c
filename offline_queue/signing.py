"""Signed documents: what the central signs and what a kiosk checks (docs/trust.md).

A document's body travels unchanged (the validators see the exact bytes the central
published); its signature travels beside it in three response headers:

- ``Checkpoint-Document-Version``: a whole number that only grows, per document name;
- ``Checkpoint-Signing-Key``: the fingerprint of the key that signed (SHA-256 of its 32
  raw Ed25519 bytes, hex);
- ``Checkpoint-Signature``: the Ed25519 signature, base64, over :func:`document_statement`:
  the document's name, version, ``Expires`` header and the SHA-256 of the body.

A new key is announced by a *rotation*: the new public key signed by the key before it
(``GET /v1/keys`` lists them), so a kiosk that pinned an old key follows the chain to the
new one without being enrolled again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION_HEADER = "Checkpoint-Document-Version"
KEY_HEADER = "Checkpoint-Signing-Key"
SIGNATURE_HEADER = "Checkpoint-Signature"
KEY_PREFIX = "ed25519:"
# What a signature is for: a document signature can never pass as a rotation or the reverse.
_DOCUMENT_CONTEXT = b"checkpoint-kiosk signed document v1\n"
_ROTATION_CONTEXT = b"checkpoint-kiosk key rotation v1\n"
MAX_VERSION = 2**63 - 1
MAX_ROTATIONS = 1000  # a chain longer than this is not the central's


class SignatureError(ValueError):
    """A document or a key rotation that must not be trusted; the text says why."""


def public_bytes(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of a public key (of a private key's public half)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def fingerprint(public: bytes) -> str:
    """A public key's fingerprint: SHA-256 of its 32 raw bytes, 64 hex digits."""
    return hashlib.sha256(public).hexdigest()


def key_text(public: bytes) -> str:
    """A public key as text: ``ed25519:`` and its raw bytes in base64."""
    return KEY_PREFIX + base64.b64encode(public).decode("ascii")


def parse_key(text: object, what: str = "central key") -> bytes:
    """The raw bytes of ``ed25519:<base64>``; SignatureError names what is wrong."""
    if not isinstance(text, str) or not text.startswith(KEY_PREFIX):
        raise SignatureError(f"{what} {_short(text)} is not a key; expected "
                             f"'{KEY_PREFIX}' and 32 bytes in base64")
    raw = _b64(text[len(KEY_PREFIX):], what)
    if len(raw) != 32:
        raise SignatureError(f"{what} has {len(raw)} bytes; an Ed25519 key has 32")
    return raw


def check_fingerprint(text: object, what: str = "central key fingerprint") -> str:
    """A fingerprint as given by a person or a QR: 64 hex digits (spaces and colons
    between groups allowed), returned in lower case without them."""
    cleaned = text.replace(":", "").replace(" ", "").lower() if isinstance(text, str) else ""
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise SignatureError(f"{what} {_short(text)} is not a key fingerprint; give the 64 "
                             "hex digits 'checkpoint-kiosk central key' prints")
    return cleaned


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise SignatureError(f"{what} is not valid base64") from None


def document_statement(name: str, version: int, expires: str | None, body: bytes) -> bytes:
    """The exact bytes a document signature covers."""
    return b"".join((_DOCUMENT_CONTEXT, name.encode(), b"\n", str(version).encode(), b"\n",
                     (expires or "").encode("latin-1", "replace"), b"\n",
                     hashlib.sha256(body).hexdigest().encode()))


def sign_document(private: Ed25519PrivateKey, name: str, version: int, body: bytes,
                  expires: str | None = None) -> dict[str, str]:
    """The response headers that carry a document's signature."""
    signature = private.sign(document_statement(name, version, expires, body))
    return {VERSION_HEADER: str(version), KEY_HEADER: fingerprint(public_bytes(private)),
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii")}


@dataclass(frozen=True)
class Envelope:
    """A document's signature as it arrived (not yet checked)."""

    version: int
    key: str  # the fingerprint of the key that says it signed
    signature: bytes
    expires: str | None  # the Expires header, covered by the signature


def read_envelope(headers: Mapping[str, str]) -> Envelope:
    """The signature headers of a response; SignatureError if missing or malformed."""
    version, key, signature = (headers.get(h) for h in (VERSION_HEADER, KEY_HEADER,
                                                         SIGNATURE_HEADER))
    if version is None and key is None and signature is None:
        raise SignatureError("the document is unsigned (no Checkpoint-Signature header); "
                             "refused")
    if not (version and version.isdigit() and len(version) <= 19
            and 0 < int(version) <= MAX_VERSION):
        raise SignatureError(f"the document's version {_short(version)} is not a whole "
                             "number from 1; refused")
    try:
        key = check_fingerprint(key, "signing key")
    except SignatureError as e:
        raise SignatureError(f"{e}; refused") from None
    raw = _b64(signature or "", "the document's signature")
    if len(raw) != 64:
        raise SignatureError(f"the document's signature has {len(raw)} bytes, not 64; refused")
    return Envelope(int(version), key, raw, headers.get("Expires"))


def verify_document(public: bytes, name: str, body: bytes, envelope: Envelope) -> None:
    """Raise SignatureError unless ``public`` signed exactly this name, version, expiry
    and body."""
    if envelope.key != fingerprint(public):
        raise SignatureError(f"the document is signed by key {envelope.key[:16]}…, not the "
                             f"pinned central key {fingerprint(public)[:16]}…; refused")
    statement = document_statement(name, envelope.version, envelope.expires, body)
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(envelope.signature, statement)
    except InvalidSignature:
        raise SignatureError("the signature does not match the document's bytes (changed "
                             "or cut in transit, or signed for another version); "
                             "refused") from None


# -- key rotation ----------------------------------------------------------------------------


def rotation_statement(previous: str, new_public: bytes, created_at: str) -> bytes:
    return b"".join((_ROTATION_CONTEXT, previous.encode(), b"\n", key_text(new_public).encode(),
                     b"\n", created_at.encode()))


@dataclass(frozen=True)
class Rotation:
    """``public_key`` replaces ``previous_key`` (fingerprint ``previous``), which signed this."""

    previous: str
    public_key: bytes
    created_at: str
    signature: bytes
    previous_key: bytes  # so a fingerprint from a provisioning QR finds its key


    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    def as_json(self) -> dict[str, str]:
        return {"previous": self.previous, "previous_key": key_text(self.previous_key),
                "public_key": key_text(self.public_key),
                "fingerprint": self.fingerprint, "created_at": self.created_at,
                "signature": base64.b64encode(self.signature).decode("ascii")}

    @classmethod
    def from_json(cls, value: object) -> Rotation:
        if not isinstance(value, Mapping):
            raise SignatureError(f"a key rotation must be an object, got {_short(value)}")
        created_at = value.get("created_at")
        if not isinstance(created_at, str) or len(created_at) > 64:
            raise SignatureError("a key rotation has no created_at text")
        previous = check_fingerprint(value.get("previous"), "previous key")
        previous_key = parse_key(value.get("previous_key"), "previous key")
        if fingerprint(previous_key) != previous:
            raise SignatureError(f"a key rotation's previous key is not {previous[:16]}…")
        return cls(previous, parse_key(value.get("public_key"), "rotated key"), created_at,
                   _b64(str(value.get("signature", "")), "a key rotation's signature"),
                   previous_key)


def sign_rotation(old: Ed25519PrivateKey, new_public: bytes, created_at: str) -> Rotation:
    previous = fingerprint(public_bytes(old))
    return Rotation(previous, new_public, created_at,
                    old.sign(rotation_statement(previous, new_public, created_at)),
                    public_bytes(old))


def key_of(fingerprint_: str, current: bytes, rotations: Sequence[Rotation]) -> bytes | None:
    """The public key with this fingerprint among a central's keys (current or earlier)."""
    if fingerprint(current) == fingerprint_:
        return current
    for r in rotations:
        if r.previous == fingerprint_:
            return r.previous_key
        if r.fingerprint == fingerprint_:
            return r.public_key
    return None


def follow_rotations(pinned: bytes, rotations: Sequence[Rotation], target: str) -> bytes:
    """The key with fingerprint ``target``, reached from ``pinned`` by rotations each signed
    by the key before it; SignatureError when there is no such chain."""
    if len(rotations) > MAX_ROTATIONS:
        raise SignatureError(f"the central lists {len(rotations)} key rotations; at most "
                             f"{MAX_ROTATIONS} are believed")
    key, seen = pinned, {fingerprint(pinned)}
    while fingerprint(key) != target:
        current = fingerprint(key)
        step = next((r for r in rotations if r.previous == current
                     and r.fingerprint not in seen), None)
        if step is None:
            raise SignatureError(f"no key rotation signed by the pinned key {current[:16]}… "
                                 f"leads to key {target[:16]}…; refused (an unknown key)")
        try:
            Ed25519PublicKey.from_public_bytes(key).verify(
                step.signature, rotation_statement(step.previous, step.public_key,
                                                   step.created_at))
        except InvalidSignature:
            raise SignatureError(f"the rotation to key {step.fingerprint[:16]}… is not signed "
                                 f"by key {current[:16]}…; refused") from None
        key = step.public_key
        seen.add(fingerprint(key))
    return key


def read_keys(value: object) -> tuple[bytes, list[Rotation]]:
    """The current key and the rotations of a ``GET /v1/keys`` answer."""
    if not isinstance(value, Mapping):
        raise SignatureError("the central's key list is not a JSON object")
    current = parse_key(value.get("public_key"), "the central's current key")
    rotations = value.get("rotations") or []
    if not isinstance(rotations, list) or len(rotations) > MAX_ROTATIONS:
        raise SignatureError("the central's key rotations are not a list of at most "
                             f"{MAX_ROTATIONS}")
    return current, [Rotation.from_json(r) for r in rotations]
