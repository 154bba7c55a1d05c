"""A checkpoint's day, end to end: the real kiosk against the real central through faults.

    python -m bench.day --hours 30 --seed 7

The kiosk runs in a child process (``bench.day_kiosk``: ``kiosk.runtime.build.build`` from a real
configuration file, the real screen on SDL's dummy driver, gpiozero mock pins, a real SQLite
store), the central server (``offline_queue.central``) on 127.0.0.1 behind a fault proxy
(``tests/faultproxy.py``).  The day is a plan made from the seed: a queue of people with
every code kind, watchlisted people showing their other code, repeated codes, officers
opening the panel mid-queue (PIN, manual CCCD entry, override, direction, self-test), the
province publishing documents (valid and invalid), network drops, 401s, slow drips and a
middlebox's 400s, a revoked token and a re-provisioning with the real CLI, ``kill -9`` and
restarts, the disk filling and freeing.  Simulated hours set the traffic (people per hour
follow a border post's day); the day runs as fast as the kiosk answers.

At the end the invariants are checked and printed as figures; the exit status is 0 only
when every invariant holds.  See docs/day.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.day_plan import (
    KINDS,
    WATCH_KINDS,
    Codes,
    Network,
    Person,
    Step,
    make_people,
    make_plan,
)
from bench.day_rig import CentralProcess, Disk, KioskProcess, ScannerPort
from kiosk.domain.policy import DISPLAY_FIELDS

if TYPE_CHECKING:
    from offline_queue.central.backend import CentralDB

REPO = Path(__file__).resolve().parent.parent
PIN = "2468"
CHECKPOINT = "CP-DAY-01"
RESULT_SECONDS = 2.0
DEDUPE_SECONDS = 1.0
SYNC_TIMEOUT = 2.0
# A request the kiosk waits on longer than this is a hang (the drip test's yardstick).
REQUEST_DEADLINE_S = 8.0
DRIP_MAX_S = 10.0  # a slow drip stops after this long (the kiosk should give up before)
# More requests than this in any STORM_WINDOW_S is a retry loop, not a busy drain (a batch
# of 50 every 0.2 s at most, with the documents every 2 s, stays well below it).
STORM_WINDOW_S = 10.0
STORM_REQUESTS = 300
# The central: the real command, as a province runs it (PostgreSQL) or a single hospital
# (SQLite), with two workers and the status republisher.  The republisher looks for new
# declarations every STATUS_EVERY seconds (the product's default is a minute: the day's
# declared_return act would wait up to that long for nothing but the clock).
CENTRALS = ("postgresql", "sqlite")
CENTRAL_WORKERS = 2
STATUS_EVERY = 5.0
CHECKER_REFRESH_S = 2.0  # kiosk.runtime.checker: how often stored documents are looked at
SYNC_OPTIONS = {"boot_jitter": 0.2, "link_jitter": 0.2, "idle_interval": 0.5,
                "documents_interval": 2.0, "backoff_base": 0.2, "backoff_cap": 2.0,
                "batch_size": 50}

INVARIANTS = (
    ("lost", "signalled check-ins missing at the central"),
    ("duplicated", "check-ins stored twice (conflicts, or one scan recorded twice)"),
    ("watchlisted_passed", "watchlisted people who got 'pass'"),
    ("border_passed_without_declaration", "passes at the border for people not declared"),
    ("scanner_lines_not_decided_once", "handheld-scanner lines not decided exactly once"),
    ("scanner_cut_lines_recorded", "scanner lines cut by an unplug that were decided"),
    ("declarations_not_decided_once", "saved declaration forms not decided exactly once"),
    ("declarations_without_officer", "declared check-ins at the central without an officer"),
    ("abandoned_forms_recorded", "abandoned declaration forms that were recorded"),
    ("declared_not_known_on_return", "people declared here refused for no declaration later"),
    ("officer_actions_lost", "officer actions that did not take effect"),
    ("document_exits", "kiosk exits caused by a document"),
    ("decided_under_unpublished_policy", "decisions under a policy the province never published"),
    ("tampered_documents_held", "documents held by the kiosk that the central never published"),
    ("identifiers_at_rest", "full identifiers in the kiosk's files, logs or support bundle"),
    ("sealed_rows_not_opened", "rows whose identity the central could not open, or lost"),
    ("light_mismatches", "frames where the lights contradicted the screen"),
    ("tracebacks", "tracebacks on screen or in the INFO log"),
    ("not_recorded_with_disk_space", "check-ins refused by the store while the disk had room"),
    ("hung_requests", f"requests the kiosk waited on longer than {REQUEST_DEADLINE_S:.0f} s"),
    ("kept_more_than_policy", "check-ins keeping fields the policy in force drops"),
    ("request_storms", f"{STORM_WINDOW_S:.0f} s windows with more than {STORM_REQUESTS} requests"),
    ("central_log_errors", "tracebacks, unopened rows and errors in the central's log"),
    ("fleet_backlog", "rows the fleet still reported held after the final drain"),
    ("central_stop", "central not exiting 0 on SIGTERM, or workers left behind"),
)



# --- the day ----------------------------------------------------------------------------------


class Day:
    def __init__(self, work: Path, *, seed: int, hours: float, rate: float = 1.0,
                 people: int = 400, frames_share: float = 0.03, quiet: bool = False,
                 central: str = "postgresql", status_every: float | None = STATUS_EVERY
                 ) -> None:
        if central not in CENTRALS:
            raise ValueError(f"central is {central!r}; use one of {', '.join(CENTRALS)}")
        self.work = work
        self.central_kind = central
        self.status_every = status_every
        self.seed = seed
        self.hours = hours
        self.rate = rate
        self.quiet = quiet
        self.frames_share = frames_share
        self.rng = random.Random(seed)
        self.population = make_people(self.rng, people)
        for person, watch in zip(self.rng.sample(self.population, 6),
                                 ("cccd", "cccd", "cccd", "cccd", "cmnd", "cmnd"), strict=True):
            person.watch = watch
        self.watchlisted = [p for p in self.population if p.watch]
        # Who declared their movement (the status document the central publishes with the
        # border policy); the others have no record and must never pass at the border.
        self.declared = {p.n for p in self.rng.sample(self.population, int(people * 0.7))}
        self._status_body: bytes | None = None
        self.codes = Codes(random.Random(seed + 1))
        self.config = work / "kiosk.toml"
        self.state_dir = work / "state"
        # The central's --db: the SQLite file, or the PostgreSQL URL once its server runs.
        self.central_target = str(work / "central.db")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # observations
        self.results: list[dict] = []
        self.by_tag: dict[str, list[dict]] = {}
        self.tag_person: dict[str, Person] = {}
        self.last_raw: dict[str, bytes] = {}
        self.interrupt_tags: list[str] = []
        self.repeats = 0
        self.mismatches: list[dict] = []
        self.logs: list[dict] = []
        self.internal_errors: list[str] = []
        self.exits: list[dict] = []
        self.notes: list[tuple[str, str]] = []
        self.officer: Counter[str] = Counter()
        self.officer_lost: list[str] = []
        self.overrides: list[tuple[str, str]] = []  # (intended original id, override tag)
        self.documents: Counter[str] = Counter()
        # sha256 of every body the central took, by document: the kiosk holds no other.
        self.published: dict[str, set[str]] = {}
        self.tampered_before: dict[str, int] = {}
        self.last_policy: str | None = None  # the profile of the last policy published
        self.not_recorded = Counter()
        self.kills = 0
        self.n = 0
        self.direction = "in"
        self.last_check_id: str | None = None
        self.last_exit: dict = {}
        self.sync_options = SYNC_OPTIONS
        self.hangs = 0
        self.frames: Counter[str] = Counter()
        self.shown_kinds: Counter[str] = Counter()
        self.drip_started = -1e9
        self.drips_before = 0
        self.policy_in_force: str | None = None
        self.applied = 0  # times the kiosk put new documents in force
        self.timing: Counter[str] = Counter()
        # The handheld scanner beside the camera: a share of the ID cards go through it.
        self.scanner_share = 0.2
        self.scanned: list[str] = []  # tags of complete lines sent
        self.cut: list[str] = []  # tags of lines cut by an unplug
        self.scanner_counts: Counter[str] = Counter()
        # People recorded on the officer's declaration form (no code, no document), and forms
        # abandoned half-filled.
        self.declared_tags: list[str] = []
        # (check-in id, person) of declarations saved with a document number, and the tags of
        # those people's ID cards shown when they came back.
        self.declared_numbers: list[tuple[str, Person]] = []
        # Person -> the last tag before their form was saved: with a number, the central
        # folds the declaration into its status document, so from then on that person is
        # declared wherever they come back (not only in declared_return).
        self.declared_here: dict[int, int] = {}
        self.returned: list[str] = []
        self.abandoned: list[str] = []

    # -- observations ------------------------------------------------------------------

    def on_event(self, event: dict) -> None:
        ev = event.get("ev")
        if ev == "policy":
            self.policy_in_force = event.get("profile")
            self.applied += 1
        elif ev == "result":
            event["policy"] = self.policy_in_force
            self.results.append(event)
            if event.get("tag"):
                self.by_tag.setdefault(event["tag"], []).append(event)
            if "not_recorded" in event.get("reasons", ()):
                self.not_recorded["full" if self.disk.full else "room"] += 1
        elif ev == "mismatch":
            self.mismatches.append(event)
        elif ev == "log":
            self.logs.append(event)
        elif ev == "screen" and event.get("internal_error"):
            self.internal_errors.append(event["internal_error"])
        elif ev == "exit":
            self.last_exit = event

    def note(self, what: str, text: str) -> None:
        self.notes.append((what, text))
        if not self.quiet:
            print(f"  [{what}] {text}", file=sys.stderr)

    def kiosk_exited(self, code: int | None) -> None:
        error = self.last_exit.get("error")
        self.last_exit = {}
        self.exits.append({"code": code, "error": error})
        self.note("exit", f"the kiosk exited with status {code}: {error}")

    # -- the central and the CLI ---------------------------------------------------------

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 60) -> \
            subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHECKPOINT_KIOSK_")}
        started = time.monotonic()
        try:
            return subprocess.run([sys.executable, "-m", "kiosk", *args], cwd=REPO, env=env,
                                  input=stdin, capture_output=True, text=True, timeout=timeout)
        finally:
            self.timing["CLI"] += time.monotonic() - started

    def central_db(self) -> CentralDB:
        """A connection to the central's database, SQLite or PostgreSQL (the central's own
        ``db.connect``): every read of the central goes through it, with SQL both engines
        take, so that both variants check the same invariants."""
        from offline_queue.central import db as central_db

        return central_db.connect(self.central_target, migrate=False)

    def enrolment_token(self) -> str:
        from offline_queue.central import db as central_db

        with self.central_db() as db:
            return central_db.create_enrolment_token(db, checkpoint_id=CHECKPOINT,
                                                     name="Cửa khẩu (day)")

    def publish(self, name: str, body: bytes, *, valid: bool) -> bool:
        """``checkpoint-kiosk central set-document``; True if the central took it."""
        path = self.work / f"{name}.json"
        path.write_bytes(body)
        done = self.cli("central", "set-document", "--db", self.central_target, name,
                        str(path))
        taken = done.returncode == 0
        if taken:
            self.published.setdefault(name, set()).add(hashlib.sha256(body).hexdigest())
        self.documents[f"{'valid' if valid else 'invalid'} {name} "
                       f"{'published' if taken else 'refused'}"] += 1
        if valid and not taken:
            self.note("publish", f"the central refused a valid {name}: {done.stderr.strip()}")
        return taken

    def watchlist_body(self) -> bytes:
        from kiosk.domain.watchlist import Watchlist

        until = datetime.now(UTC).date() + timedelta(days=14)
        return Watchlist.build([(p.watch_key, until) for p in self.watchlisted],
                               valid_for=timedelta(days=3))

    def status_body(self) -> bytes:
        """The status document: the declared people by all their numbers (built once: its
        Argon2id hashes cost some seconds)."""
        from kiosk.domain.status import HealthStatus, StatusList

        if self._status_body is None:
            now = datetime.now(UTC)
            # Declared, from a level-1 commune, two doses: what the border profile asks.
            facts = HealthStatus(declared_at=now - timedelta(hours=2),
                                 declared_until=now.date() + timedelta(days=3), origin="00001",
                                 doses=2, last_dose=now.date() - timedelta(days=60))
            self._status_body = StatusList.build(
                [([p.cccd, p.cmnd, p.qid, p.insurance], facts)
                 for p in self.population if p.n in self.declared],
                issued_at=now - timedelta(minutes=5), valid_for=timedelta(days=3))
        return self._status_body

    @staticmethod
    def risk_levels_body() -> bytes:
        from kiosk.domain.status import RiskLevels

        return RiskLevels.build({"00001": 1, "00002": 3}, valid_for=timedelta(days=3))

    # The border policy keeps only names (data minimisation); hospital keeps every field.
    POLICIES = {"hospital": {"profile": "hospital"},
                "border": {"profile": "border", "keep_fields": ["name"]}}

    def publish_valid(self, which: int, *, wait: bool = False) -> None:
        profile = ("hospital", "border")[which % 2] if which else "hospital"
        self.publish("policy", json.dumps(self.POLICIES[profile]).encode(), valid=True)
        self.last_policy = profile
        self.publish("watchlist", self.watchlist_body(), valid=True)
        self.publish("trust_list", self.codes.trust_list, valid=True)
        self.publish("status", self.status_body(), valid=True)
        self.publish("risk_levels", self.risk_levels_body(), valid=True)
        if wait and self.kiosk.alive:
            # Until the running kiosk decides with it (it fetches every few seconds).
            deadline = time.monotonic() + SYNC_OPTIONS["documents_interval"] * 2 + 2
            while self.policy_in_force != profile and time.monotonic() < deadline:
                self.kiosk.drain(0.2)

    def rewrite_document(self, name: str, body: bytes) -> bytes:
        """What a tampering middlebox makes of a document: the permissive office policy, an
        empty watchlist (both well-formed: only the signature can tell), else a changed
        byte."""
        from faultproxy import flip_a_byte

        from kiosk.domain.watchlist import Watchlist

        if name == "policy":
            return json.dumps({"profile": "office"}).encode()
        if name == "watchlist":
            return Watchlist.build([], valid_for=timedelta(days=3))
        return flip_a_byte(name, body)

    def publish_one_valid(self, name: str) -> None:
        body = {"policy": json.dumps({"profile": "hospital"}).encode(),
                "watchlist": self.watchlist_body(), "trust_list": self.codes.trust_list,
                "status": self.status_body(), "risk_levels": self.risk_levels_body()}[name]
        self.publish(name, body, valid=True)
        if name == "policy":
            self.last_policy = "hospital"

    # The version-1 watchlist is a salted SHA-256 list from before issue 14: refused (rebuild).
    INVALID = (("policy", b'{"profile": "airport"}'), ("watchlist", b'{"entries": []}'),
               ("trust_list", b'[{"kid": 5}]'),
               ("watchlist", b'{"version": 1, "issued_at": "2026-01-01T00:00:00+00:00", '
                             b'"expires_at": "2036-01-01T00:00:00+00:00", "salt": "00ff", '
                             b'"entries": []}'),
               ("status", b'{"version": 1, "records": [{"h": ["zz"], "doses": 99}]}'))

    def publish_invalid(self, which: int) -> None:
        name, body = self.INVALID[which % len(self.INVALID)]
        self.publish(name, body, valid=False)

    def provision(self, *, attempts: int = 8) -> bool:
        """``checkpoint-kiosk provision`` with a new enrolment token, retried as a technician
        would while the network is down (a token the server never saw stays usable)."""
        token = self.enrolment_token()
        for attempt in range(attempts):
            done = self.cli("provision", "--server", self.proxy.url, "--token", "-",
                            "--name", "Cửa khẩu (day)", "--checkpoint", CHECKPOINT,
                            "--profile", "hospital", "--config", str(self.config),
                            "--state-dir", str(self.state_dir), "--owner", "", "--replace-token",
                            stdin=token + "\n")
            if done.returncode == 0:
                return True
            self.note("provision", f"attempt {attempt + 1} failed: "
                      f"{done.stderr.strip()[-200:]}")
            if "token was not used" not in done.stderr:
                return False
            time.sleep(2.5)
        return False

    def write_config(self) -> None:
        self.config.write_text(f"""# bench.day: the kiosk under test
