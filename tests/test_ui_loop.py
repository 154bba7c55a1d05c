"""A small ScanLoop for the screen tests, built from real parts, and its own checks.

It follows the contract of ``kiosk.scanloop`` (see ``kiosk/ui/contract.py``): frames are
real camera-sized images with real QR codes (segno), decoded by zxing-cpp, recorded in a
real SQLite file, with the lights on gpiozero's MockFactory.  The policy is deliberately
tiny; the real one is the lead's.  Replace with ``kiosk.scanloop.ScanLoop`` once merged.
"""

from __future__ import annotations

import io
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import segno
import zxingcpp
from gpiozero import Buzzer, OutputDevice, TrafficLights
from gpiozero.pins.mock import MockFactory
from PIL import Image

from kiosk.model import Credential, Decision, Kind, Outcome

CCCD_OK = "001085012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|Số 8 Ngõ 12, Láng Hạ|10052021"
# Digits 5–6 say 1985 but the birth date says 1990: a forged or corrupted code.
CCCD_MISMATCH = "079185012345||Lê Văn Hạnh|02031990|Nam|Quận 1, TP Hồ Chí Minh|01012022"
VENUE = "https://tokhaiyte.vn/?venue=12345"
PC_COVID_NFD = "******012345|NGUYEN VAN BINH|1990-**-**|0|162979388586171234|1<GD479"


@dataclass(frozen=True)
class ScanResult:
    at: datetime
    credential: Credential
    decision: Decision
    checkin_id: str | None
    direction: str
    source: str


@dataclass(frozen=True)
class Health:
    camera_ok: bool = True
    camera_message: str | None = None
    store_ok: bool = True
    store_message: str | None = None
    disk_low: bool = False
    online: bool | None = True
    backlog: int = 0
    last_sync: datetime | None = None
    reprovision_needed: bool = False
    clock_synced: bool = True
    trust_list_age: timedelta | None = timedelta(days=1)


def qr_frame(text: str, size: tuple[int, int] = (640, 480), seed: int = 7) -> np.ndarray:
    """A grey camera-like frame (noisy background) with ``text`` as a QR code in the middle."""
    rng = np.random.default_rng(seed)
    w, h = size
    frame = (rng.normal(110, 18, (h, w)) + np.linspace(0, 40, w)[None, :]).clip(0, 255)
    frame = frame.astype(np.uint8)
    buf = io.BytesIO()
    segno.make(text, error="m").save(buf, kind="png", scale=4, border=3)
    buf.seek(0)
    code = np.array(Image.open(buf).convert("L"))
    ch, cw = code.shape
    y, x = (h - ch) // 2, (w - cw) // 2
    frame[y:y + ch, x:x + cw] = code
    return frame


def mask_name(name: str) -> str:
    """``Nguyễn Văn An`` → ``Nguyễn Văn A**`` (payloads.md §6 style)."""
    parts = name.split()
    if not parts:
        return ""
    last = parts[-1]
    return " ".join(parts[:-1] + [last[0] + "*" * (len(last) - 1)])


def parse(text: str) -> Credential:
    fields = text.strip("\ufeff\r\n").split("|")
    if len(fields) >= 6 and fields[0].isdigit() and len(fields[0]) == 12:
        number, name, birth = fields[0], fields[2], fields[3]
        year = birth[-4:]
        problems = () if number[4:6] == year[2:] else ("cccd_birth_year_mismatch",)
        return Credential(Kind.CCCD, number,
                          {"name": mask_name(name), "id": number[:3] + "*" * 6 + number[-3:],
                           "birth_year": year},
                          {"number": number}, {}, problems)
    if len(fields) == 6 and fields[4].isdigit():
        return Credential(Kind.PC_COVID, fields[4],
                          {"name": mask_name(fields[1]), "id": fields[0],
                           "birth_year": fields[2][:4]})
    if text.startswith("http"):
        return Credential(Kind.VENUE)
    return Credential(Kind.UNKNOWN)


def decide(cred: Credential) -> Decision:
    if not cred.kind.is_person:
        return Decision(Outcome.STOP, ("not_a_personal_code",))
    if cred.problems:
        return Decision(Outcome.STOP, cred.problems)
    if cred.kind is Kind.PC_COVID:
        return Decision(Outcome.CHECK, ("no_vaccination_status",))
    return Decision(Outcome.PASS, ())


