"""``checkpoint-kiosk watchlist build`` as an official runs it (issue 9, #9): a real subprocess,
then the document goes to ``inspect --watchlist`` and to the central's ``set-document``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from kiosk.domain.documents import VALIDATORS
from kiosk.domain.watchlist import Watchlist, local_date

REPO = Path(__file__).resolve().parents[1]
CCCD = "001185012345"
PC_COVID = f"{CCCD}|TRAN THI BICH NGOC|1985-07-14|0|162979388586179999|"
CARD = f"{CCCD}||Trần Thị Bích Ngọc|14071985|Nữ|Hà Nội|10052021"


def kiosk(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def numbers_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "numbers.txt"
    path.write_bytes(text.encode("utf-8-sig"))
    return path


def test_build_then_inspect_and_publish(tmp_path):
    src = numbers_file(tmp_path, "# province order 17/2022\n\n0011 8501 2345\n012345678\r\n"
                                 "URN:UVCI:01:VN:ABC123#K\n")
    out = tmp_path / "watchlist.json"
    until = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    proc = kiosk("watchlist", "build", "--until", until, str(src), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "wrote 3 entries (1 cccd, 1 cmnd, 1 uvci)" in proc.stdout
    body = out.read_bytes()
    assert CCCD.encode() not in body and b"012345678" not in body  # hashes only
    doc = json.loads(body)
    assert {e["until"] for e in doc["entries"]} == {until} and len(doc["salt"]) == 32
    VALIDATORS["watchlist"](body)

    # The person shows their PC-Covid QR instead of the card the order names: stopped.
    for payload in (PC_COVID, CARD):
        proc = kiosk("inspect", "--policy", "hospital", "--watchlist", str(out), payload)
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        assert (answer["decision"], answer["reasons"]) == ("stop", ["watchlist"])

    db = tmp_path / "central.db"
    proc = kiosk("central", "set-document", "--db", str(db), "watchlist", str(out))
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip()) == 32  # the ETag


def test_without_until_the_entries_last_as_long_as_the_document(tmp_path):
    src = numbers_file(tmp_path, f"{CCCD}\n")
    out = tmp_path / "w.json"
    proc = kiosk("watchlist", "build", "--valid-hours", "48", str(src), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    wl = Watchlist.from_json(out.read_bytes())
    assert local_date(wl.expires_at) == date.fromisoformat(json.loads(out.read_bytes())
                                                           ["entries"][0]["until"])
    assert wl.matches(CCCD, at=datetime.now(UTC))
    doc = json.loads(out.read_bytes())
    assert doc["version"] == 2 and doc["kdf"]["name"] == "argon2id"
    assert CCCD not in out.read_text(encoding="utf-8")
    assert "argon2id" in proc.stdout
    # A new salt each time: two builds of the same list share no hash.
    again = tmp_path / "w2.json"
    assert kiosk("watchlist", "build", str(src), "-o", str(again)).returncode == 0
    assert json.loads(out.read_bytes())["salt"] != json.loads(again.read_bytes())["salt"]


def test_bad_lines_are_listed_with_their_numbers_and_nothing_is_written(tmp_path):
    src = numbers_file(tmp_path, f"{CCCD}\n******012345\n\n# note\nNguyễn Văn An\n12345\n")
    out = tmp_path / "w.json"
    proc = kiosk("watchlist", "build", "--until", "2099-01-01", str(src), "-o", str(out))
    assert proc.returncode != 0
    assert "line 2: '******012345' is masked" in proc.stderr
    assert "line 5: 'Nguyễn Văn An' is not a full identity number" in proc.stderr
    assert "line 6: '12345'" in proc.stderr
    assert "line 1" not in proc.stderr and "line 4" not in proc.stderr
    assert "3 bad line(s)" in proc.stderr
    assert not out.exists()


def test_bad_until_and_help(tmp_path):
    src = numbers_file(tmp_path, f"{CCCD}\n")
    proc = kiosk("watchlist", "build", "--until", "14/06/2022", str(src), "-o",
                 str(tmp_path / "w.json"))
    assert proc.returncode == 2 and "'14/06/2022' is not a date" in proc.stderr
    proc = kiosk("watchlist", "build", "--until", "2000-01-01", str(src), "-o",
                 str(tmp_path / "w.json"))
    assert proc.returncode == 2 and "in the past" in proc.stderr
    proc = kiosk("watchlist", "build", "--help")
    assert proc.returncode == 0 and "Example: checkpoint-kiosk watchlist build" in proc.stdout
