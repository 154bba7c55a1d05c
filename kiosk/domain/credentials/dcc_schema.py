"""The EU DCC certificate JSON against the official schema of the version it declares.

The schemas are the eHealth Network's own (``eu_dcc_schemas/``, vendored unchanged, see its
README for the upstream commits). They are package data, read and compiled lazily, once per
version, by ``fastjsonschema`` (a few microseconds a check; docs/credentials.md has the
figures against ``jsonschema``, which the tests use as the reference implementation).

What the schemas leave open and the kiosk decides, each from the specification:

- ``format`` is an annotation, not an assertion: the schemas declare JSON Schema draft
  2020-12, whose default is exactly that, and member states issue ``date`` fields with a
  time (vector SG/4). The policy parses every date it uses and sends what it cannot read
  to an officer.
- A certificate holds exactly one of ``v``, ``t``, ``r`` (Regulation (EU) 2021/953; schema
  1.3.0 wrote it down): older schemas let all three stand side by side (vector DGC2).
- A version the kiosk has no file for is validated against the newest published version
  not newer than it (``1.3.4`` -> ``1.3.3``); anything but a ``1.x.y`` version is invalid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, NotRequired, TypedDict, cast

import fastjsonschema

# The vendored files, oldest first; tests/test_dcc_schema.py checks this against the folder.
VERSIONS = ("1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.2.1", "1.3.0", "1.3.1", "1.3.2", "1.3.3")
ENTRY_TYPES = {"v": "vaccination", "t": "test", "r": "recovery"}
# The certificate as the schema defines it (1.3.x; older versions are the same shape with
# fewer constraints), for code that holds one the schema accepted: :func:`certificate`.
# Dates and date-times are the JSON view's text (``dcc.json_view``).  Keys that are Python
# keywords ("is") need the functional form.


class PersonName(TypedDict, total=False):
    fn: str   # family name(s)
    fnt: str  # the same, ICAO 9303 transliterated (the one 1.3.0 requires)
    gn: str   # given name(s)
    gnt: str


Vaccination = TypedDict("Vaccination", {
    "tg": str, "vp": str, "mp": str, "ma": str, "dn": int, "sd": int, "dt": str, "co": str,
    "is": str, "ci": str})
Test = TypedDict("Test", {
    "tg": str, "tt": str, "nm": NotRequired[str], "ma": NotRequired[str], "sc": str, "tr": str,
    "tc": NotRequired[str], "co": str, "is": str, "ci": str})
Recovery = TypedDict("Recovery", {
    "tg": str, "fr": str, "co": str, "is": str, "df": str, "du": str, "ci": str})


class HCert(TypedDict):
    """One certificate: exactly one of ``v``, ``t``, ``r`` is present (:func:`validate`)."""

    ver: str
    nam: PersonName
    dob: str
    v: NotRequired[list[Vaccination]]
    t: NotRequired[list[Test]]
    r: NotRequired[list[Recovery]]


_VERSION = re.compile(r"([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})")


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def schema_for(ver: object) -> str | None:
    """The vendored schema version that validates a certificate declaring ``ver``."""
    if not isinstance(ver, str) or not _VERSION.fullmatch(ver):
        return None
    return _schema_for(ver)


@cache
def _schema_for(ver: str) -> str | None:
    declared = _key(ver)
    if declared[0] != 1:
        return None
    older = [v for v in VERSIONS if _key(v) <= declared]
    return older[-1] if older else None


def load_schema(version: str) -> dict[str, Any]:
    """The official schema of one vendored version, as a dict."""
    if version not in VERSIONS:
        raise ValueError(f"no vendored DCC schema {version!r}; there are {', '.join(VERSIONS)}")
    path = resources.files("kiosk.domain.credentials").joinpath("eu_dcc_schemas", f"{version}.json")
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


@cache
def _validator(version: str) -> Callable[[object], object]:
    # use_formats=False: draft 2020-12 treats "format" as an annotation (module docstring).
    return fastjsonschema.compile(load_schema(version), use_formats=False)


def certificate(hcert: object) -> HCert | None:
    """``hcert`` typed as the schema defines it, or None when :func:`validate` finds a
    violation: the one place an untrusted certificate becomes an :class:`HCert`."""
    if validate(hcert):
        return None
    return cast(HCert, hcert)  # checked against the official schema just above


def validate(hcert: object) -> list[str]:
    """Return the schema violations of a certificate's JSON view (empty when valid).

    ``hcert`` is the JSON view (CBOR date-time tags already turned into their RFC 3339
    text, see ``dcc.json_view``). Never raises: a hostile structure is a violation.
    """
    if not isinstance(hcert, dict):
        return [f"certificate is a {type(hcert).__name__}, not an object"]
    ver = hcert.get("ver")
    version = schema_for(ver)
    if version is None:
        shown = ver if isinstance(ver, str) and len(ver) <= 20 else type(ver).__name__
        return [f"ver {shown!r} is not a 1.x.y schema version (known: {', '.join(VERSIONS)})"]
    errors: list[str] = []
    try:
        _validator(version)(hcert)
    except fastjsonschema.JsonSchemaValueException as e:
        # The path and the rule only: the message may quote a name or a date.
        errors.append(f"schema {version}: {e.name} breaks {e.rule!r}")
    except Exception as e:  # noqa: BLE001 - CBOR can hold what JSON cannot (non-text keys)
        errors.append(f"schema {version}: certificate could not be checked ({type(e).__name__})")
    present = [key for key in ENTRY_TYPES if key in hcert]
    if len(present) != 1:
        errors.append(f"a certificate holds exactly one of v, t, r; found {present!r}")
    return errors
