"""Issue 13, items 1 and 5 below the screen: the declaration's fields, the credential it makes,
the policy's health questions, the officer list document and its command, and a declared
person recorded end to end through a headless kiosk to the real central server."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, date, datetime

import pytest
from central_helpers import enrol
from click.testing import CliRunner

from kiosk import config as config_mod
from kiosk.cli import cli
from kiosk.domain.declaration import ANSWERED_YES, Declaration, FieldError, check, credential
from kiosk.domain.documents import VALIDATORS, DocumentError, load
from kiosk.domain.model import Kind
from kiosk.domain.officers import OfficerList, build_officers
from kiosk.domain.policy import Policy
from kiosk.errors import ConfigError
from kiosk.runtime.build import Supplied, build
from kiosk.runtime.events import Declared, ScanResult
from offline_queue import records
from offline_queue.central import db as central_db
from offline_queue.central.schema import SOURCE_CODES
from offline_queue.central.server import CentralServer

TODAY = date(2026, 11, 22)
GOOD = {"name": " Nguyễn  Thị Hồng ", "birth_year": "1958", "sex": "female",
        "phone": "+84 912 345 678", "document": "0011 5801 2345", "origin": "Tân Lập",
        "destination": "Ba Đình", "answers": {"fever": False}}
QUESTIONS = [{"id": "fever", "vi": "Có sốt, ho, khó thở không?",
              "en": "Fever, cough or short of breath?"}]


def checked(**changes):
    return check({**GOOD, **changes}, questions=("fever",), today=TODAY, officer="hn-017")


# --- the fields ------------------------------------------------------------------------------


def test_a_good_form_is_normalised():
    d = checked()
    assert (d.name, d.birth_year, d.sex, d.phone, d.document) == (
        "Nguyễn Thị Hồng", 1958, "female", "0912345678", "001158012345")
    assert d.answers == (("fever", False),) and d.officer == "hn-017"
    assert checked(phone="", document="").phone == ""  # no phone, no document: allowed
    assert checked(phone="024 3825 1234").phone == "02438251234"  # a landline


@pytest.mark.parametrize(("field", "value", "code"), [
    ("birth_year", "2027", "future"),  # the year after today's
    ("birth_year", "1899", "too_old"),
    ("birth_year", "58", "not_year"),
    ("birth_year", "１９５８", "not_year"),  # full-width digits
    ("phone", "0123456789", "not_phone"),  # 01x is no longer a prefix
    ("phone", "091234567", "not_phone"),
    ("phone", "+1 202 555 0100", "not_phone"),
    ("phone", "09123456780", "not_phone"),
    ("name", "\x00\x01\x02", "unsafe"),
    ("name", "An\u202eBình", "unsafe"),  # a bidi override would reorder what an officer reads
    ("name", "   ", "empty"),
    ("name", "Robert'); DROP TABLE", "not_letters"),
    ("name", "A" * 81, "too_long"),
    ("document", "12345", "not_document"),
    ("document", "******2345", "not_document"),
    ("origin", "", "empty"),
    ("destination", "\x1b[2J", "unsafe"),
    ("sex", "x", "not_chosen"),
])
def test_bad_fields_are_refused_naming_the_field(field, value, code):
    with pytest.raises(FieldError) as e:
        checked(**{field: value})
    assert (e.value.field, e.value.code) == (field, code)
    assert str(e.value).startswith(field)
    if field in ("name", "phone", "document") and len(value) > 4:
        assert value not in str(e.value)  # personal: never echoed


def test_every_question_must_be_answered():
    with pytest.raises(FieldError) as e:
        check({**GOOD, "answers": {}}, questions=("fever",), today=TODAY)
    assert e.value.field == "question:fever" and e.value.code == "unanswered"
    with pytest.raises(FieldError):
        check({**GOOD, "answers": {"fever": "no"}}, questions=("fever",), today=TODAY)


def test_the_credential_is_masked_like_a_scanned_code():
    c = credential(checked())
    assert c.kind is Kind.CCCD and c.person_key == "001158012345"
    assert c.display == {"name": "Nguyễn T*** H*", "id": "********2345", "birth_year": "1958"}
    assert c.identifiers == frozenset({("cccd", "001158012345")})
    assert c.problems == ()
    nothing = credential(checked(document="", answers={"fever": True}))
    assert nothing.person_key is None and nothing.identifiers == frozenset()
    assert "id" not in nothing.display
    assert nothing.problems == (ANSWERED_YES,)


def test_declared_is_in_the_record_vocabulary_and_the_centrals_codes():
    assert "declared" in records.SOURCES
    assert SOURCE_CODES[:3] == ("scan", "manual", "scanner")  # append only: codes kept
    assert SOURCE_CODES.index("declared") == 3
    records.CheckIn(direction="in", kind="cccd", person_key=None, source="declared")


# --- the policy's questions ------------------------------------------------------------------


def test_the_policy_takes_yes_no_questions_from_toml_and_json():
    p = Policy.load("border", {"health_questions": QUESTIONS})
    assert [(q.id, q.en) for q in p.health_questions] == [("fever", QUESTIONS[0]["en"])]
    doc = Policy.from_json(json.dumps({"profile": "hospital", "health_questions": QUESTIONS}))
    assert doc.health_questions == p.health_questions
    assert Policy.load("border").health_questions == ()


@pytest.mark.parametrize(("value", "match"), [
    ("fever?", "expected a list of questions"),
    ([{"id": "fever", "vi": "x"}], r"health_questions\[0\].*exactly id, vi and en"),
    ([{"id": "Fever!", "vi": "x", "en": "y"}], r"health_questions\[0\]\.id"),
    ([{"id": "a", "vi": "x", "en": "y"}, {"id": "a", "vi": "x", "en": "y"}], "used twice"),
    ([{"id": "a", "vi": "", "en": "y"}], r"health_questions\[0\]\.vi"),
    ([{"id": "a", "vi": "x\x1b", "en": "y"}], r"health_questions\[0\]\.vi"),
    ([{"id": f"q{i}", "vi": "x", "en": "y"} for i in range(5)], "at most 4"),
])
def test_bad_questions_are_refused_naming_the_key(value, match):
    with pytest.raises(ConfigError, match=match):
        Policy.load("border", {"health_questions": value})
    with pytest.raises(DocumentError, match="policy.health_questions"):
        load("policy", json.dumps({"profile": "border", "health_questions": value}).encode())


# --- the officer list ------------------------------------------------------------------------


ROWS = [("hn-017", "Nguyễn Văn An", "officer", "135790"),
        ("hn-021", "Lê Thị Bình", "supervisor", "864200")]


def test_the_officer_list_identifies_an_officer_by_pin_with_one_hash():
    body = json.dumps(build_officers(ROWS)).encode()
    assert b"135790" not in body
    officers = load("officers", body)
    assert isinstance(officers, OfficerList) and len(officers) == 2
    assert officers.identify("864200").id == "hn-021"
    assert officers.identify("135790").name == "Nguyễn Văn An"
    for wrong in ("000000", "13579", "", "１３５７９０", "135790 "):
        assert officers.identify(wrong) is None
    VALIDATORS["officers"](body)


def _doc(**changes):
    doc = build_officers(ROWS)
    first = changes.pop("officer", None)
    if first is not None:
        doc["officers"][0].update(first)
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("body", "match"), [
    (_doc(officers=[]), "non-empty array"),
    (_doc(version=2), "officers.version"),
    (_doc(salt="00"), "officers.salt"),
    (_doc(kdf={"name": "argon2id"}), "officers.kdf"),
    (_doc(officer={"role": "admin"}), r"officers\[0\]\.role"),
    (_doc(officer={"id": "a b"}), r"officers\[0\]\.id"),
    (_doc(officer={"id": "hn-021"}), "used twice"),
    (_doc(officer={"name": "\x1b[31m"}), r"officers\[0\]\.name"),
    (_doc(officer={"pin": "135790"}), r"officers\[0\]\.pin is not"),
    (_doc(officer={"extra": 1}), r"officers\[0\] is"),
    (_doc(extra=1), "unknown member"),
    (b"[]", "expected an object"),
    (b"{", "not valid JSON"),
])
def test_a_bad_officer_list_is_refused_naming_the_member(body, match):
    with pytest.raises(DocumentError, match=match) as e:
        VALIDATORS["officers"](body)
    assert "135790" not in str(e.value)


def test_the_builder_refuses_short_and_shared_pins_without_showing_them():
    with pytest.raises(ConfigError, match="officer 1") as e:
        build_officers([("hn-1", "An", "officer", "12")])
    assert "'12'" not in str(e.value)
    with pytest.raises(ConfigError, match="PIN of 'hn-017' too"):
        build_officers([*ROWS, ("hn-3", "C", "officer", "135790")])


def test_officers_build_reads_pins_from_stdin_and_writes_only_hashes(tmp_path):
    csv_file = tmp_path / "officers.csv"
    csv_file.write_text("id,name,role\nhn-017,Nguyễn Văn An,officer\n"
                        "hn-021,Lê Thị Bình,Supervisor\n", encoding="utf-8")
    out = tmp_path / "officers.json"
    done = CliRunner().invoke(cli, ["officers", "build", str(csv_file), "-o", str(out)],
                              input="135790\n864200\n")
    assert done.exit_code == 0, done.output
    assert "wrote 2 officers (1 officer, 1 supervisor)" in done.output
    body = out.read_bytes()
    assert b"135790" not in body and b"864200" not in body
    assert load("officers", body).identify("864200").role == "supervisor"
    short = CliRunner().invoke(cli, ["officers", "build", str(csv_file), "-o",
                                     str(tmp_path / "x.json")], input="135790\n")
    assert short.exit_code != 0 and "PIN line" in short.output
    assert not (tmp_path / "x.json").exists()


# --- end to end: declared at a headless kiosk, delivered to the real central ----------------


def wait_for(condition, seconds=20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_declared_person_reaches_the_central_with_source_and_officer(tmp_path):
    central = tmp_path / "central.db"
    with CentralServer(central, validators=VALIDATORS) as server:
        device = enrol(server, central, "CP-DECLARE")
        token = tmp_path / "token"
        token.write_text(device["device_token"], encoding="utf-8")
        with central_db.connect(central) as cdb:
            central_db.set_document(cdb, "officers", json.dumps(build_officers(ROWS)).encode(),
                                    validators=VALIDATORS)
            central_db.set_document(cdb, "policy", json.dumps(
                {"profile": "border", "watchlist": False, "health_questions": QUESTIONS}
            ).encode(), validators=VALIDATORS)
        cfg = config_mod.Config().replace(
            device={"id": device["device_id"], "checkpoint_id": device["checkpoint_id"]},
            store={"path": str(tmp_path / "kiosk.db")},
            sync={"server_url": server.url, "token_file": str(token)},
            signals={"enabled": False}, policy={"profile": "hospital"})
        results: list[ScanResult] = []
        with contextlib.ExitStack() as stack:
            parts = build(cfg, stack, with_camera=False, parts=Supplied(sync_options={
                "boot_jitter": 0.0, "link_jitter": 0.0, "idle_interval": 0.2,
                "documents_interval": 0.2}))
            parts.loop.watch(results.append)

            def policy_in_force() -> bool:
                parts.checker.refresh()
                return parts.checker.policy.profile == "border"

            assert wait_for(lambda: parts.store.document("officers") is not None
                            and policy_in_force())
            officers = load("officers", parts.store.document("officers").body)
            officer = officers.identify("864200")
            questions = tuple(q.id for q in parts.checker.policy.health_questions)
            assert questions == ("fever",)
            person = check({**GOOD, "document": ""}, questions=questions,
                           today=datetime.now(UTC).date(), officer=officer.id)
            parts.loop.events.put(Declared(person))
            assert wait_for(lambda: bool(parts.loop.step(0.05)) and results or bool(results))
            (result,) = results
            assert result.source == "declared" and result.recorded
            # The border's rules with no status document: an officer checks, never a pass.
            assert result.decision.outcome.value == "check"
            assert parts.loop.counts_today()["check"] == 1

            def delivered() -> list:
                with central_db.connect(central) as cdb:
                    return list(cdb.execute("SELECT source, display, person_key, officer "
                                            "FROM scans WHERE id = ?", [result.checkin_id]))

            assert wait_for(lambda: bool(delivered()))
    ((source, display, person_key, officer),) = delivered()
    assert SOURCE_CODES[source - 1] == "declared"
    # The officer is a field of its own now, no longer a display entry.
    assert json.loads(display) == {"name": "Nguyễn T*** H*", "birth_year": "1958"}
    assert officer == "hn-021"
    assert person_key is None


def test_a_declaration_that_fails_at_the_loop_never_passes(tmp_path):
    """The typed input's promise: a checked Declaration only (the form's check is the gate);
    an unchecked value still makes no pass — the loop logs it and shows the fault."""
    from test_ui_loop import build_kit

    with build_kit(tmp_path) as kit:
        kit.loop.events.put(Declared(Declaration("An", 1990, "male", officer="x")))
        (result,) = [r for r in kit.loop.step() if isinstance(r, ScanResult)]
        assert kit.row(result.checkin_id)["source"] == "declared"
        kit.loop.events.put(Declared(None))  # type: ignore[arg-type]
        assert [r for r in kit.loop.step() if isinstance(r, ScanResult)] == []
