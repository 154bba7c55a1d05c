"""What a day at a border post contains: people, their codes, the plan, the network.

Used by ``bench.day``; everything is drawn from seeded ``random.Random`` objects.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

# People per simulated hour at a border post, by local hour (quiet nights, a morning rush).
HOURLY = (4, 2, 2, 2, 4, 15, 40, 70, 90, 80, 70, 60, 50, 60, 70, 80, 90, 70, 50, 35, 25,
          15, 10, 6)

SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
            "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE = ("Văn", "Thị", "Hữu", "Minh", "Thanh", "Ngọc", "Đức", "Bích", "Quốc", "Thu")
GIVEN = ("Hạnh", "Ngọc", "Bình", "Toàn", "Hương", "Dũng", "Tuấn", "Mỹ", "Phúc", "Lộc",
         "An", "Châu", "Lan", "Hùng")
PROVINCES = ("001", "020", "022", "031", "048", "079", "092")
ASCII = str.maketrans("ĂÂĐÊÔƠƯăâđêôơư", "AADEOOUaadeoou")


# --- people and their codes ----------------------------------------------------------------


@dataclass
class Person:
    n: int
    name: str
    born: date
    female: bool
    cccd: str
    cmnd: str
    qid: str
    insurance: str
    uvci: str
    watch: str | None = None  # 'cccd' or 'cmnd': the identifier the watchlist names

    @property
    def watch_key(self) -> str | None:
        return {"cccd": self.cccd, "cmnd": self.cmnd}.get(self.watch or "")


def make_people(rng: random.Random, count: int) -> list[Person]:
    people = []
    for n in range(count):
        born = date(rng.randint(1945, 2005), rng.randint(1, 12), rng.randint(1, 28))
        female = rng.random() < 0.5
        century = 0 if born.year < 2000 else 2
        number = (f"{rng.choice(PROVINCES)}{century + female}{born.year % 100:02d}"
                  f"{rng.randint(0, 999999):06d}")
        middle = "Thị" if female else rng.choice(MIDDLE)
        people.append(Person(
            n=n, name=f"{rng.choice(SURNAMES)} {middle} {rng.choice(GIVEN)}", born=born,
            female=female, cccd=number, cmnd=f"{rng.randint(10**8, 10**9 - 1)}",
            qid="".join(rng.choice("0123456789") for _ in range(18)),
            insurance=f"GD479{rng.randint(0, 10**10 - 1):010d}",
            uvci=f"URN:UVCI:01:VN:DAY{n:010d}#{rng.choice('ABCDEFGH')}",
        ))
    return people


class Codes:
    """The QR payloads a person can show; EU DCCs are signed with the day's own DSC."""

    def __init__(self, rng: random.Random) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        from kiosk.domain.trustlist import build_json
        from kiosk.testing import dcc_issue

        self.rng = rng
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.dsc = dcc_issue.make_dsc(self.key, not_before=now - timedelta(days=30),
                                      not_after=now + timedelta(days=365))
        self.trust_list = build_json([(self.dsc, "VN")])

    def make(self, person: Person, kind: str) -> bytes:
        maker = {"cccd": self._cccd, "cccd_mismatch": self._cccd, "pc_covid": self._pc_covid,
                 "bhyt": self._bhyt, "eu_dcc": self._eu_dcc, "venue": self._venue,
                 "garbage": self._garbage}.get(kind)
        if maker is None:
            raise ValueError(f"unknown code kind {kind!r}")
        return maker(person, kind)

    def _cccd(self, p: Person, kind: str) -> bytes:
        sex = "Nữ" if p.female else "Nam"
        if kind == "cccd_mismatch":  # the number says one sex, the card the other
            sex = "Nam" if p.female else "Nữ"
        rng = self.rng
        old = p.cmnd if (p.watch == "cmnd" or rng.random() < 0.6) else ""
        return (f"{p.cccd}|{old}|{p.name}|{p.born:%d%m%Y}|{sex}|Số {p.n % 200 + 1} Phố Huế,"
                f" Hà Nội|{rng.randint(1, 28):02d}0{rng.randint(1, 9)}2021").encode()

    def _pc_covid(self, p: Person, kind: str) -> bytes:
        # The person's own phone code: the full CCCD number in its first field.
        doc = p.cccd if (p.watch or self.rng.random() < 0.5) else "******" + p.cccd[-6:]
        name = p.name.translate(ASCII).upper()
        return (f"{doc}|{name}|{p.born.year}-**-**|0|{p.qid}|"
                f"1<GD4790*******<0912******").encode()

    def _bhyt(self, p: Person, kind: str) -> bytes:
        name_hex = p.name.encode().hex()
        addr_hex = "Phố Huế, Hà Nội".encode().hex()
        return (f"{p.insurance}|{name_hex}|{p.born:%d/%m/%Y}|{1 + p.female}|{addr_hex}|"
                f"01 - 043|01/01/2021|31/12/2021|01/01/2021|0103012345|-|4|01/01/2021|"
                f"{p.n:x}-7|$").encode()

    def _eu_dcc(self, p: Person, kind: str) -> bytes:
        from kiosk.testing import dcc_issue

        now = datetime.now(UTC)
        hcert = dcc_issue.vaccination(
            family=p.name.split()[0], given=" ".join(p.name.split()[1:]),
            dob=p.born.isoformat(), date=(now - timedelta(days=60)).date().isoformat(),
            uvci=p.uvci)
        cose = dcc_issue.sign(hcert, self.key, dsc=self.dsc,
                              issued_at=now - timedelta(days=60),
                              expires_at=now + timedelta(days=300))
        return dcc_issue.encode(cose).encode()

    def _venue(self, p: Person, kind: str) -> bytes:
        return f"https://tokhaiyte.vn/?page=venue&id=HN-{self.rng.randint(1, 9999):04d}".encode()

    def _garbage(self, p: Person, kind: str) -> bytes:
        rng = self.rng
        choice = rng.randrange(4)
        if choice == 0:
            return bytes(rng.randrange(256) for _ in range(rng.randint(1, 300)))
        if choice == 1:
            return b"WIFI:S:cafe;T:WPA;P:12345678;;"
        if choice == 2:
            return "|".join("x" * rng.randint(0, 5) for _ in range(7)).encode()
        return f"{p.cccd}|{p.name}".encode()  # a truncated card code

