"""``checkpoint-kiosk inspect`` as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.domain.trustlist import build_json
from kiosk.domain.watchlist import Watchlist
from kiosk.testing import dcc_issue as di

REPO = Path(__file__).resolve().parents[1]
AT = datetime(2022, 6, 1, 1, 0, tzinfo=UTC)
CCCD = "001185012345||Trần Thị Bích Ngọc|14071985|Nữ|Hà Nội|10052021"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk", "inspect", *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def answer(*args: str, stdin: bytes | None = None) -> dict:
    result = run(*args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """A signed vaccination certificate and a trust-list file dated at AT."""
    key = ec.generate_private_key(ec.SECP256R1())
    dsc = di.make_dsc(key, not_before=AT - timedelta(days=100), not_after=AT + timedelta(days=300))
    cose = di.sign(
        di.vaccination(),
        key,
        dsc=dsc,
        issued_at=AT - timedelta(days=1),
        expires_at=AT + timedelta(days=200),
    )
    path = tmp_path_factory.mktemp("lists") / "trust.json"
    path.write_bytes(build_json([(dsc, "VN")]))
    os.utime(path, (AT.timestamp(), AT.timestamp()))
    return di.encode(cose), path


def test_cccd_from_stdin_raw_bytes():
    out = answer(
        "--policy",
        "office",
        "--at",
        AT.isoformat(),
        "-",
        stdin=b"\xef\xbb\xbf" + CCCD.encode() + b"\r\n",
    )
    assert out["kind"] == "cccd" and out["person_key"] == "001185012345"
    assert out["display"]["name"] == "Trần T*** B*** N*"
    assert out["fields"]["birth_date"] == "1985-07-14"
    assert out["decision"] == "pass" and out["reasons"] == []


def test_contract_keys_and_dcc_checks(signed):
    payload, trust = signed
    out = answer("--trust-list", str(trust), "--at", AT.isoformat(), payload)
    assert {"kind", "person_key", "display", "fields", "checks", "decision", "reasons"} <= set(out)
    assert out["kind"] == "eu_dcc"
    for check in ("prefix", "base45", "zlib", "cose", "signature", "schema", "key_usage", "expiry"):
        assert out["checks"][check] is True, check
    # The border profile wants a watchlist, a status and a risk-level list; none was given
    # (a person showing a certificate is judged on it: the proof rule asks no status).
    assert out["decision"] == "check"
    assert out["reasons"] == ["watchlist_missing", "status_missing", "risk_list_missing"]
    assert out["decided_by"] == ["declaration", "origin"]
    assert out["lists"]["trust_list"]["age_hours"] == 0


def test_stale_trust_list_file_by_mtime(signed, tmp_path):
    payload, trust = signed
    wl = tmp_path / "wl.json"
    wl.write_bytes(Watchlist.build([("someone-else", date(2022, 7, 1))], issued_at=AT))
    later = (AT + timedelta(days=4)).isoformat()
    out = answer("--trust-list", str(trust), "--watchlist", str(wl), "--at", later, payload)
    assert out["decision"] == "check"
    assert out["reasons"][:2] == ["watchlist_stale", "trust_list_stale"]
    assert out["lists"]["trust_list"]["stale"] is True


def test_watchlist_stop(tmp_path):
    wl = tmp_path / "wl.json"
    wl.write_bytes(Watchlist.build([("001185012345", date(2022, 6, 10))], issued_at=AT))
    out = answer("--watchlist", str(wl), "--policy", "hospital", "--at", AT.isoformat(), CCCD)
    assert out["decision"] == "stop" and out["reasons"] == ["watchlist"]


def test_watchlisted_cccd_number_stops_the_pc_covid_code_too(tmp_path):
    """Issue 9, #9: the order names the CCCD card; the person shows their PC-Covid QR."""
    wl = tmp_path / "wl.json"
    wl.write_bytes(Watchlist.build([("001185012345", date(2022, 6, 10))], issued_at=AT))
    pc_covid = "001185012345|TRAN THI BICH NGOC|1985-07-14|0|162979388586179999|"
    out = answer("--watchlist", str(wl), "--policy", "hospital", "--at", AT.isoformat(), pc_covid)
    assert out["decision"] == "stop" and out["reasons"] == ["watchlist"]
    assert out["identifiers"] == [["cccd", "001185012345"], ["qid", "162979388586179999"]]