class RealishLoop:
    """The ScanLoop contract over a frame source, zxing-cpp, SQLite and mock GPIO pins."""

    accepted_kinds = ("cccd", "pc_covid", "eu_dcc", "bhyt")

    def __init__(self, db_path: Path, *, now=lambda: datetime.now(UTC)) -> None:
        self.now = now
        self.db = sqlite3.connect(db_path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS checkins (id TEXT PRIMARY KEY, at TEXT, direction TEXT,"
            " kind TEXT, name TEXT, ident TEXT, outcome TEXT, reasons TEXT, source TEXT)")
        self.factory = MockFactory()
        self.traffic = TrafficLights(2, 3, 4, pin_factory=self.factory)
        self.buzzer = Buzzer(17, pin_factory=self.factory)
        self.gate = OutputDevice(27, pin_factory=self.factory)
        self._direction = "in"
        self._frame: np.ndarray | None = None
        self._fresh = False
        self._last_text: str | None = None
        self.health_state = Health()
        self.step_error: Exception | None = None
        self.steps = 0
        self.pending: list = []  # results or Health reports the next step() returns

    # camera side (what the test does)
    def show(self, frame: np.ndarray | None) -> None:
        self._frame, self._fresh = frame, True

    # the contract
    @property
    def direction(self) -> str:
        return self._direction

    def set_direction(self, direction: str) -> None:
        if direction not in ("in", "out"):
            raise ValueError(f"direction must be 'in' or 'out'; got {direction!r}")
        self._direction = direction

    def latest_frame(self) -> np.ndarray | None:
        return self._frame

    def step(self) -> list:
        self.steps += 1
        if self.step_error is not None:
            raise self.step_error
        out = list(self.pending)
        self.pending.clear()
        if self._fresh and self._frame is not None:
            self._fresh = False
            found = zxingcpp.read_barcodes(self._frame)
            for code in found:
                if code.text == self._last_text:
                    continue  # the same code held in front of the camera is one check-in
                self._last_text = code.text
                out.append(self._process(parse(code.text), "scan"))
        return out

    def _process(self, cred: Credential, source: str) -> ScanResult:
        decision = decide(cred)
        checkin_id = None
        if cred.kind.is_person:
            checkin_id = uuid.uuid4().hex
            with self.db:
                self.db.execute(
                    "INSERT INTO checkins VALUES (?,?,?,?,?,?,?,?,?)",
                    (checkin_id, self.now().isoformat(), self._direction, cred.kind.value,
                     cred.display.get("name", ""), cred.display.get("id", ""),
                     decision.outcome.value, ",".join(decision.reasons), source))
        self._signal(decision.outcome)
        return ScanResult(self.now(), cred, decision, checkin_id, self._direction, source)

    def _signal(self, outcome: Outcome) -> None:
        self.traffic.off()
        {Outcome.PASS: self.traffic.green, Outcome.CHECK: self.traffic.amber,
         Outcome.STOP: self.traffic.red}[outcome].on()
        self.gate.value = outcome is Outcome.PASS

    def manual_entry(self, number: str) -> ScanResult:
        if not (number.isdigit() and len(number) == 12):
            raise ValueError(f"a CCCD number has 12 digits; got {len(number)} characters")
        cred = Credential(Kind.CCCD, number, {"id": number[:3] + "*" * 6 + number[-3:]},
                          {"number": number})
        return self._process(cred, "manual")

    def override(self, checkin_id: str, outcome: Outcome, reason: str) -> ScanResult:
        row = self.db.execute("SELECT kind, name, ident, direction FROM checkins WHERE id=?",
                              (checkin_id,)).fetchone()
        if row is None:
            raise ValueError(f"no check-in {checkin_id!r} to override")
        with self.db:
            self.db.execute("UPDATE checkins SET outcome=?, reasons=?, source='override' "
                            "WHERE id=?", (outcome.value, reason, checkin_id))
        self._signal(outcome)
        cred = Credential(Kind(row[0]), None, {"name": row[1], "id": row[2]})
        return ScanResult(self.now(), cred, Decision(outcome, (reason,)), checkin_id, row[3],
                          "override")

    def counts_today(self) -> dict[str, int]:
        counts = {k: 0 for k in ("in", "out", "pass", "check", "stop", "total")}
        for direction, outcome, n in self.db.execute(
                "SELECT direction, outcome, count(*) FROM checkins GROUP BY 1, 2"):
            counts[direction] += n
            counts[outcome] += n
            counts["total"] += n
        return counts

    def recent(self, limit: int = 10) -> list[dict]:
        rows = self.db.execute("SELECT at, direction, kind, name, ident, outcome FROM checkins "
                               "ORDER BY rowid DESC LIMIT ?", (limit,)).fetchall()
        return [{"time": at, "direction": d, "kind": k, "display": {"name": n, "id": i},
                 "decision": o} for at, d, k, n, i, o in rows]

    def record(self, checkin_id: str) -> tuple:
        return self.db.execute("SELECT direction, kind, outcome, reasons, source FROM checkins"
                               " WHERE id=?", (checkin_id,)).fetchone()

    def health(self) -> Health:
        return self.health_state

    def lights(self) -> dict[str, bool]:
        return {"red": bool(self.traffic.red.value), "amber": bool(self.traffic.amber.value),
                "green": bool(self.traffic.green.value), "buzzer": bool(self.buzzer.value),
                "gate": bool(self.gate.value)}

    def close(self) -> None:
        for dev in (self.traffic, self.buzzer, self.gate):
            dev.close()
        self.db.close()


@pytest.fixture
def realish_loop(tmp_path):
    loop = RealishLoop(tmp_path / "checkins.db")
    yield loop
    loop.close()


# --- checks of the helper itself: the screen tests are only as real as this -------------


def test_helper_decodes_a_real_cccd_frame_and_records_it(realish_loop):
    realish_loop.show(qr_frame(CCCD_OK))
    (result,) = realish_loop.step()
    assert result.decision.outcome is Outcome.PASS
    assert result.credential.display["name"] == "Trần Thị Bích N***"
    assert realish_loop.record(result.checkin_id)[:3] == ("in", "cccd", "pass")
    assert realish_loop.lights()["green"] and not realish_loop.lights()["red"]
    realish_loop.show(qr_frame(CCCD_OK, seed=8))
    assert realish_loop.step() == []  # the same code held still is not a second check-in


def test_helper_mismatch_and_venue(realish_loop):
    realish_loop.show(qr_frame(CCCD_MISMATCH))
    (bad,) = realish_loop.step()
    assert bad.decision.reasons == ("cccd_birth_year_mismatch",)
    realish_loop.show(qr_frame(VENUE))
    (venue,) = realish_loop.step()
    assert venue.checkin_id is None and venue.decision.outcome is Outcome.STOP
    assert realish_loop.counts_today()["total"] == 1
