"""Codes that are not a person: venue posters, web links, Wi-Fi codes.

Nothing personal is kept and the payload is not echoed back: only the host name of
a link or the kind of code.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from kiosk.model import Credential, Kind

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,15}://\S+")
# Prefixes of non-URL codes checkpoints have seen.
OTHER = {
    "NZCOVIDTRACER:": "nz_covid_tracer",
    "WIFI:": "wifi",
    "MECARD:": "contact",
    "BEGIN:VCARD": "contact",
    "SMSTO:": "sms",
    "MAILTO:": "email",
    "TEL:": "phone",
    "GEO:": "location",
}
# The Vietnamese health-declaration sites (payloads.md, section 5).
DECLARATION_HOSTS = ("tokhaiyte.vn", "pccovid.gov.vn", "bluezone.gov.vn", "vneid.gov.vn")


def looks_like(text: str) -> bool:
    return URL.match(text) is not None or text.upper().startswith(tuple(OTHER))


def parse(text: str) -> Credential:
    upper = text.upper()
    for prefix, kind in OTHER.items():
        if upper.startswith(prefix):
            return Credential(kind=Kind.VENUE, fields={"type": kind})
    try:
        host = (urlsplit(text).hostname or "")[:253]
    except ValueError:
        host = ""
    declaration = any(host == h or host.endswith("." + h) for h in DECLARATION_HOSTS)
    return Credential(
        kind=Kind.VENUE,
        fields={"type": "health_declaration" if declaration else "link", "host": host},
    )
