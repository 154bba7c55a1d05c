"""Lenient date parsing for the formats printed in Vietnamese ID codes."""

from __future__ import annotations

import re
from datetime import date

_DMY = re.compile(r"(\d{2})/?(\d{2})/?(\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def parse_dmy(value: str) -> date | None:
    """``14071985`` or ``14/07/1985`` -> date; None when absent or impossible."""
    m = _DMY.fullmatch(value.strip())
    if not m:
        return None
    try:
        return date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        return None


def parse_iso(value: str) -> date | None:
    m = _ISO.fullmatch(value.strip())
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