KINDS = (("cccd", 40), ("pc_covid", 20), ("bhyt", 8), ("eu_dcc", 8), ("venue", 5),
         ("garbage", 5), ("cccd_mismatch", 8))
WATCH_KINDS = ("cccd", "pc_covid", "pc_covid", "cccd")


# --- the plan -------------------------------------------------------------------------------


@dataclass
class Step:
    hour: float
    what: str
    args: dict = field(default_factory=dict)


def make_plan(rng: random.Random, hours: float, *, rate: float = 1.0) -> list[Step]:
    """The day's steps in order; every act happens at least once, more on longer days."""
    steps: list[Step] = []
    whole = max(1, math.ceil(hours))
    for h in range(whole):
        steps += _hour(rng, h, min(1.0, hours - h), rate)
    # The acts every day has, at fixed points (fractions of the day) so a short day has all.
    # Ordered so one act does not hide the next: a 401 that stops sync (on main) comes
    # after the middlebox's 400 and the policy change it would keep from the kiosk.
    fixed = [(0.03, "net_400"), (0.07, "net_ok"), (0.10, "net_drip"), (0.14, "net_ok"),
             (0.12, "long_press"), (0.15, "officer_manual"), (0.18, "kill"),
             (0.20, "officer_override"), (0.22, "publish_valid"), (0.25, "officer_direction"),
             (0.30, "kill"), (0.35, "officer_selftest"), (0.40, "publish_invalid"),
             (0.45, "net_401"), (0.48, "net_ok"), (0.50, "revoke"), (0.58, "reprovision"),
             # Documents tampered with in transit while the province publishes new ones.
             (0.595, "net_tamper"), (0.60, "publish_valid"), (0.615, "net_ok"),
             (0.62, "net_flaky"), (0.66, "net_ok"), (0.70, "disk_fill"), (0.76, "disk_free"),
             (0.80, "kill"), (0.85, "net_down"), (0.88, "net_ok"), (0.90, "officer_direction"),
             # The handheld scanner's cable pulled mid-line, then plugged in again.
             (0.32, "scanner_unplug"), (0.37, "scanner_plug"),
             # People with no code or document, declared on the officer's form.
             (0.46, "officer_declare"), (0.74, "officer_declare"), (0.95, "officer_declare"),
             # The last one declared with a number comes back with their card: known now.
             (0.97, "declared_return"),
             # Watchlisted people: by their listed card, by their phone code carrying the
             # same number, by a card whose old CMND is the listed number; typed by hand.
             (0.05, "watch_cccd"), (0.27, "watch_pc_covid"), (0.42, "watch_cmnd"),
             (0.55, "watch_pc_covid"), (0.68, "watch_manual"), (0.93, "watch_cccd")]
    for fraction, what in fixed:
        steps.append(Step(hours * fraction, what))
    steps.sort(key=lambda s: s.hour)
    return steps


