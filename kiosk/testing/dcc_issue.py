"""Issue EU DCCs and document-signer certificates: for tests, the bench and demos.

The kiosk only verifies; this is the other side, kept small and built on the same
libraries, so tests can sign synthetic certificates with keys they make themselves.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import cast

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from kiosk.domain.credentials.base45 import b45encode
from kiosk.domain.credentials.dcc import ALG_ES256, ALG_PS256, HEADER_ALG, HEADER_KID
from kiosk.domain.credentials.dcc_schema import HCert
from kiosk.domain.trustlist import kid_of

EKU_OIDS = {
    "test": "1.3.6.1.4.1.1847.2021.1.1",
    "vaccination": "1.3.6.1.4.1.1847.2021.1.2",
    "recovery": "1.3.6.1.4.1.1847.2021.1.3",
}
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def make_dsc(
    key: PrivateKey,
    *,
    country: str = "VN",
    not_before: datetime,
    not_after: datetime,
    types: tuple[str, ...] = (),
) -> bytes:
    """A self-signed DSC (DER); ``types`` adds the DCC extended-key-usage OIDs."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.COMMON_NAME, f"DSC test {country}"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if types:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(EKU_OIDS[t]) for t in types]),
            critical=False,
        )
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.DER)


def sign(
    hcert: HCert,
    key: PrivateKey,
    *,
    dsc: bytes,
    issued_at: datetime,
    expires_at: datetime,
    issuer: str = "VN",
    kid_in: str = "protected",
    kid: bytes | None = None,
) -> bytes:
    """A COSE_Sign1 (tag 18) over the CWT claims; ES256 for EC keys, PS256 for RSA."""
    kid = kid_of(dsc) if kid is None else kid
    alg = ALG_ES256 if isinstance(key, ec.EllipticCurvePrivateKey) else ALG_PS256
    protected_map: dict[int, int | bytes] = {HEADER_ALG: alg}
    unprotected: dict[int, int | bytes] = {}
    (protected_map if kid_in == "protected" else unprotected)[HEADER_KID] = kid
    protected = cbor2.dumps(protected_map)
    claims = {
        1: issuer,
        4: int(expires_at.timestamp()),
        6: int(issued_at.timestamp()),
        -260: {1: hcert},
    }
    payload = cbor2.dumps(claims)
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(
            to_sign, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )  # fmt: skip
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))


def encode(cose: bytes) -> str:
    """COSE bytes -> the ``HC1:`` text a QR code carries."""
    return "HC1:" + b45encode(zlib.compress(cose, 9))


def vaccination(
    *,
    family: str = "Nguyễn",
    given: str = "Văn An",
    dob: str = "1985-07-14",
    dose: int = 2,
    doses: int = 2,
    date: str = "2022-01-10",
    uvci: str = "URN:UVCI:01:VN:TEST0000000001#X",
) -> HCert:
    """A schema 1.3.0 vaccination certificate for a synthetic person."""
    return {
        "ver": "1.3.0",
        "nam": {"fn": family, "fnt": "NGUYEN", "gn": given, "gnt": "VAN<AN"},
        "dob": dob,
        "v": [
            {
                "tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528",
                "ma": "ORG-100030215", "dn": dose, "sd": doses, "dt": date, "co": "VN",
                "is": "Ministry of Health", "ci": uvci,
            }
        ],
    }  # fmt: skip


def test_result(
    *, sampled: str | datetime | cbor2.CBORTag = "2022-06-01T08:00:00Z",
    result: str = "260415000", uvci: str = "URN:UVCI:01:VN:TEST0000000002#X",
) -> HCert:  # fmt: skip
    """A test certificate; ``sampled`` may also be a CBOR date-time (tag 0 or 1, decoded as a
    datetime) or another tag, which the decoder's JSON view turns into text or refuses."""
    return cast(HCert, {
        "ver": "1.3.0",
        "nam": {"fn": "Lê", "fnt": "LE", "gn": "Thị Hạnh", "gnt": "THI<HANH"},
        "dob": "1990-03-02",
        "t": [
            {
                "tg": "840539006", "tt": "LP6464-4", "nm": "PCR", "sc": sampled, "tr": result,
                "tc": "Test centre", "co": "VN", "is": "Ministry of Health", "ci": uvci,
            }
        ],
    })  # fmt: skip


def recovery(
    *, first: str = "2022-03-01", valid_from: str = "2022-03-12", valid_until: str = "2022-08-28",
    uvci: str = "URN:UVCI:01:VN:TEST0000000003#X",
) -> HCert:  # fmt: skip
    return {
        "ver": "1.3.0",
        "nam": {"fn": "Phạm", "fnt": "PHAM", "gn": "Minh", "gnt": "MINH"},
        "dob": "1979",
        "r": [
            {
                "tg": "840539006", "fr": first, "df": valid_from, "du": valid_until,
                "co": "VN", "is": "Ministry of Health", "ci": uvci,
            }
        ],
    }  # fmt: skip
