"""A person declared by an officer: the form's fields, checked, and the credential it makes.

A person with no code or no document (no smartphone, a lost card) is recorded from a form an
officer fills in on the kiosk (``kiosk.ui.declare``): full name, birth year, sex, phone,
document number if any, where from and where to, and the yes/no health questions the
province sets in its policy (:data:`kiosk.domain.policy.Policy.health_questions`).
:func:`check` refuses a bad field with a :class:`FieldError` that names it, so the screen can
say which one; :func:`credential` turns the checked declaration into the credential the scan
loop decides and records like any other (source ``declared``), masked like a scanned code:
the name as family name and initials, the document number's last four digits.

A person declared with a CCCD or CMND number is matched against the watchlist and the status
document by it; a person with none carries no identifier (nothing to match: the policy's
rules that need the status document give *check*, ``declaration_missing`` and the like).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from kiosk.domain.credentials._text import MAX_NAME, is_unsafe
from kiosk.domain.credentials.identifiers import normalize, type_of
from kiosk.domain.credentials.masking import mask_id, mask_name
from kiosk.domain.model import Credential, Kind
from kiosk.errors import KioskError

FIELDS = ("name", "birth_year", "sex", "phone", "document", "origin", "destination")
SEXES = ("male", "female")
OLDEST = 1900
MAX_PLACE = 80
# Vietnamese numbers after the 2018 renumbering: mobiles 03x 05x 07x 08x 09x and landlines
# 02xx, ten or eleven digits with the trunk 0, or the same after +84 / 84 without it.
MOBILE = re.compile(r"0[35789]\d{8}")
LANDLINE = re.compile(r"02\d{9}")
# The documents an officer may type: the 12-digit CCCD, the old 9-digit CMND, a passport.
DOCUMENT_TYPES = ("cccd", "cmnd", "passport")
# A "yes" to any health question sends the person to an officer's check (the officer who
# filled the form then decides, as with any check).
ANSWERED_YES = "health_answer_yes"


class FieldError(KioskError, ValueError):
    """A field of the form is refused; ``field`` names it (one of :data:`FIELDS`, or
    ``question:<id>``), ``code`` says why for the screen's message (:data:`PROBLEMS`), and the
    message says it in English, without the value (it is personal)."""

    def __init__(self, field_name: str, code: str, message: str) -> None:
        super().__init__(f"{field_name} {message}")
        self.field = field_name
        self.code = code


# Why a field is refused: the codes FieldError carries (the screen translates them).
PROBLEMS = ("empty", "unsafe", "too_long", "not_letters", "not_year", "future", "too_old",
            "not_phone", "not_document", "not_chosen", "unanswered")


@dataclass(frozen=True)
class Declaration:
    """One person as an officer declared them (checked; text in NFC)."""

    name: str
    birth_year: int
    sex: str
    phone: str = ""
    document: str = ""
    origin: str = ""
    destination: str = ""
    answers: tuple[tuple[str, bool], ...] = ()
    officer: str = ""  # who filled the form (an officer id, kiosk.domain.officers)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def document_type(self) -> str | None:
        return type_of(self.document) if self.document else None


def check(values: Mapping[str, Any], *, questions: tuple[str, ...] = (), today: date,
          officer: str = "") -> Declaration:
    """The form's ``values`` checked; :class:`FieldError` names the first bad field.

    ``questions``: the ids of the policy's health questions, each of which must be answered
    (``values["answers"]``: id -> True/False).  ``today``: the Vietnam date, for the birth year.
    """
    name = check_name(values.get("name", ""))
    birth_year = check_birth_year(values.get("birth_year", ""), today)
    sex = values.get("sex", "")
    if sex not in SEXES:
        raise FieldError("sex", "not_chosen", "is not chosen: choose male or female")
    phone = check_phone(values.get("phone", ""))
    document = check_document(values.get("document", ""))
    origin = check_place("origin", values.get("origin", ""))
    destination = check_place("destination", values.get("destination", ""))
    answers_in = values.get("answers") or {}
    answers = []
    for qid in questions:
        answer = answers_in.get(qid)
        if not isinstance(answer, bool):
            raise FieldError(f"question:{qid}", "unanswered", "is not answered: answer yes or no")
        answers.append((qid, answer))
    return Declaration(name, birth_year, sex, phone, document, origin, destination,
                       tuple(answers), officer)


def _text(field_name: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise FieldError(field_name, "unsafe", "is not text")
    if any(is_unsafe(c) for c in value):
        raise FieldError(field_name, "unsafe", "holds a control or invisible character")
    text = " ".join(unicodedata.normalize("NFC", value).split())
    if len(text) > limit:
        raise FieldError(field_name, "too_long", f"is longer than {limit} characters")
    return text


def check_name(value: object) -> str:
    """A full name: letters (any script, with their marks), spaces, ``-``, ``'`` and ``.``."""
    name = _text("name", value, MAX_NAME)
    if not name:
        raise FieldError("name", "empty", "is empty")
    if not all(unicodedata.category(c)[0] in "LM" or c in " -'." for c in name):
        raise FieldError("name", "not_letters", "may hold letters, spaces, - ' and . only")
    if not any(unicodedata.category(c)[0] == "L" for c in name):
        raise FieldError("name", "not_letters", "holds no letter")
    return name


