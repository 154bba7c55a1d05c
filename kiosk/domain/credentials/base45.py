"""Base45 (RFC 9285), the QR-alphanumeric text encoding of the EU DCC."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}


class Base45Error(ValueError):
    """The text is not valid Base45."""


def b45decode(text: str) -> bytes:
    """Decode Base45; raises :class:`Base45Error` naming the offending position."""
    try:
        values = [_VALUE[c] for c in text]
    except KeyError as e:
        raise Base45Error(f"character {e.args[0]!r} is not in the Base45 alphabet") from None
    out = bytearray()
    n = len(values)
    if n % 3 == 1:
        raise Base45Error(f"length {n} leaves a single trailing character")
    for i in range(0, n - n % 3, 3):
        v = values[i] + values[i + 1] * 45 + values[i + 2] * 2025
        if v > 0xFFFF:
            raise Base45Error(f"group at {i} decodes to {v}, more than two bytes")
        out += v.to_bytes(2, "big")
    if n % 3 == 2:
        v = values[-2] + values[-1] * 45
        if v > 0xFF:
            raise Base45Error(f"final pair decodes to {v}, more than one byte")
        out.append(v)
    return bytes(out)


def b45encode(data: bytes) -> str:
    """Encode bytes as Base45 (used by tests and the central server's tooling)."""
    out: list[str] = []
    for i in range(0, len(data) - 1, 2):
        v = data[i] * 256 + data[i + 1]
        v, c = divmod(v, 45)
        e, d = divmod(v, 45)
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (ALPHABET[c], ALPHABET[d])
    return "".join(out)
