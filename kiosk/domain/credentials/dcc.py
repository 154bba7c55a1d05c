"""EU Digital COVID Certificate (``HC1:``): the decoding chain and its offline verification.

``HC1:`` -> Base45 -> zlib -> COSE_Sign1 (CBOR tag 18, optionally inside CWT tag 61)
-> CWT claims (1 issuer, 4 expiry, 6 issued-at, -260/1 certificate JSON) -> schema 1.x.
:func:`parse` runs the chain without keys or clock (``recognise`` has neither);
:func:`verify` adds the signature, key-usage, expiry and DSC-validity checks once a
trust list and a validation time are known.  Every step is a named check: True,
False, or None when an earlier step failed.  The cryptography is ``cryptography``'s.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeGuard

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from kiosk.domain.credentials import dcc_schema
from kiosk.domain.credentials.base45 import b45decode
from kiosk.domain.credentials.identifiers import normalize as normalize_id
from kiosk.domain.credentials.masking import mask_id, mask_name
from kiosk.domain.model import Credential, Kind

if TYPE_CHECKING:
    from kiosk.domain.trustlist import DocumentSigner, TrustList

log = logging.getLogger(__name__)

PREFIX = "HC1:"
# A DCC inflates to a few kB; refuse zlib bombs long before they cost memory.
MAX_INFLATED = 64 * 1024
ALG_ES256 = -7
ALG_PS256 = -37
ALGORITHMS = {ALG_ES256: "ES256", ALG_PS256: "PS256"}
HEADER_ALG = 1
HEADER_KID = 4
MAX_UVCIS = 4
PARSE_STEPS = ("prefix", "base45", "zlib", "cose", "cwt", "schema")
VERIFY_STEPS = ("signer", "signature", "key_usage", "expiry", "dsc_validity")

# Decoded CBOR from the code: untrusted until checked, so every value is an ``object`` that
# must be narrowed (isinstance) before use.  A hostile code may put any CBOR value anywhere.
CborMap = dict[object, object]
# What a certificate field becomes in Credential.fields: a JSON scalar (see _plain).
Scalar = str | int | bool | None


@dataclass(frozen=True)
class CoseSign1:
    """The four parts of a COSE_Sign1 message, headers already decoded."""

    protected: bytes
    protected_header: CborMap
    unprotected_header: CborMap
    payload: bytes
    signature: bytes

    @property
    def kid(self) -> bytes | None:
        # The unprotected kid counts only when the protected header has none: it is not
        # covered by the signature (conformance vectors CO19-CO23).
        if HEADER_KID in self.protected_header:
            kid = self.protected_header[HEADER_KID]
        else:
            kid = self.unprotected_header.get(HEADER_KID)
        return kid if isinstance(kid, bytes) else None

    @property
    def alg(self) -> object:
        return self.protected_header.get(HEADER_ALG, self.unprotected_header.get(HEADER_ALG))

    def to_be_signed(self) -> bytes:
        return cbor2.dumps(["Signature1", self.protected, b"", self.payload])


@dataclass(frozen=True)
class DccEvidence:
    """What :func:`verify` needs later: the COSE message and the decoded claims."""

    cose: CoseSign1
    claims: CborMap = field(default_factory=dict)
    cert_type: str | None = None
    # The certificate (claim -260/1) as JSON sees it: what the schema checked (json_view).
    hcert: CborMap = field(default_factory=dict)


def looks_like(text: str) -> bool:
    # ``HC1:`` and its look-alikes (``HC2:``, ``HL0:``): route them here so that a wrong
    # context identifier is reported as such rather than as an unknown code.
    return len(text) > 4 and text[0] == "H" and text[3] == ":" and text[1:3].isalnum()


def _inflate(compressed: bytes) -> bytes:
    """zlib-inflate at most MAX_INFLATED bytes; zlib.error if the stream is cut or bigger."""
    inflater = zlib.decompressobj()
    raw = inflater.decompress(compressed, MAX_INFLATED)
    if inflater.unconsumed_tail or not inflater.eof:
        raise zlib.error("truncated stream or inflates past the size limit")
    return raw


def _cwt(payload: bytes) -> tuple[CborMap, CborMap]:
    """(CWT claims, the DCC in claim -260 key 1); ValueError or cbor2's errors if absent."""
    claims = cbor2.loads(payload)
    if not isinstance(claims, dict):
        raise ValueError("no -260 health certificate claim")
    health = claims.get(-260)
    if not isinstance(health, dict):
        raise ValueError("no -260 health certificate claim")
    hcert = health.get(1)
    if not isinstance(hcert, dict):
        raise ValueError("no DCC (key 1) in the health certificate claim")
    return claims, _json_map(hcert)