[device]
checkpoint_name = "Cửa khẩu (day)"
direction = "in"

[decoder]
dedupe_seconds = {DEDUPE_SECONDS}

[signals]
pin_factory = "mock"
gate = 24
lamp = 25

[store]
path = "{self.disk.path / 'checkins.db'}"
disk_warn_mb = 2

[sync]
token_file = "{self.work / 'device-token'}"
timeout_seconds = {SYNC_TIMEOUT}

[scanner]
spec = "serial:{self.work / 'ttyACM0'}"
retry_max_seconds = 1

[ui]
fullscreen = false
sound = false
width = 800
height = 480
language = "en"
officer_pin = "{PIN}"
result_seconds = {RESULT_SECONDS}
idle_seconds = 600

[log]
level = "INFO"

[policy]
profile = "hospital"
""", encoding="utf-8")

    # -- running the kiosk ---------------------------------------------------------------

    def ensure_running(self) -> bool:
        """Start the kiosk as systemd would (Restart=always), a technician after 3 fails."""
        if self.kiosk.alive:
            return True
        for attempt in range(4):
            if attempt == 3:
                self.note("technician", "the kiosk does not start: republishing valid "
                          "documents and running 'checkpoint-kiosk sync --once'")
                self.publish_valid(0)
                self.cli("sync", "--once", "--config", str(self.config))
            if self.kiosk.start():
                ack = self.kiosk.send("probe")
                deadline = time.monotonic() + 3
                while ack is not None and ack["state"] == "splash" and \
                        time.monotonic() < deadline:
                    self.kiosk.drain(0.1)
                    ack = self.kiosk.send("probe")
                if ack is not None and ack["state"] == "provisioned":
                    # The technician reads "Kiosk registered" and taps on.
                    self.officer["provisioning results acknowledged"] += 1
                    self.kiosk.send("key", key="K_RETURN")
                return True
        self.note("bricked", "the kiosk does not start even after the technician's sync")
        return False

    def send(self, op: str, **fields: Any) -> dict | None:
        if not self.ensure_running():
            return None
        return self.kiosk.send(op, **fields)

    # -- the queue -------------------------------------------------------------------------

    def tag(self, person: Person | None) -> str:
        self.n += 1
        tag = f"t{self.n}"
        if person is not None:
            self.tag_person[tag] = person
        return tag

    def show(self, person: Person, kind: str, *, tag: str | None = None) -> dict | None:
        raw = self.codes.make(person, kind)
        tag = tag or self.tag(person)
        self.last_raw[tag] = raw
        self.shown_kinds[kind] += 1
        op = "frame" if (kind in ("cccd", "pc_covid", "venue")
                         and self.rng.random() < self.frames_share) else "code"
        ack = self.send(op, raw=raw.decode("latin-1"), tag=tag, seed=self.n)
        if op == "frame":
            self.frames[(ack.get("error") or "read") if ack else "no answer"] += 1
        if ack is not None and kind == "cccd_mismatch":
            got = self.by_tag.get(tag, [])
            if got and got[-1].get("checkin_id") and got[-1]["outcome"] == "check":
                self.last_check_id = got[-1]["checkin_id"]
        return ack

    def scan(self, person: Person, tag: str) -> None:
        """The ID card read by the handheld scanner: one CR/LF-terminated line of the exact
        bytes; waits for the decision so the next code cannot take its tag."""
        raw = self.codes.make(person, "cccd")
        # As an officer would: scan once the status strip shows the scanner up (just after
        # a start or a replug it is still being opened; a real scanner's line is lost then).
        deadline = time.monotonic() + 5.0
        while True:
            ack = self.send("probe", tag=tag)  # the driver tags what comes next
            if ack is None:
                return
            if ack.get("scanner_ok"):
                break
            if time.monotonic() > deadline:
                self.note("scanner", "the scanner was not up 5 s after the kiosk started")
                self.scanner_counts["not up, camera used"] += 1
                self.show(person, "cccd", tag=tag)
                return
            self.kiosk.drain(0.2)
        self.scanner.send(raw + b"\r\n")
        self.scanned.append(tag)
        deadline = time.monotonic() + 5.0
        while not self.by_tag.get(tag) and time.monotonic() < deadline:
            self.kiosk.drain(0.05)

    def unplug_scanner(self) -> None:
        """Half a line, then the cable pulled: the half line must record nothing."""
        person = self.rng.choice([p for p in self.population if not p.watch])
        tag = self.tag(person)
        if self.send("probe", tag=tag) is None:
            return
        raw = self.codes.make(person, "cccd")
        self.scanner.send(raw[: len(raw) // 2])
        self.kiosk.drain(0.2)
        self.scanner.unplug()
        self.cut.append(tag)
        self.scanner_counts["unplugged"] += 1
        self.kiosk.drain(1.0)
        ack = self.send("probe")
        if ack is not None and ack.get("scanner_ok") is not False:
            self.note("scanner", f"no scanner fault shown after the unplug: {ack}")
        else:
            self.scanner_counts["fault shown"] += 1

    def arrival(self) -> None:
        rng = self.rng
        if rng.random() < 0.04:
            person = rng.choice(self.watchlisted)
            # A person listed by an old CMND carries it only on the chip card's code.
            kind = rng.choice(WATCH_KINDS) if person.watch == "cccd" else "cccd"
        else:
            person = rng.choice(self.population)
            while person.watch:
                person = rng.choice(self.population)
            kinds, weights = zip(*KINDS, strict=True)
            kind = rng.choices(kinds, weights)[0]
        tag = self.tag(person)
        if kind == "cccd" and self.scanner.plugged and rng.random() < self.scanner_share:
            self.scan(person, tag)
            return
        self.show(person, kind, tag=tag)
        if rng.random() < 0.06 and tag in self.last_raw:
            # The same code still in front of the camera a moment later: one scan.
            self.repeats += 1
            self.send("code", raw=self.last_raw[tag].decode("latin-1"), tag=tag + "r")

    def watchlisted_arrival(self, how: str) -> None:
        if how == "manual":
            # Typed by hand: only the CCCD number is there to match.
            person = self.rng.choice([p for p in self.watchlisted if p.watch == "cccd"])
            self.officer_session("officer_manual", person=person)
            return
        listed_by = "cmnd" if how == "cmnd" else "cccd"
        person = self.rng.choice([p for p in self.watchlisted if p.watch == listed_by])
        self.show(person, "pc_covid" if how == "pc_covid" else "cccd")

    # -- the officer ----------------------------------------------------------------------------

    def tap(self, action: str) -> dict | None:
        return self.send("tap", action=action)

    def home(self) -> None:
        """Back to the citizen screen whatever happened (Cancel, Close, waiting a result)."""
        for _ in range(8):
            ack = self.send("probe")
            if ack is None:
                return
            state, buttons = ack["state"], ack["buttons"]
            if state in ("scanning", "idle", "fault"):
                return
            if state == "provisioned":
                self.send("key", key="K_RETURN")
                continue
            for way in ("cancel", "close", "back"):
                if way in buttons:
                    self.tap(way)
                    break
            else:
                if state == "result":
                    self.send("key", key="K_ESCAPE")
                    self.kiosk.drain(0.3)
                elif state == "officer":
                    self.tap("close")
                else:
                    self.kiosk.drain(0.5)

    def maybe_interrupt(self, when: str, chance: float) -> None:
        """The queue does not stop while the officer works: a code in front of the camera."""
        if self.rng.random() < chance:
            self.officer["codes read during officer screens"] += 1
            person = self.rng.choice(self.population)
            while person.watch:
                person = self.rng.choice(self.population)
            tag = self.tag(person)
            self.interrupt_tags.append(tag)
            self.show(person, "cccd", tag=tag)

    def open_panel(self, *, long_press: bool = False) -> bool:
        """F2 (or a long press on the status strip), then the PIN on the keypad."""
        self.officer["panel openings"] += 1
        self.home()
        if long_press:
            self.send("press")
            time.sleep(2.2)
            ack = self.send("press", release=True)
        else:
            ack = self.send("key", key="K_F2")
        if ack is None or ack["state"] != "pin":
            return self.lost("open the PIN pad", ack)
        self.tap(PIN[0])
        self.tap(PIN[1])
        self.maybe_interrupt("pin", 0.3)
        self.tap(PIN[2])
        self.tap(PIN[3])
        ack = self.tap("ok")
        if ack is None or ack["state"] != "officer":
            return self.lost("type the PIN", ack)
        return True

    def back_to_panel(self) -> dict | None:
        """A manual entry's or override's result shows, then the panel comes back."""
        ack = self.send("probe")
        deadline = time.monotonic() + RESULT_SECONDS + 2
        while ack is not None and ack["state"] == "result" and time.monotonic() < deadline:
            self.kiosk.drain(0.2)
            ack = self.send("probe")
        return ack

    def lost(self, action: str, ack: dict | None) -> bool:
        state = ack["state"] if ack else "no kiosk"
        self.officer_lost.append(f"{action} (screen: {state})")
        self.home()
        return False

    def officer_session(self, what: str, *, person: Person | None = None) -> None:
        """Open the panel (F2 or the long press, then the PIN), do one thing, close it."""
        self.officer["sessions"] += 1
        if what == "officer_override":
            person = self.rng.choice([p for p in self.population if not p.watch])
            self.last_check_id = None
            self.show(person, "cccd_mismatch")
            if self.last_check_id is None:
                return
        if not self.open_panel(long_press=what == "long_press"):
            return
        act = {"officer_manual": lambda: self.officer_manual(person),
               "officer_override": self.officer_override,
               "officer_direction": self.officer_direction,
               "officer_declare": self.officer_declare,
               "officer_selftest": self.officer_selftest}.get(what)
        if act is not None and not act():
            return
        ack = self.back_to_panel()
        if ack is None or ack["state"] != "officer":
            self.lost(f"{what}: back to the panel", ack)
            return
        ack = self.tap("close")
        if ack is None or ack["state"] not in ("scanning", "fault", "idle"):
            self.lost("close the panel", ack)
            return
        self.officer["completed"] += 1

    def officer_manual(self, person: Person | None) -> bool:
        """Type a person's CCCD number on the keypad; True if it was recorded."""
        person = person or self.rng.choice(self.population)
        if self.tap("manual") is None or self.kiosk.alive is False:
            return False
        tag = self.tag(person)
        for i, digit in enumerate(person.cccd):
            if i == 6:
                self.maybe_interrupt("manual", 0.4)
            self.send("tap", action=digit, tag=tag)
        before = len(self.by_tag.get(tag, []))
        self.send("tap", action="ok", tag=tag)
        got = [r for r in self.by_tag.get(tag, [])[before:] if r["source"] == "manual"]
        if not got:
            self.lost("manual CCCD entry", self.send("probe"))
        return bool(got)

    def officer_override(self) -> bool:
        """Let the last *check* pass, with a reason; True if the override was recorded."""
        target = self.last_check_id
        tag = self.tag(None)
        self.tap("override")
        self.maybe_interrupt("override", 0.3)
        self.send("tap", action="outcome:pass", tag=tag)
        self.send("tap", action="reason:officer_documents_checked", tag=tag)
        self.send("tap", action="confirm", tag=tag)
        got = [r for r in self.by_tag.get(tag, []) if r["source"] == "override"]
        if not got:
            self.lost("override", self.send("probe"))
            return False
        self.overrides.append((target, got[-1]["checkin_id"]))
        return True

    def officer_declare(self) -> bool:
        """Record a person with no code and no document on the declaration form (USB-keyboard
        text into each field); one form in four is abandoned half-filled."""
        # Someone the province's status import does not hold: a number typed here is then
        # the only way the next checkpoint can know them.
        person = self.rng.choice([p for p in self.population
                                  if not p.watch and p.n not in self.declared])
        with_number = not self.declared_numbers or self.rng.random() < 0.5
        ack = self.tap("declare")
        if ack is None or ack["state"] != "declare":
            return self.lost("open the declaration form", ack)

        def fill(field: str, text: str) -> None:
            self.tap(f"edit:{field}")
            self.send("text", text=text)
            self.send("key", key="K_RETURN")

        fill("name", person.name)
        fill("birth_year", str(person.born.year))
        self.tap(f"choose:sex:{'female' if person.female else 'male'}")
        fill("phone", f"09{self.rng.randint(0, 99_999_999):08d}")
        if with_number:
            fill("document", person.cccd)
        if self.rng.random() < 0.25:
            tag = self.tag(None)
            ack = self.send("tap", action="cancel", tag=tag)
            self.send("probe", tag=None)
            self.abandoned.append(tag)
            self.officer["declarations abandoned"] += 1
            if ack is None or ack["state"] != "officer":
                return self.lost("abandon the declaration form", ack)
            return True
        self.tap("next")
        fill("origin", "Phường Phương Lâm, TP Hòa Bình")
        fill("destination", "Xã Đồng Văn, Hà Giang")
        tag = self.tag(None)
        self.send("tap", action="save", tag=tag)
        deadline = time.monotonic() + 3.0
        while not self.by_tag.get(tag) and time.monotonic() < deadline:
            self.kiosk.drain(0.1)
        self.send("probe", tag=None)
        if not self.by_tag.get(tag):
            return self.lost("save the declaration", self.send("probe"))
        self.declared_tags.append(tag)
        self.officer["declarations saved"] += 1
        if with_number and self.by_tag[tag][-1].get("checkin_id"):
            self.declared_numbers.append((self.by_tag[tag][-1]["checkin_id"], person))
            self.declared_here.setdefault(person.n, int(tag[1:]))
        return True

    def declared_return(self) -> None:
        """The last person declared here with a document number comes back with their ID
        card under the border policy, once the central has folded the declaration into
        its status document and the kiosk holds that document (issue 13: declared at one
        checkpoint, known at the next)."""
        if not self.declared_numbers:
            self.note("declared", "no declaration with a document number was saved today")
            return
        checkin_id, person = self.declared_numbers[-1]
        border = json.dumps(self.POLICIES["border"]).encode()
        self.publish("policy", border, valid=True)
        self.last_policy = "border"
        self.ensure_running()
        # The central's republisher looks every status_every seconds and rests MIN_GAP
        # after a folding: the declaration, then the new policy, may each wait a turn;
        # then the kiosk's next document fetch.
        from offline_queue.central.people import CHECK_EVERY, MIN_GAP

        every = self.status_every or CHECK_EVERY
        wait = 2 * every + MIN_GAP + 2 * SYNC_OPTIONS["documents_interval"] + 10
        deadline = time.monotonic() + wait
        while not (self.kiosk_document("policy") == border and self.status_folded(checkin_id)):
            if time.monotonic() > deadline:
                self.note("declared", "the kiosk did not get the folded status document in "
                                      f"{wait:.0f} s; the person comes back anyway")
                break
            self.kiosk.drain(0.3)
        # Stored is not yet in force: the kiosk's documents thread applies what the store
        # holds every CHECKER_REFRESH_S (and reports it: the "policy" event).
        applied, until = self.applied, time.monotonic() + 2 * CHECKER_REFRESH_S + 1
        while self.applied == applied and time.monotonic() < until:
            self.kiosk.drain(0.1)
        tag = self.tag(person)
        self.returned.append(tag)
        self.show(person, "cccd", tag=tag)
        deadline = time.monotonic() + 3.0
        while not self.by_tag.get(tag) and time.monotonic() < deadline:
            self.kiosk.drain(0.1)

    def status_folded(self, checkin_id: str) -> bool:
        """The central holds the check-in, has published a status document made after it
        arrived, and the kiosk holds that document."""
        with self.central_db() as db:
            row = db.execute("SELECT max(received_at) FROM scans WHERE id = ?",
                             [checkin_id]).fetchone()
            doc = db.execute("SELECT body, updated_at FROM documents WHERE name = 'status'"
                             ).fetchone()
        if row is None or row[0] is None or doc is None:
            return False
        self.published.setdefault("status", set()).add(hashlib.sha256(doc[0]).hexdigest())
        folded_us = datetime.fromisoformat(doc[1]).timestamp() * 1e6
        return folded_us >= row[0] and self.kiosk_document("status") == bytes(doc[0])

    def officer_direction(self) -> bool:
        before = self.send("probe")
        self.maybe_interrupt("direction", 0.3)
        ack = self.tap("direction")
        if before is None or ack is None or ack["direction"] == before["direction"]:
            self.lost("switch direction", ack)
            return False
        self.direction = ack["direction"]
        return True

    def officer_selftest(self) -> bool:
        """Run the self-test, answering its light questions; True if it ended on the panel."""
        ack = self.tap("selftest")
        self.maybe_interrupt("selftest", 0.5)
        deadline = time.monotonic() + 60
        while ack is not None and time.monotonic() < deadline and ack["state"] == "selftest":
            if "yes" in ack["buttons"]:
                ack = self.tap("yes")
            elif "again" in ack["buttons"] and "back" in ack["buttons"]:
                self.officer["self-tests finished"] += 1
                ack = self.tap("back")
                break
            else:
                time.sleep(0.2)
                ack = self.send("probe")
        if ack is None or ack["state"] != "officer":
            self.lost("self-test", ack)
            return False
        return True

    # -- the day --------------------------------------------------------------------------------

    def run(self, *, drain_seconds: float = 60.0, max_wall: float | None = None) -> dict:
        from faultproxy import FaultProxy

        started = time.monotonic()
        self.network = Network(self.seed + 2)
        plan = make_plan(self.rng, self.hours, rate=self.rate)
        self.plan_counts = Counter(s.what for s in plan)
        with contextlib.ExitStack() as stack:
            self.disk = Disk(self.state_dir / "db")
            stack.callback(self.disk.close)
            server = self.start_central(stack)
            self.proxy = stack.enter_context(FaultProxy(
                (server.host, server.port), self.network.choose, slow_s=0.3, retry_after=1,
                drip_s=1.0, drip_max_s=DRIP_MAX_S, rewrite=self.rewrite_document))
            self.scanner = ScannerPort(self.work / "ttyACM0")
            stack.callback(self.scanner.close)
            self.kiosk = KioskProcess(self)
            stack.callback(self.kiosk.kill)
            self.write_config()
            self.publish_valid(0)
            if not self.provision():
                raise SystemExit("the first provisioning failed; see the notes above")
            sync = self.cli("sync", "--once", "--config", str(self.config))
            if sync.returncode != 0:
                self.note("sync", f"the first sync failed: {sync.stdout.strip()[-300:]}")
            self.ensure_running()
            published = invalid = 0
            for i, step in enumerate(plan):
                if max_wall is not None and time.monotonic() - started > max_wall:
                    self.note("time", f"stopped at step {i} of {len(plan)} (hour "
                              f"{step.hour:.1f}): --max-wall {max_wall:.0f} s reached")
                    break
                if not self.quiet and i % 200 == 0:
                    print(f"hour {step.hour:5.1f}: step {i}/{len(plan)}", file=sys.stderr)
                self.play(step, published, invalid)
                if step.what == "publish_valid":
                    published += 1
                elif step.what == "publish_invalid":
                    invalid += 1
            self.network.set("ok")
            if self.disk.full:
                self.disk.free()
            self.ensure_running()
            drained = self.wait_delivered(drain_seconds)
            self.kiosk.drain(0.5)
            code = self.kiosk.stop()
            if code not in (0, None):
                self.note("stop", f"the kiosk exited with status {code} on SIGTERM")
            self.stop_central()
            report = self.account(drained, time.monotonic() - started)
        return report

    def start_central(self, stack: contextlib.ExitStack) -> CentralProcess:
        """The central's database (a throw-away PostgreSQL server, or the SQLite file), then
        ``checkpoint-kiosk central`` on it; both torn down by ``stack``."""
        if self.central_kind == "postgresql":
            from pgserver import PgServer

            pg = PgServer().start()
            stack.callback(pg.stop)
            self.central_target = pg.new_database("day")
        self.central = CentralProcess(self.work, self.central_target, workers=CENTRAL_WORKERS,
                                      status_every=self.status_every)
        stack.callback(self.central.kill)
        return self.central.start()

    def stop_central(self) -> None:
        """SIGTERM, as systemd stops the unit: it must exit 0 and leave no worker behind."""
        self.central_stopped = self.central.stop()
        if self.central_stopped["code"] != 0 or self.central_stopped["left"]:
            self.note("central", f"on SIGTERM: {self.central_stopped}; "
                      f"its log ends: {self.central.log_tail(5)}")

    def play(self, step: Step, published: int, invalid: int) -> None:
        what = step.what
        if what.startswith("watch_"):
            self.watchlisted_arrival(what[6:])
        elif what.startswith("officer_") or what == "long_press":
            self.officer_session(what)
        elif what.startswith("net_"):
            self.network_window(what[4:])
        else:
            {"arrival": self.arrival, "kill": self.kill_at_random,
             "publish_valid": lambda: self.publish_valid(published + 1, wait=True),
             "publish_invalid": lambda: self.invalid_document(invalid),
             "revoke": self.revoke, "reprovision": self.reprovision,
             "disk_fill": self.fill_disk, "disk_free": self.disk.free,
             "scanner_unplug": self.unplug_scanner, "scanner_plug": self.plug_scanner,
             "declared_return": self.declared_return}[what]()

    def invalid_document(self, which: int) -> None:
        self.publish_invalid(which)
        # Give the kiosk time to fetch it, then restart as after a power cut.
        self.kiosk.drain(SYNC_OPTIONS["documents_interval"] * 2 + 1)
        self.let_drip_run_out()
        self.kiosk.kill()
        self.kills += 1
        self.ensure_running()
        self.publish_one_valid(self.INVALID[which % len(self.INVALID)][0])

    def network_window(self, mode: str) -> None:
        if mode == "ok" and self.network.mode == "tamper":
            self.wait_tampered()
        elif mode == "ok" and self.network.mode != "ok":
            # A fault window the kiosk never met would prove nothing: let it meet the
            # fault once (a kiosk killed in the window is started again first).
            if self.network.faults < 1:
                self.ensure_running()
            deadline = max(self.network.since, time.monotonic() - 6.0) + 10.0
            while self.network.faults < 1 and time.monotonic() < deadline:
                self.kiosk.drain(0.2)
            if self.network.faults < 1:
                self.note("network", f"the {self.network.mode!r} window met no fault")
        self.network.set(mode)
        self.tampered_before = dict(self.proxy.tampered)
        if self.network.mode == "drip":
            self.drip_started = time.monotonic()
            self.drips_before = len(self.proxy.drips) + 1  # the one this window starts

    def wait_tampered(self) -> None:
        """A tamper window proves something only if document answers were changed in it
        (check-in posts pass untouched; unchanged documents are answered 304): held open
        until each way of tampering has met the kiosk, or for a bounded time."""
        from faultproxy import TAMPER_FAULTS

        self.ensure_running()
        deadline = time.monotonic() + SYNC_OPTIONS["documents_interval"] * 15 + 5
        while set(TAMPER_FAULTS) - self.tampered_since() and time.monotonic() < deadline:
            if self.kiosk_document("policy") == self.last_policy_body:
                # The last policy got through: a new one, so that the next fetches are
                # whole documents (200) to tamper with, not 304s.
                other = next(p for p in self.POLICIES if p != self.last_policy)
                self.publish("policy", json.dumps(self.POLICIES[other]).encode(), valid=True)
                self.last_policy = other
            self.kiosk.drain(0.2)
        if missing := set(TAMPER_FAULTS) - self.tampered_since():
            self.note("network", f"the tamper window never tried {sorted(missing)}")

    @property
    def last_policy_body(self) -> bytes | None:
        return json.dumps(self.POLICIES[self.last_policy]).encode() \
            if self.last_policy else None

    def kiosk_document(self, name: str) -> bytes | None:
        """The body of document ``name`` the kiosk holds now (read-only), None if none."""
        try:
            with contextlib.closing(sqlite3.connect(
                    f"file:{self.disk.path / 'checkins.db'}?mode=ro", uri=True,
                    timeout=5)) as db:
                row = db.execute("SELECT body FROM documents WHERE name = ?",
                                 [name]).fetchone()
        except sqlite3.Error:
            return None
        return bytes(row[0]) if row else None

    def tampered_since(self) -> set[str]:
        return {k for k, n in self.proxy.tampered.items() if n > self.tampered_before.get(k, 0)}

    def reprovision(self) -> None:
        # A technician enrols where the network works: over a dead link provisioning
        # fails and keeps the old config, which proves nothing about the backlog.
        mode = self.network.mode
        self.network.set("ok")
        done = self.provision()
        self.network.set(mode)
        if done:
            self.kiosk.stop()  # systemctl restart after provisioning
            self.ensure_running()

    def fill_disk(self) -> None:
        self.note("disk", f"filling: {self.disk.usage()}")
        if not self.disk.fill():
            self.note("disk", "no tmpfs (not root, or mount refused): disk fill skipped")
        for _ in range(3):  # the queue meets the full disk whatever the hour
            self.arrival()

    def plug_scanner(self) -> None:
        self.scanner.plug()
        self.scanner_counts["plugged in again"] += 1

    def let_drip_run_out(self) -> None:
        """A kill would end a slow drip the kiosk may be stuck in, and hide it."""
        deadline = self.drip_started + DRIP_MAX_S + 1
        while len(self.proxy.drips) < self.drips_before and time.monotonic() < deadline:
            self.kiosk.drain(0.2)

    def kill_at_random(self) -> None:
        """``kill -9`` while a person's code is being decided, at a random instant."""
        self.let_drip_run_out()
        person = self.rng.choice([p for p in self.population if not p.watch])
        raw = self.codes.make(person, "cccd")
        tag = self.tag(person)
        if not self.ensure_running():
            return
        delay = self.rng.uniform(0.0, 0.08)
        self.kiosk.send("probe")
        try:
            assert self.kiosk.proc is not None and self.kiosk.proc.stdin is not None
            self.kiosk.next_id += 1
            self.kiosk.proc.stdin.write((json.dumps({
                "id": self.kiosk.next_id, "op": "code", "raw": raw.decode("latin-1"),
                "tag": tag}) + "\n").encode())
            self.kiosk.proc.stdin.flush()
        except OSError:
            pass
        time.sleep(delay)
        self.kiosk.kill()
        self.kills += 1
        self.ensure_running()

    def revoke(self) -> None:
        from offline_queue.central import db as central_db

        device = self.config_value("device", "id")
        with self.central_db() as db:
            central_db.revoke_device(db, device)
        self.note("revoke", f"device {device} revoked at the central")

    def config_value(self, table: str, key: str) -> Any:
        import tomllib

        return tomllib.loads(self.config.read_text(encoding="utf-8")).get(table, {}).get(key)

    def signalled(self) -> set[str]:
        return {r["checkin_id"] for r in self.results if r.get("checkin_id") and r["signalled"]}

    def central_ids(self) -> list[str]:
        with self.central_db() as db:
            return [str(r[0]) for r in db.execute("SELECT id FROM scans")]

    def wait_delivered(self, seconds: float) -> float | None:
        """Seconds until every signalled check-in was at the central (None: never).

        Gives up early once nothing moves for a while: the kiosk has nothing left to send
        (every row delivered or dead-lettered), or what it sends is never taken.
        """
        started = time.monotonic()
        want = self.signalled()
        last, moved = None, time.monotonic()
        while time.monotonic() - started < seconds:
            missing = want - set(self.central_ids())
            if not missing:
                return time.monotonic() - started
            now = (len(missing), self.kiosk_pending())
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > (3.0 if now[1] == 0 else 8.0):
                break
            self.kiosk.drain(0.5)
            if not self.kiosk.alive and not self.ensure_running():
                break
        return None

    def kiosk_pending(self) -> int | None:
        path = self.disk.path / "checkins.db"
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                                    timeout=5)) as db:
                return db.execute("SELECT count(*) FROM checkins "
                                  "WHERE state IN ('pending', 'in_flight')").fetchone()[0]
        except sqlite3.Error:
            return None

    def account(self, drained: float | None, wall: float) -> dict:
        signalled = self.signalled()
        central = self.central_ids()
        central_set = set(central)
        from offline_queue.central.schema import DECLARED

        # The stored columns (ids are uuid on PostgreSQL: compared as text).
        with self.central_db() as db:
            conflicts = db.execute("SELECT count(*) FROM conflicts").fetchone()[0]
            displays = {str(r[0]): set(json.loads(r[1] or "{}")) for r in db.execute(
                "SELECT id, display FROM scans")}
            overrides = {str(r[0]): str(r[1]) for r in db.execute(
                "SELECT id, override_of FROM scans WHERE override_of IS NOT NULL")}
            officers = {str(r[0]): r[1] for r in db.execute(
                "SELECT id, officer FROM scans WHERE source = ?", [DECLARED])}
            unopened = db.execute("SELECT count(*) FROM unopened").fetchone()[0]
            identity_lost = db.execute(
                "SELECT count(*) FROM scans WHERE reasons LIKE '%identity_not_kept%'"
            ).fetchone()[0]
            # What each kiosk said it still held at its last post (X-Kiosk-Backlog).
            devices = [(r[0], bool(r[1]), r[2]) for r in db.execute(
                "SELECT id, revoked, backlog FROM devices ORDER BY num")]
        looked_for, at_rest = self.identifiers_at_rest()
        kiosk_db = self.disk.path / "checkins.db"
        kiosk_states: dict[str, int] = {}
        dead: Counter[str] = Counter()
        kiosk_ids: set[str] = set()
        foreign_documents: list[str] = []
        held: list[tuple[str, str]] = []
        if kiosk_db.exists():
            with contextlib.closing(sqlite3.connect(kiosk_db)) as db:
                kiosk_states = dict(db.execute(
                    "SELECT state, count(*) FROM checkins GROUP BY state"))
                kiosk_ids = {r[0] for r in db.execute("SELECT id FROM checkins")}
                dead = Counter(
                    _shorten(r[0]) for r in db.execute(
                        "SELECT last_error FROM checkins WHERE state IN ('rejected', 'conflict')"))
                # Documents the kiosk holds that the central never published: a tampered
                # answer was taken for the real one.
                held = [(r[0], hashlib.sha256(r[1]).hexdigest()) for r in db.execute(
                    "SELECT name, body FROM documents")]
                foreign_documents = [name for name, digest in held
                                     if digest not in self.published.get(name, set())]
        if foreign_documents:
            # The status document kiosks get is the import folded with the declarations:
            # the central's own (current) bodies are published too.
            with self.central_db() as db:
                for name, body in db.execute("SELECT name, body FROM documents"):
                    self.published.setdefault(name, set()).add(
                        hashlib.sha256(bytes(body)).hexdigest())
            foreign_documents = [name for name, digest in held
                                 if digest not in self.published.get(name, set())]
        # One scan, one check-in: a tag (one code shown) never yields two records.
        twice = sum(1 for results in self.by_tag.values()
                    if len({r["checkin_id"] for r in results
                            if r.get("checkin_id") and r["source"] != "override"}) > 1)
        # A repeat within the dedupe window that was recorded again.
        twice += sum(1 for t, results in self.by_tag.items() if t.endswith("r")
                     and any(r.get("checkin_id") for r in results))
        watch_passed = [
            (self.tag_person[t].watch, r["kind"], r["source"], r["outcome"], r["reasons"])
            for t, results in self.by_tag.items()
            for r in results
            if t in self.tag_person and self.tag_person[t].watch and r["outcome"] == "pass"
            and r["source"] != "override"
        ]
        watch_seen = Counter(
            f"listed by {self.tag_person[t].watch}, showed {r['kind']} ({r['source']}): "
            f"{r['outcome']}"
            for t, results in self.by_tag.items() for r in results
            if t in self.tag_person and self.tag_person[t].watch)
        # At the border a pass needs the person's declaration in the status document: the
        # province's import, or a form saved here with their number before this code.
        def declared(t: str) -> bool:
            n = self.tag_person[t].n
            return n in self.declared or int(t[1:]) > self.declared_here.get(n, self.n + 1)

        border_passed = [
            (t, r["kind"], r["reasons"]) for t, results in self.by_tag.items() for r in results
            if r.get("policy") == "border" and r["outcome"] == "pass"
            and r["source"] != "override" and t in self.tag_person
            and not declared(t) and t not in self.returned]
        border_seen = Counter(
            f"{'declared' if declared(t) else 'not declared'}: "
            f"{r['outcome']}" for t, results in self.by_tag.items() for r in results
            if r.get("policy") == "border" and t in self.tag_person and r["source"] != "override")
        # The handheld scanner: each complete line decided once, from the scanner; a line
        # cut by an unplug never.
        scanner_lost = [t for t in self.scanned
                        if sum(1 for r in self.by_tag.get(t, ()) if r["source"] == "scanner") != 1]
        cut_recorded = [t for t in self.cut if self.by_tag.get(t)]
        # The declaration form: each saved form decided once as source "declared", recorded
        # with the officer who opened the panel; an abandoned form never.
        declared_ids = {r["checkin_id"] for t in self.declared_tags
                        for r in self.by_tag.get(t, ()) if r.get("checkin_id")}
        declared_wrong = [t for t in self.declared_tags
                          if [r["source"] for r in self.by_tag.get(t, ())] != ["declared"]]
        abandoned_recorded = [t for t in self.abandoned if self.by_tag.get(t)]
        # Declared here with a number, back with their card: never "no declaration".
        not_known = [t for t in self.returned if not self.by_tag.get(t) or any(
            "declaration_missing" in r["reasons"] for r in self.by_tag[t])]
        declared_officers = Counter(officers.get(i) for i in declared_ids if i in central_set)
        wrong_override = sum(1 for target, new in self.overrides
                             if overrides.get(new) not in (target, None))
        # A synced policy's keep_fields apply from the moment the kiosk uses the policy.  They
        # minimise the citizen's fields; the officer who made an override or a declaration
        # is its own field, kept whatever the policy.
        kept_more = 0
        for r in self.results:
            keep = self.POLICIES.get(r.get("policy") or "", {}).get("keep_fields")
            if keep and r.get("checkin_id") in displays and \
                    displays[r["checkin_id"]] & set(DISPLAY_FIELDS) - set(keep):
                kept_more += 1
        # Every decision under a policy the province published (a tampered "office" policy
        # would pass everyone).
        unpublished_policy = sum(1 for r in self.results
                                 if r.get("policy") not in (None, *self.POLICIES))
        document_exits = [e for e in self.exits if e["code"] not in (None, 0, -9)
                          and _about_document(e.get("error") or "")]
        tracebacks = self.log_text().count("Traceback (most recent call last)")
        hung = [round(s, 1) for s, _gave_up in self.proxy.drips if s > REQUEST_DEADLINE_S]
        storms = request_storms([t for t, _fault in self.proxy.log])
        central_log = central_log_problems(self.central.log_text())
        # The fleet page's backlog: what each kiosk said it still held at its last post.
        # A revoked device's stays as it last said (its rows came with the new token).
        fleet_backlog = sum(b or 0 for _id, revoked, b in devices if not revoked)
        stopped = getattr(self, "central_stopped", {"code": None, "left": []})
        results = self.results
        figures: dict[str, Any] = {
            "seed": self.seed,
            "simulated hours": self.hours,
            "wall seconds": round(wall, 1),
            "people in the queue (codes shown)": sum(
                1 for t in self.by_tag if t in self.tag_person) or 0,
            "decisions shown": len(results),
            "check-ins signalled (recorded, lights set)": len(signalled),
            "outcomes": dict(Counter(r["outcome"] for r in results)),
            "codes shown, by kind": dict(self.shown_kinds),
            "decisions, by the kind recognised": dict(Counter(r["kind"] for r in results)),
            "decisions, by the policy in force": dict(Counter(str(r.get("policy"))
                                                              for r in results)),
            "repeated codes sent": self.repeats,
            "codes shown as camera frames (real decoder)": dict(self.frames),
            "watchlisted people's codes": sum(1 for t in self.by_tag
                                              if t in self.tag_person
                                              and self.tag_person[t].watch),
            "watchlisted people's decisions": dict(watch_seen),
            "border decisions, by declaration": dict(border_seen),
            "handheld scanner": {"lines": len(self.scanned), **self.scanner_counts,
                                 "cut lines": len(self.cut)},
            "scanner lines not decided once (sources, outcomes)": [
                (t, [(r["source"], r["outcome"], r["reasons"]) for r in self.by_tag.get(t, ())])
                for t in scanner_lost],
            "declarations at the central, by officer": dict(declared_officers),
            "declared with a number, back with their card (outcome, reasons)": [
                (r["outcome"], r["reasons"]) for t in self.returned
                for r in self.by_tag.get(t, ())],
            "officer": dict(self.officer),
            "codes read during officer screens that got a decision": sum(
                1 for t in self.interrupt_tags if self.by_tag.get(t)),
            "officer actions lost (list)": self.officer_lost[:20],
            "overrides applied to another person": wrong_override,
            "documents": dict(self.documents),
            "documents tampered in transit (by fault)": dict(self.proxy.tampered),
            "documents held that the central never published": foreign_documents,
            "identifiers looked for at rest on the kiosk": looked_for,
            "full identifiers found at rest (file: first digits)": at_rest[:20],
            "rows the central could not open / identities lost in RAM": (unopened,
                                                                         identity_lost),
            "network faults injected": dict(self.network.counts),
            "requests through the proxy": dict(self.proxy.paths.most_common(6)),
            f"most requests in {STORM_WINDOW_S:.0f} s": _busiest([t for t, _ in self.proxy.log]),
            "slow drips (seconds the kiosk waited)": [round(s, 1) for s, _ in self.proxy.drips],
            "kill -9": self.kills,
            "kiosk hung (no answer in 15 s, killed)": self.hangs,
            "kiosk starts": self.kiosk.starts,
            "kiosk exits not asked for": [e["error"] for e in self.exits][:10],
            "not recorded (disk full / disk had room)": (self.not_recorded["full"],
                                                          self.not_recorded["room"]),
            "kiosk rows by state": kiosk_states,
            "kiosk rows missing at the central": len(kiosk_ids - central_set),
            "why rows were dead-lettered": dict(dead),
            "delivered within the drain (s)": None if drained is None else round(drained, 1),
            "disk on its own tmpfs": self.disk.mounted,
            "seconds spent in CLI commands": round(self.timing["CLI"], 1),
            "seconds spent starting the kiosk": round(self.timing["start"], 1),
            "errors logged": len(self.logs),
            "tracebacks (logged before, exception)": traceback_kinds(self.log_text()),
            "screen internal errors": len(self.internal_errors),
            "central": f"{self.central_kind}, the real command with {CENTRAL_WORKERS} workers "
                       f"(status republisher every {self.status_every or 60:g} s)",
            "devices at the central (revoked, backlog reported)": [
                (revoked, backlog) for _id, revoked, backlog in devices],
            "central log records, by level": dict(Counter(
                log_level(line) for line in self.central.log_text().splitlines()
                if log_level(line))),
            "central log problems": central_log[:8],
            "status documents folded by the central's republisher": sum(
                1 for line in self.central.log_text().splitlines()
                if "published the status document" in line),
            "central on SIGTERM (exit status, seconds, children seen, left running)": (
                stopped.get("code"), round(stopped.get("seconds", 0.0), 1),
                stopped.get("children seen"), stopped.get("left")),
        }
        invariants = {
            "lost": len(signalled - central_set),
            "duplicated": conflicts + (len(central) - len(central_set)) + twice,
            "watchlisted_passed": len(watch_passed),
            "border_passed_without_declaration": len(border_passed),
            "scanner_lines_not_decided_once": len(scanner_lost),
            "scanner_cut_lines_recorded": len(cut_recorded),
            "declarations_not_decided_once": len(declared_wrong),
            "declarations_without_officer": sum(
                n for officer, n in declared_officers.items() if not officer),
            "abandoned_forms_recorded": len(abandoned_recorded),
            "declared_not_known_on_return": len(not_known),
            "officer_actions_lost": len(self.officer_lost) + wrong_override,
            "document_exits": len(document_exits),
            "decided_under_unpublished_policy": unpublished_policy,
            "tampered_documents_held": len(foreign_documents),
            "identifiers_at_rest": len(at_rest),
            "sealed_rows_not_opened": unopened + identity_lost,
            "light_mismatches": len(self.mismatches),
            "tracebacks": tracebacks + len(self.internal_errors),
            "not_recorded_with_disk_space": self.not_recorded["room"],
            "hung_requests": len(hung),
            "kept_more_than_policy": kept_more,
            "request_storms": len(storms),
            "central_log_errors": len(central_log),
            "fleet_backlog": fleet_backlog,
            "central_stop": int(stopped.get("code") != 0) + len(stopped.get("left") or ()),
        }
        return {"figures": figures, "invariants": invariants, "notes": self.notes[-40:],
                "mismatch_examples": self.mismatches[:5],
                "border_passed_examples": border_passed[:5],
                "error_examples": [e["message"] for e in self.logs[:8]]}

    def identifiers_at_rest(self) -> tuple[int, list[str]]:
        """Issue 14: an SD card taken from the kiosk reveals no document number.  Searches
        the kiosk's state folder (its queue database, WAL and SHM on their tmpfs), its logs
        and a support bundle made now for every full identifier the central holds and every
        identifier of the people who showed a code (tests/privacy_scan.py).  Returns how
        many identifiers were looked for and where any was found."""
        from privacy_scan import find_identifiers

        with self.central_db() as db:
            held = {r[0] for r in db.execute(
                "SELECT DISTINCT person_key FROM scans WHERE person_key IS NOT NULL")}
        # Not the 9-digit CMND numbers: short enough to turn up by chance in a log's digits.
        shown = {i for p in self.tag_person.values()
                 for i in (p.cccd, p.qid, p.insurance, p.uvci)}
        identifiers = sorted(held | shown)
        bundle = self.work / "support-bundle.tar.gz"
        made = self.cli("support-bundle", "--config", str(self.config), "-o", str(bundle),
                        "--state-dir", str(self.state_dir),
                        *(a for path in self.kiosk.log_paths for a in ("--log-file", str(path))))
        if made.returncode != 0:
            self.note("privacy", f"support-bundle failed: {made.stderr.strip()[-300:]}")
        paths = [self.state_dir, *self.kiosk.log_paths, *([bundle] if bundle.exists() else [])]
        hits = find_identifiers(paths, identifiers)
        return len(identifiers), sorted({f"{Path(h.where).name}: {h.spelling[:3]}…"
                                         for h in hits})

    def log_text(self) -> str:
        if not hasattr(self, "_log_text"):
            parts = []
            for path in self.kiosk.log_paths:
                with contextlib.suppress(OSError):
                    parts.append(path.read_text(encoding="utf-8", errors="replace"))
            self._log_text = "\n".join(parts)
        return self._log_text


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def log_level(line: str) -> str | None:
    """The level of a central log line ("2026-… 12:00:00,123 ERROR name: …", or under
    systemd "ERROR name: …"), None for a traceback's or a continuation's line."""
    words = line.split(" ", 3)
    return next((w for w in words[:3] if w in LOG_LEVELS), None)