def check_birth_year(value: object, today: date) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit() and len(text) == 4):
        raise FieldError("birth_year", "not_year", "must be a year of four digits")
    year = int(text)
    if year > today.year:
        raise FieldError("birth_year", "future", f"is in the future (after {today.year})")
    if year < OLDEST:
        raise FieldError("birth_year", "too_old", f"is before {OLDEST}")
    return year


def check_phone(value: object) -> str:
    """A Vietnamese phone number as ``0…`` (empty: the person has none)."""
    text = "".join(str(value).split()).replace(".", "").replace("-", "")
    if not text:
        return ""
    if text.startswith("+84"):
        text = "0" + text[3:]
    elif text.startswith("84") and len(text) in (11, 12):
        text = "0" + text[2:]
    if not (text.isascii() and (MOBILE.fullmatch(text) or LANDLINE.fullmatch(text))):
        raise FieldError("phone", "not_phone", "is not a Vietnamese phone number (10 digits "
                                               "from 03, 05, 07, 08, 09, or 11 from 02)")
    return text


def check_document(value: object) -> str:
    """A CCCD (12 digits), CMND (9 digits) or passport number; empty when there is none."""
    if not isinstance(value, str):
        raise FieldError("document", "unsafe", "is not text")
    number = normalize(value)
    if not number:
        return ""
    kind = type_of(number)
    if kind not in DOCUMENT_TYPES:
        raise FieldError("document", "not_document", "is not a CCCD (12 digits), CMND "
                                                     "(9 digits) or passport number")
    return number


def check_place(field_name: str, value: object) -> str:
    """Where from or where to: a commune (ward) and district or province, as typed."""
    place = _text(field_name, value, MAX_PLACE)
    if not place:
        raise FieldError(field_name, "empty", "is empty")
    if not any(unicodedata.category(c)[0] in "LN" for c in place):
        raise FieldError(field_name, "not_letters", "holds no letter or number")
    return place


def credential(declaration: Declaration) -> Credential:
    """The credential the scan loop decides and records: masked display, the document's
    number as the identity when there is one (None otherwise), a ``health_answer_yes``
    problem when any health question was answered yes (it becomes a reason: *check*)."""
    number = declaration.document
    kind_of_number = declaration.document_type
    display = {"name": mask_name(declaration.name),
               "birth_year": str(declaration.birth_year)}
    identifiers: frozenset[tuple[str, str]] = frozenset()
    if number:
        display["id"] = mask_id(number)
        identifiers = frozenset({(kind_of_number or "document", number)})
    problems = (ANSWERED_YES,) if any(answer for _q, answer in declaration.answers) else ()
    return Credential(
        # The kinds are the families of codes; a declared person is recorded as an ID-card
        # holder (the source, "declared", says the form was an officer's).
        kind=Kind.CCCD,
        person_key=number or None,
        display=display,
        fields={"name": declaration.name, "birth_year": declaration.birth_year,
                "sex": declaration.sex, "number": number or None,
                "document_type": kind_of_number, "declared": True},
        checks={"declared_by_officer": True},
        problems=problems,
        identifiers=identifiers,
    )