def _json_map(value: Mapping[object, object]) -> CborMap:
    return {k: json_view(v) for k, v in value.items()}


def json_view(value: object) -> object:
    """The certificate as JSON sees it: CBOR date-time tags become RFC 3339 text.

    The DCC specification lets an issuer send a date-time (``t/sc``) as CBOR tag 0 (RFC 3339
    text) or tag 1 (epoch seconds); cbor2 decodes both to an aware ``datetime``. Everything
    else is left as decoded, so a byte string where the schema wants text stays invalid.
    """
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, dict):
        return _json_map(value)
    if isinstance(value, list | tuple):
        return [json_view(v) for v in value]
    return value


def parse(text: str) -> Credential:
    """Run the decoding chain; never raises, every failure is a check and a problem."""
    checks: dict[str, bool | None] = dict.fromkeys(PARSE_STEPS + VERIFY_STEPS)
    problems: list[str] = []
    fields: dict[str, Scalar] = {}

    def fail(step: str) -> Credential:
        checks[step] = False
        problems.append(f"dcc_{step}_invalid")
        return Credential(kind=Kind.EU_DCC, fields=fields, checks=checks, problems=tuple(problems))

    if not text.startswith(PREFIX):
        return fail("prefix")
    checks["prefix"] = True
    try:
        compressed = b45decode(text[len(PREFIX) :])
    except ValueError:
        return fail("base45")
    checks["base45"] = True
    try:
        raw = _inflate(compressed)
    except zlib.error:
        return fail("zlib")
    checks["zlib"] = True
    try:
        cose = _cose(raw)
    except Exception as e:  # noqa: BLE001 - cbor2 raises many types on hostile input
        log.debug("COSE decoding failed: %s", type(e).__name__)
        return fail("cose")
    checks["cose"] = True
    fields["algorithm"] = _algorithm_name(cose.alg)
    fields["kid"] = cose.kid.hex() if cose.kid is not None else None
    try:
        claims, hcert = _cwt(cose.payload)
    except Exception as e:  # noqa: BLE001 - as for the COSE structure
        log.debug("CWT decoding failed: %s", type(e).__name__)
        return fail("cwt")
    checks["cwt"] = True
    fields.update(_claim_fields(claims))

    errors = dcc_schema.validate(hcert)
    checks["schema"] = not errors
    if errors:
        # Count only: the violations quote names and dates.
        log.debug("DCC schema: %d violation(s)", len(errors))
        problems.append("dcc_schema_invalid")
    cert_type, entry = _entry(hcert)
    fields.update(_hcert_fields(hcert, cert_type, entry))
    ci = entry.get("ci")
    uvci = ci if isinstance(ci, str) else None
    display = _display(hcert, uvci)
    # Every certificate id the group names (schemas before 1.3.0 allow several entries).
    # Every certificate id the group names (schemas before 1.3.0 allow several entries),
    # the judged one first; at most MAX_UVCIS, each costs the watchlist a hash per scan.
    others = [e.get("ci") for e in _entries(hcert, cert_type) if e is not entry]
    uvcis = {c for c in [uvci, *others] if isinstance(c, str) and c}
    uvcis = set(sorted(uvcis, key=lambda c: c != uvci)[:MAX_UVCIS])
    return Credential(
        kind=Kind.EU_DCC,
        person_key=uvci,
        display=display,
        fields=fields,
        checks=checks,
        problems=tuple(problems),
        # A UVCI names a certificate, not a person; it is what the central can list.
        identifiers=frozenset(("uvci", normalize_id(c)) for c in uvcis),
        evidence=DccEvidence(cose=cose, claims=claims, cert_type=cert_type, hcert=hcert),
    )