def _hour(rng: random.Random, h: int, span: float, rate: float) -> list[Step]:
    """Hour ``h`` of the day (``span`` of it played): arrivals, then random acts."""
    steps: list[Step] = []
    mean = HOURLY[(6 + h) % 24] * rate * span  # the day starts at 06:00
    for _ in range(_poisson(rng, mean)):
        steps.append(Step(h + rng.random() * span, "arrival"))
    # Random acts, scaled by the hour's length.
    if rng.random() < 0.3 * span:
        steps.append(Step(h + rng.random() * span, "kill"))
    for act in ("officer_manual", "officer_override", "officer_direction", "officer_declare"):
        if rng.random() < 0.5 * span:
            steps.append(Step(h + rng.random() * span, act))
    if rng.random() < 0.08 * span:
        steps.append(Step(h + rng.random() * span, "officer_selftest"))
    if rng.random() < 0.15 * span:
        steps.append(Step(h + rng.random() * span, "publish_valid"))
    if rng.random() < 0.05 * span:
        steps.append(Step(h + rng.random() * span, "publish_invalid"))
    net = rng.choices(("ok", "flaky", "down"), (70, 20, 10))[0]
    if net != "ok":
        steps.append(Step(h + rng.random() * span * 0.5, "net_" + net))
        steps.append(Step(h + span * 0.9, "net_ok"))
    return steps


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# --- the network --------------------------------------------------------------------------


class Network:
    """What the fault proxy does to each request, by the current mode."""

    MODES = {
        "ok": (("pass", 1),),
        "flaky": (("pass", 50), ("drop", 10), ("reset", 8), ("500", 10), ("429", 8),
                  ("truncate", 6), ("reset_after", 6), ("slow", 2)),
        "down": (("drop", 1),),
        "401": (("401", 1),),
        "400": (("400", 1), ("pass", 1)),
        "drip": (("drip", 1),),
        # A middlebox that changes documents in transit (tests/faultproxy.py): each way of
        # tampering, with untouched answers between (a kiosk must still get the real ones).
        "tamper": (("pass", 1), ("tamper", 1), ("cut_body", 1), ("strip_signature", 1),
                   ("replay", 1), ("foreign_key", 1)),
    }

    def __init__(self, seed: int) -> None:
        self.mode = "ok"
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.requests = 0  # since the mode was set
        self.faults = 0  # of them, those that met a fault (not "pass")
        self.since = time.monotonic()

    def set(self, mode: str) -> None:
        with self.lock:
            self.mode = mode
            self.requests = self.faults = 0
            self.since = time.monotonic()

    def choose(self) -> str:
        with self.lock:
            faults, weights = zip(*self.MODES[self.mode], strict=True)
            fault = self.rng.choices(faults, weights)[0]
            self.counts[fault] += 1
            self.requests += 1
            self.faults += fault != "pass"
            return fault