@pytest.mark.parametrize("payload", ["HC1:NOT-BASE45!", "https://tokhaiyte.vn/q?id=1", "x"])
def test_invalid_credentials_still_exit_0(payload):
    out = answer("--at", AT.isoformat(), payload)
    assert out["decision"] == "check"
    assert payload not in json.dumps(out)


def test_policy_file(tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"profile": "hospital", "watchlist": False}), encoding="utf-8")
    assert answer("--policy", str(policy), CCCD)["decision"] == "pass"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--policy", "airport", "x"], "neither a profile"),
        (["--trust-list", "/nonexistent/trust.json", "x"], "cannot read the trust list"),
        (["--at", "yesterday", "x"], "not an ISO 8601 time"),
    ],
)
def test_usage_errors_are_one_line_and_nonzero(args, needle):
    result = run(*args)
    assert result.returncode != 0
    assert needle in result.stderr.decode()
    assert result.stdout == b""


def status_cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "kiosk", "status-doc", *args], cwd=REPO,
                          capture_output=True, timeout=60)


def test_status_shows_which_rule_decided(tmp_path):
    """The builder's document, validated by the kiosk's loader, decides; inspect says how."""
    now = datetime.now(UTC)
    people = tmp_path / "people.csv"
    declared = (now - timedelta(hours=20)).astimezone(timezone(timedelta(hours=7)))
    people.write_text(
        "ids,declared_at,from,doses,last_dose\n"
        f"001185012345 162979388586179999,{declared.replace(tzinfo=None).isoformat()},00004,"
        f"1,{(now - timedelta(days=60)).date().isoformat()}\n", encoding="utf-8")
    built = status_cli("build", str(people), "-o", str(tmp_path / "status.json"))
    assert built.returncode == 0, built.stderr.decode()
    assert b"wrote 1 people (2 numbers)" in built.stdout
    assert b"001185012345" not in (tmp_path / "status.json").read_bytes()
    levels = tmp_path / "levels.csv"
    levels.write_text("commune,level\n00004,1\n", encoding="utf-8")
    assert status_cli("risk-levels", str(levels), "-o", str(tmp_path / "risk.json")).returncode == 0
    docs = ("--status", str(tmp_path / "status.json"), "--risk-levels", str(tmp_path / "risk.json"))
    policy = tmp_path / "p.json"
    policy.write_text(json.dumps({"profile": "border", "watchlist": False}), encoding="utf-8")
    out = answer(*docs, "--policy", str(policy), "--at", now.isoformat(), CCCD)
    assert out["decision"] == "check" and out["reasons"] == ["vaccination_incomplete"]
    assert out["decided_by"] == ["proof"]
    by_rule = {r["rule"]: r for r in out["rules"]}
    assert by_rule["declaration"]["result"] == "met" and by_rule["origin"]["result"] == "met"
    assert by_rule["vaccination"] == {"rule": "vaccination", "result": "failed",
                                      "reasons": ["vaccination_incomplete"], "source": "status",
                                      "detail": "", "counted": False}
    assert out["checks"]["status"] is True
    assert out["found"]["doses"] == 1 and "from" not in out["found"]
    assert out["lists"]["status"]["entries"] == 1 and out["lists"]["status"]["stale"] is False
    # The same person leaving: only the declaration is asked for.
    out = answer(*docs, "--policy", str(policy), "--direction", "out", "--at", now.isoformat(),
                 CCCD)
    assert out["decision"] == "pass" and out["direction"] == "out"


@pytest.mark.parametrize(("row", "needle"), [
    ("001185012345,,,,,,,2035", "birth_year is '2035'; expected a whole number 1900.."),
    ("001185012345,,,12,2022-01-01,,,", "doses is '12'; expected a whole number 0..9"),
    ("001185012345,,,,,antibody,2022-05-01T08:00,",
     "test.type is 'antibody'; choose one of pcr, rapid_antigen"),
    ("0011850*****,2022-05-01T08:00,,,,,,", "ids has '0011850*****'"),
    ("001185012345,,,2,,,,", "last_dose is missing"),
])
def test_a_bad_import_row_is_refused_with_the_field_and_value(tmp_path, row, needle):
    people = tmp_path / "people.csv"
    people.write_text("ids,declared_at,from,doses,last_dose,test_type,tested_at,birth_year\n"
                      f"{row}\n", encoding="utf-8")
    result = status_cli("build", str(people), "-o", str(tmp_path / "s.json"))
    assert result.returncode == 1
    assert f"row 2: {needle}" in result.stderr.decode()
    assert not (tmp_path / "s.json").exists()