def central_log_problems(text: str) -> list[str]:
    """What a central's log must not hold after a day: each traceback (by its last line),
    each line about check-ins whose sealed identity it could not open (with or without a
    level), each other ERROR or CRITICAL record."""
    problems: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            last = next((f for f in lines[i + 1:] if f and not f[0].isspace()), "")
            problems.append(f"traceback: {last[:120]}")
        elif "sealed identity" in line and "cannot open" in line:
            problems.append(f"unopened: {_shorten(line)}")
        elif log_level(line) in ("ERROR", "CRITICAL"):
            problems.append(f"error: {_shorten(line.split(' ', 2)[-1])}")
    return problems


def _busiest(times: list[float]) -> int:
    """The most requests that fell in any window of STORM_WINDOW_S."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > STORM_WINDOW_S:
            start += 1
        best = max(best, end - start + 1)
    return best


def request_storms(times: list[float]) -> list[int]:
    """Request counts of the disjoint windows of STORM_WINDOW_S above STORM_REQUESTS."""
    times = sorted(times)
    storms, start = [], 0
    while start < len(times):
        end = start
        while end < len(times) and times[end] - times[start] <= STORM_WINDOW_S:
            end += 1
        if end - start > STORM_REQUESTS:
            storms.append(end - start)
            start = end
        else:
            start += 1
    return storms


def _shorten(text: str | None) -> str:
    """An error without its ids and addresses, so equal causes count together."""
    import re

    text = re.sub(r"'kiosk-[0-9a-f]+'", "'kiosk-…'", text or "")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:…", text)
    return text[:120]


def traceback_kinds(text: str) -> dict[str, int]:
    """Each traceback in a log as 'the record that logged it -> the exception', counted."""
    kinds: Counter[str] = Counter()
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("Traceback (most recent call last)"):
            continue
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j][:2] == "20"), "")
        record = before.split(" ", 3)[-1][:90]
        last = ""
        for follow in lines[i + 1:]:
            if follow[:2] == "20":
                break
            if follow and not follow[0].isspace() and not follow.startswith(
                    ("Traceback", "The above", "During handling")):
                last = follow
        kinds[f"{record} -> {last[:110]}"] += 1
    return dict(kinds)


def _about_document(error: str) -> bool:
    words = ("policy", "watchlist", "trust list", "trust_list", "document")
    return any(w in error.lower() for w in words)


def print_report(report: dict, out: Any = sys.stdout) -> None:
    width = 58
    print("\nA checkpoint's day — figures", file=out)
    print("-" * (width + 22), file=out)
    for name, value in report["figures"].items():
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
        print(f"{name:<{width}} {text}", file=out)
    print("\nInvariants (each must be 0)", file=out)
    print("-" * (width + 22), file=out)
    for key, text in INVARIANTS:
        value = report["invariants"][key]
        print(f"{text:<{width}} {value:>6}  {'ok' if value == 0 else 'FAIL'}", file=out)
    if report["notes"]:
        print("\nNotes", file=out)
        for what, text in report["notes"]:
            print(f"  [{what}] {text}", file=out)


def run_day(work: Path, *, seed: int = 1, hours: float = 2.0, rate: float = 1.0,
            quiet: bool = False, drain_seconds: float = 60.0,
            max_wall: float | None = None, central: str = "postgresql",
            status_every: float | None = STATUS_EVERY) -> dict:
    """Play one day in ``work`` (a fresh folder); the report (figures and invariants).
    ``central``: "postgresql" (a throw-away server, tests/pgserver.py) or "sqlite"."""
    sys.path.insert(0, str(REPO / "tests"))  # the fault proxy and pgserver live with the tests
    day = Day(work, seed=seed, hours=hours, rate=rate, quiet=quiet, central=central,
              status_every=status_every)
    return day.run(drain_seconds=drain_seconds, max_wall=max_wall)


def main(argv: list[str] | None = None) -> int:
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path[0] = str(REPO)  # bench/queue.py must not shadow the standard library
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=30.0, help="simulated hours of traffic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1.0, help="traffic multiplier")
    parser.add_argument("--keep", type=Path, help="keep the work folder here")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    parser.add_argument("--max-wall", type=float,
                        help="stop playing the plan after this many seconds (then drain)")
    parser.add_argument("--central", choices=CENTRALS, default="postgresql",
                        help="the central's database: a throw-away PostgreSQL server (a "
                             "province) or a SQLite file (a single hospital)")
    parser.add_argument("--status-every", type=float, default=STATUS_EVERY,
                        help="the central's --status-every (0: the product's default, 60 s)")
    parser.add_argument("--quiet", action="store_true")
    options = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the kiosk, the server and the tmpfs are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="day-") as tmp:
        work = options.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = run_day(work, seed=options.seed, hours=options.hours, rate=options.rate,
                         quiet=options.quiet, max_wall=options.max_wall,
                         central=options.central, status_every=options.status_every or None)
    print_report(report)
    if options.json:
        options.json.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str))
    return 0 if not any(report["invariants"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