def _cose(raw: bytes) -> CoseSign1:
    obj = cbor2.loads(raw)
    # CO28 wraps the COSE_Sign1 (tag 18) in a CWT tag (61); both are optional.
    for tag in (61, 18):
        if isinstance(obj, cbor2.CBORTag):
            if obj.tag != tag:
                continue
            obj = obj.value
    # cbor2 decodes the content of a tag as immutable tuples and frozendicts.
    if not (isinstance(obj, list | tuple) and len(obj) == 4):
        raise ValueError("not a four-element COSE_Sign1 array")
    protected, unprotected, payload, signature = obj
    if not all(isinstance(x, bytes) for x in (protected, payload, signature)):
        raise ValueError("protected header, payload and signature must be byte strings")
    protected_header = cbor2.loads(protected) if protected else {}
    if not isinstance(protected_header, Mapping) or not isinstance(unprotected, Mapping):
        raise ValueError("headers must be maps")
    return CoseSign1(protected, dict(protected_header), dict(unprotected), payload, signature)


def _algorithm_name(alg: object) -> str:
    """ES256 or PS256, else the header's value as written: any CBOR value, an unhashable
    array or map too (a dictionary lookup raised TypeError on those)."""
    return next((name for number, name in ALGORITHMS.items() if alg == number), repr(alg))


def _timestamp(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC).isoformat()
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _claim_fields(claims: CborMap) -> dict[str, Scalar]:
    iss = claims.get(1)
    return {
        "issuer_country": iss if isinstance(iss, str) else None,
        "issued_at": _timestamp(claims.get(6)),
        "expires_at": _timestamp(claims.get(4)),
    }


# The date that orders a group's entries: the newest one is the one the policy judges.
ENTRY_DATE = {"vaccination": "dt", "test": "sc", "recovery": "fr"}


def _entries(hcert: CborMap, cert_type: str | None) -> list[CborMap]:
    key = next((k for k, name in dcc_schema.ENTRY_TYPES.items() if name == cert_type), None)
    entries = hcert.get(key) if key else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _entry(hcert: CborMap) -> tuple[str | None, CborMap]:
    """The certificate type and the entry the policy judges.

    Schemas before 1.3.0 allow several entries in a group (vector RO/2: dose 1/2 and dose
    2/2 in one certificate): the newest by its date counts, the later one on a tie or
    when a date is missing. ISO 8601 dates in one certificate compare as text.
    """
    for name in dcc_schema.ENTRY_TYPES.values():
        entries = _entries(hcert, name)
        if entries:
            date = ENTRY_DATE[name]

            def newest(item: tuple[int, CborMap], date: str = date) -> tuple[str, int]:
                value = item[1].get(date)
                return (value if isinstance(value, str) else "", item[0])

            return name, max(enumerate(entries), key=newest)[1]
    return None, {}


def _plain(value: object) -> Scalar:
    """Keep JSON scalars only: a hostile certificate must not break ``json.dumps``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return value
    return None


ENTRY_FIELDS = {
    "vaccination": {"tg": "target", "vp": "vaccine", "mp": "product", "ma": "manufacturer",
                    "dn": "dose_number", "sd": "total_doses", "dt": "vaccinated_on",
                    "co": "country", "is": "certificate_issuer"},
    "test": {"tg": "target", "tt": "test_type", "nm": "test_name", "ma": "test_device",
             "sc": "sampled_at", "tr": "test_result", "tc": "test_centre",
             "co": "country", "is": "certificate_issuer"},
    "recovery": {"tg": "target", "fr": "first_positive_on", "df": "valid_from",
                 "du": "valid_until", "co": "country", "is": "certificate_issuer"},
}  # fmt: skip


def _names(hcert: CborMap) -> CborMap:
    """The certificate's name group, or an empty one when it is missing or not a map."""
    nam = hcert.get("nam")
    return nam if isinstance(nam, dict) else {}


