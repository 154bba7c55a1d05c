"""``checkpoint-kiosk inspect`` as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
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
    # The border profile wants a watchlist; none was given.
    assert out["decision"] == "check" and out["reasons"] == ["watchlist_missing"]
    assert out["lists"]["trust_list"]["age_hours"] == 0


def test_stale_trust_list_file_by_mtime(signed, tmp_path):
    payload, trust = signed
    wl = tmp_path / "wl.json"
    wl.write_bytes(Watchlist.build([("someone-else", date(2022, 7, 1))], issued_at=AT))
    later = (AT + timedelta(days=4)).isoformat()
    out = answer("--trust-list", str(trust), "--watchlist", str(wl), "--at", later, payload)
    assert out["decision"] == "check"
    assert out["reasons"] == ["watchlist_stale", "trust_list_stale"]
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
