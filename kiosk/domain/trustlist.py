"""Document-signer certificates (DSCs) for EU DCC signatures, in the EU gateway's JSON shape.

``[{"kid": base64(8 bytes), "country": "VN", "certificateType": "DSC",
"rawData": base64(DER X.509)}, ...]``.  The caller says when the document was fetched
so the policy can refuse a stale list instead of passing people silently.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

# Extended-key-usage OIDs limiting what a DSC may sign.  The EU spec lists both the
# ``1.3.6.1.4.1.1847`` and the ``1.3.6.1.4.1.0.1847`` arcs; the conformance vectors use
# the latter and issuers used both.
KEY_USAGE_OIDS: dict[str, str] = {}
for _arc in ("1.3.6.1.4.1.1847.2021.1", "1.3.6.1.4.1.0.1847.2021.1"):
    KEY_USAGE_OIDS[f"{_arc}.1"] = "test"
    KEY_USAGE_OIDS[f"{_arc}.2"] = "vaccination"
    KEY_USAGE_OIDS[f"{_arc}.3"] = "recovery"


@dataclass(frozen=True)
class DocumentSigner:
    """One DSC: its key, validity and the certificate types it may sign (None = all)."""

    kid: bytes
    country: str
    public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    not_before: datetime
    not_after: datetime
    allowed_types: frozenset[str] | None

    def valid_at(self, at: datetime) -> bool:
        return self.not_before <= at <= self.not_after

    @classmethod
    def from_der(cls, der: bytes, *, kid: bytes, country: str = "") -> DocumentSigner:
        """Load a DSC; raises ValueError when the certificate or its key is unusable."""
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise ValueError(f"DSC key type {type(key).__name__} cannot sign a DCC")
        return cls(
            kid=kid,
            country=country,
            public_key=key,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            allowed_types=_allowed_types(cert, der),
        )


def _allowed_types(cert: x509.Certificate, der: bytes) -> frozenset[str] | None:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        oids = [o.dotted_string for o in eku]
    except x509.ExtensionNotFound:
        return None
    except ValueError:
        # Some DSCs in the field are not strict DER and ``cryptography`` refuses their
        # extensions; look for the DCC OIDs in the raw bytes so a restriction that is
        # there is still honoured (payloads.md: parse leniently).
        oids = [oid for oid in KEY_USAGE_OIDS if _oid_der(oid) in der]
    types = frozenset(KEY_USAGE_OIDS[o] for o in oids if o in KEY_USAGE_OIDS)
    return types or None


def _oid_der(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(chunk))
    return bytes([0x06, len(body)]) + bytes(body)


class TrustList:
    """The DSCs a kiosk trusts, looked up by ``kid``, with the time the list was fetched."""

    def __init__(
        self,
        signers: Iterable[DocumentSigner],
        *,
        fetched_at: datetime | None = None,
        skipped: int = 0,
    ) -> None:
        self._by_kid: dict[bytes, list[DocumentSigner]] = {}
        for signer in signers:
            self._by_kid.setdefault(signer.kid, []).append(signer)
        if fetched_at is not None and fetched_at.tzinfo is None:
            fetched_at = fetched_at.replace(tzinfo=UTC)
        self.fetched_at = fetched_at
        self.skipped = skipped

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_kid.values())

    def __iter__(self) -> Iterator[DocumentSigner]:
        for signers in self._by_kid.values():
            yield from signers

    def signers_for(self, kid: bytes) -> list[DocumentSigner]:
        return list(self._by_kid.get(kid, ()))

    def age(self, at: datetime) -> timedelta | None:
        """How old the list is at ``at``; None when nobody said when it was fetched."""
        return None if self.fetched_at is None else at - self.fetched_at

    def is_stale(self, at: datetime, max_age: timedelta) -> bool:
        """Stale when older than ``max_age``, of unknown age, or fetched in the future."""
        age = self.age(at)
        return age is None or age > max_age or age < -timedelta(minutes=5)

    @classmethod
    def from_json(cls, data: bytes | str, *, fetched_at: datetime | None = None) -> TrustList:
        """Parse the gateway JSON; unusable entries are skipped with a warning.

        Raises :class:`ConfigError` when the document is not a JSON array of objects.
        """
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise ConfigError(
                f"trust list is not valid JSON ({e}); expected the EU gateway's array of "
                "{kid, country, certificateType, rawData} objects"
            ) from e
        if not isinstance(doc, list):
            raise ConfigError(
                f"trust list is a JSON {type(doc).__name__}, expected an array of "
                "{kid, country, certificateType, rawData} objects"
            )
        signers, skipped = [], 0
        for i, entry in enumerate(doc):
            try:
                signers.append(_entry(entry))
            except (ValueError, TypeError, KeyError) as e:
                skipped += 1
                log.warning("trust list entry %d skipped: %s", i, e)
        return cls(signers, fetched_at=fetched_at, skipped=skipped)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, fetched_at: datetime | None = None
    ) -> TrustList:
        """Read a trust-list file; its age is the file's mtime unless ``fetched_at`` is given."""
        path = Path(path)
        try:
            data = path.read_bytes()
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        except OSError as e:
            raise ConfigError(f"cannot read the trust list {str(path)!r}: {e.strerror}") from e
        try:
            return cls.from_json(data, fetched_at=fetched_at or mtime)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e


def _entry(entry: Any) -> DocumentSigner:
    if not isinstance(entry, dict):
        raise TypeError(f"entry is a {type(entry).__name__}, not an object")
    kind = entry.get("certificateType", "DSC")
    if kind != "DSC":
        raise ValueError(f"certificateType {kind!r} is not 'DSC'")
    try:
        kid = base64.b64decode(entry["kid"], validate=True)
        der = base64.b64decode(entry["rawData"], validate=True)
    except (binascii.Error, TypeError) as e:
        raise ValueError(f"kid or rawData is not base64: {e}") from e
    return DocumentSigner.from_der(der, kid=kid, country=str(entry.get("country", "")))


def kid_of(der: bytes) -> bytes:
    """The DCC key id of a certificate: the first 8 bytes of SHA-256 over its DER."""
    return hashlib.sha256(der).digest()[:8]


def build_json(certificates: Iterable[tuple[bytes, str]]) -> bytes:
    """Gateway-shaped trust list from ``(der, country)`` pairs (server tooling and tests)."""
    return json.dumps(
        [
            {
                "kid": base64.b64encode(kid_of(der)).decode(),
                "country": country,
                "certificateType": "DSC",
                "rawData": base64.b64encode(der).decode(),
            }
            for der, country in certificates
        ]
    ).encode()
