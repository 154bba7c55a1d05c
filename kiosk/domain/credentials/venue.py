"""Codes that are not a person: venue posters, web links, Wi-Fi codes.

Nothing personal is kept and the payload is not echoed back: only the host name of
a link or the kind of code.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from kiosk.domain.model import Credential, Kind

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
# Other countries' venue check-in posters that are links (payloads.md, section 5).
CHECKIN_HOSTS = ("coronawarn.app",)
# The ``type`` values of a venue's own poster; the rest (links, Wi-Fi, contacts…) are other codes.
VENUE_TYPES = frozenset({"health_declaration", "venue_checkin", "nz_covid_tracer"})


def looks_like(text: str) -> bool:
    return URL.match(text) is not None or text.upper().startswith(tuple(OTHER))


def is_venue_poster(credential: Credential) -> bool:
    """A venue's check-in or health-declaration poster, not just any link or Wi-Fi code."""
    return credential.kind == Kind.VENUE and credential.fields.get("type") in VENUE_TYPES


def _on(host: str, domains: tuple[str, ...]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def parse(text: str) -> Credential:
    upper = text.upper()
    for prefix, kind in OTHER.items():
        if upper.startswith(prefix):
            return Credential(kind=Kind.VENUE, fields={"type": kind})
    try:
        host = (urlsplit(text).hostname or "")[:253]
    except ValueError:
        host = ""
    if _on(host, DECLARATION_HOSTS):
        kind = "health_declaration"
    elif _on(host, CHECKIN_HOSTS):
        kind = "venue_checkin"
    else:
        kind = "link"
    return Credential(kind=Kind.VENUE, fields={"type": kind, "host": host})
