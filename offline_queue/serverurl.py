"""The one rule for a central platform URL, used by provisioning, ``config check`` and the
sync client: https anywhere; plain http only to this machine (the demo and the tests).

Plain http to another host sends the device token and every check-in, full ID numbers
included, readable and changeable by anyone on the path (issue 9 #3).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: this machine, never the network."""
    host = host.lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``: the value an error shows."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@", r"\1***@", url)


def check_server_url(url: str, what: str = "server URL") -> str:
    """The URL without a trailing slash; ValueError naming ``what``, showing the value
    (never a password in it) and saying what to write instead."""
    if not isinstance(url, str):
        raise ValueError(f"{what} {url!r} is not text; write it as https://host[:port]")
    text = url.strip()
    url = _without_userinfo(url)  # from here on, only what a message may show
    if not (text.isascii() and text.isprintable()):
        # Control, escape and bidi characters could forge a log line or hide the real host.
        raise ValueError(f"{what} {url!r} has characters a URL may not have; write it as "
                         "https://host[:port] in plain ASCII (an international host name in "
                         "its xn-- form)")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", text, flags=re.IGNORECASE):
        raise ValueError(f"{what} {url!r} is not valid; write it as https://host[:port]")
    parts = urlsplit(text)
    if "@" in parts.netloc:
        # A user name or password in the URL would end up in logs, status and the config,
        # and requests would send it as Basic credentials to whoever answers.
        raise ValueError(f"{what} {url!r} holds a user name or password (user:password@), "
                         "which is refused; write it as https://host[:port] (the kiosk "
                         "authenticates with its device token, never with a password in "
                         "the URL)")
    try:
        parts.port  # noqa: B018 - raises on a port outside 0..65535
    except ValueError:
        raise ValueError(f"{what} {url!r} has an invalid port; write it as "
                         "https://host[:port]") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{what} {url!r} has no host; write it as https://host[:port]")
    if parts.scheme.lower() == "http" and not is_loopback_host(host):
        raise ValueError(
            f"{what} {url!r} uses plain http to {host!r}, which is not this machine: "
            f"the device token and check-ins would cross the network unencrypted; use "
            f"https://{parts.netloc}{parts.path} (plain http is allowed only for 127.0.0.1, "
            "::1 and localhost)"
        )
    return text.rstrip("/")