def _hcert_fields(hcert: CborMap, cert_type: str | None, entry: CborMap
                  ) -> dict[str, Scalar]:
    nam = _names(hcert)
    out: dict[str, Scalar] = {
        "schema_version": _plain(hcert.get("ver")),
        "certificate_type": cert_type,
        "uvci": _plain(entry.get("ci")),
        "family_name": _plain(nam.get("fn")),
        "given_name": _plain(nam.get("gn")),
        "family_name_icao": _plain(nam.get("fnt")),
        "given_name_icao": _plain(nam.get("gnt")),
        "birth_date": _plain(hcert.get("dob")),
    }
    for key, name in ENTRY_FIELDS.get(cert_type or "", {}).items():
        out[name] = _plain(entry.get(key))
    return out


def _display(hcert: CborMap, uvci: str | None) -> dict[str, str]:
    nam = _names(hcert)
    parts = [nam.get(k) or nam.get(k + "t") for k in ("fn", "gn")]
    name = " ".join(p for p in parts if isinstance(p, str)).replace("<", " ")
    display = {"name": mask_name(name)} if name.strip() else {}
    if uvci:
        display["id"] = mask_id(uvci)
    dob = hcert.get("dob")
    if isinstance(dob, str) and len(dob) >= 4 and dob[:4].isdigit():
        display["birth_year"] = dob[:4]
    return display


# --- verification -----------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    checks: dict[str, bool | None]
    reasons: tuple[str, ...]


def verify(evidence: DccEvidence, trust_list: TrustList | None, at: datetime) -> Verification:
    """Signature against the trust list (selected by kid), key usage, expiry, DSC validity."""
    checks: dict[str, bool | None] = dict.fromkeys(VERIFY_STEPS)
    reasons: list[str] = []
    checks["expiry"] = _expiry(evidence.claims, at, reasons)
    if trust_list is None:
        reasons.append("trust_list_missing")
        return Verification(checks, tuple(reasons))
    kid = evidence.cose.kid
    candidates = trust_list.signers_for(kid) if kid is not None else []
    checks["signer"] = bool(candidates)
    if not candidates:
        checks["signature"] = False
        reasons.append("dcc_signer_unknown")
        return Verification(checks, tuple(reasons))
    signer = next((s for s in candidates if _signature_ok(evidence.cose, s)), None)
    checks["signature"] = signer is not None
    if signer is None:
        reasons.append("dcc_signature_invalid")
        return Verification(checks, tuple(reasons))
    if evidence.cert_type is not None:
        allowed = signer.allowed_types
        checks["key_usage"] = allowed is None or evidence.cert_type in allowed
        if not checks["key_usage"]:
            reasons.append("dcc_key_usage")
    checks["dsc_validity"] = signer.valid_at(at)
    if not checks["dsc_validity"]:
        reasons.append("dcc_signer_expired")
    return Verification(checks, tuple(reasons))


def _is_time(value: object) -> TypeGuard[int | float]:
    """A CWT time claim: a number of seconds (CBOR's true/false are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _expiry(claims: CborMap, at: datetime, reasons: list[str]) -> bool:
    iat, exp = claims.get(6), claims.get(4)
    now = at.timestamp()
    if not (_is_time(iat) and _is_time(exp)):
        reasons.append("dcc_validity_missing")
        return False
    # Both ends inclusive, as the conformance vectors expect.
    if now < iat:
        reasons.append("dcc_not_yet_valid")
        return False
    if now > exp:
        reasons.append("dcc_expired")
        return False
    return True


def _signature_ok(cose: CoseSign1, signer: DocumentSigner) -> bool:
    key, alg, sig = signer.public_key, cose.alg, cose.signature
    data = cose.to_be_signed()
    try:
        if alg == ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            # COSE carries ECDSA signatures as raw r||s, not DER.
            if len(sig) != 64 or key.curve.name != "secp256r1":
                return False
            der = encode_dss_signature(
                int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            )
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == ALG_PS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(
                sig,
                data,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
            return True
    except (InvalidSignature, ValueError):
        return False
    return False
