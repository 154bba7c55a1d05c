"""What the province asks of the central: the activity report, tracing, retention.

Every function takes an open :class:`~offline_queue.central.backend.CentralDB` (SQLite or
PostgreSQL) and returns plain dicts and lists, ready for JSON, CSV or HTML
(``offline_queue.central.render``).  Tracing answers carry ``coverage``: how far back the
data goes, since retention deletes check-ins older than the configured period.

Times are the check-in's ``event_time`` (the corrected time, else a plausible device
time, else the receive time: ``time_basis`` says which).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, TypedDict

from offline_queue.central import schema
from offline_queue.central.backend import CentralDB
from offline_queue.central.db import (
    EXPORT_SQL,
    day_offset_us,
    item_of,
    now_utc,
    rows_as_dicts,
)
from offline_queue.clock import iso

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30
MAX_TRACE_DAYS = 366
MAX_WINDOW = timedelta(days=7)
# A trace answer is for a person to read: past this many rows it says it was cut.
MAX_ROWS = 10_000
MAX_CASE_VISITS = 500

# The fields of a traced check-in, in the order CSV and HTML show them.
TRACE_FIELDS = ("event_time", "checkpoint_id", "checkpoint_name", "direction", "decision",
                "kind", "person_key", "display", "reasons", "source", "officer", "override_of",
                "time_basis", "device_id", "id")


def _local_day(when: datetime, offset_us: int) -> int:
    return (schema.to_us(when) + offset_us) // schema.US_PER_DAY


def _day_start(day: int, offset_us: int) -> datetime:
    return schema.from_us(day * schema.US_PER_DAY - offset_us)


class CheckpointActivity(TypedDict):
    """One checkpoint's line of the activity report."""

    id: str
    name: str
    scans: int
    per_day: list[int]  # one count per local day, oldest first


class ActivityReport(TypedDict):
    """:func:`activity_report`'s answer: the JSON of ``GET /v1/reports/activity``, the
    dashboard's activity page and ``central report``."""

    since: str
    until: str
    days: int
    utc_offset_minutes: int
    dates: list[str]
    checkpoints: list[CheckpointActivity]
    scans_per_day: list[int]
    total_checkpoints: int
    active_checkpoints: int
    without_scans: list[str]


def activity_report(db: CentralDB, *, days: int = 7, now: datetime | None = None
                    ) -> ActivityReport:
    """Scans per checkpoint and local day over the last ``days`` local days (today
    included, so far), and the checkpoints that had none ("silent").

    Reads ``daily_counts`` (kept by ingest), never the check-ins themselves: its cost
    depends on checkpoints × days, not on the number of scans.
    """
    if not 1 <= days <= 366:
        raise ValueError(f"days is {days!r}; use 1 to 366")
    until = now or now_utc()
    offset = day_offset_us(db)
    last = _local_day(until, offset)
    first = last - days + 1
    checkpoints = db.execute("SELECT num, id, name FROM checkpoints ORDER BY id").fetchall()
    per_day: dict[int, list[int]] = {num: [0] * days for num, _, _ in checkpoints}
    for num, day, scans in db.execute(
        "SELECT checkpoint, day, scans FROM daily_counts WHERE day >= ? AND day <= ?",
        [first, last],
    ):
        if num in per_day:
            per_day[num][day - first] = int(scans)
    dates = [_day_start(d, offset) + timedelta(microseconds=offset) for d in
             range(first, last + 1)]
    rows: list[CheckpointActivity] = [
        {"id": cid, "name": name, "scans": sum(per_day[num]), "per_day": per_day[num]}
        for num, cid, name in checkpoints]
    silent = [r["id"] for r in rows if r["scans"] == 0]
    return {
        "since": iso(_day_start(first, offset)),
        "until": iso(until),
        "days": days,
        "utc_offset_minutes": offset // 60_000_000,
        "dates": [f"{d:%Y-%m-%d}" for d in dates],
        "checkpoints": rows,
        "scans_per_day": [sum(r["per_day"][i] for r in rows) for i in range(days)],
        "total_checkpoints": len(rows),
        "active_checkpoints": len(rows) - len(silent),
        "without_scans": silent,
    }


def coverage(db: CentralDB, *, now: datetime | None = None) -> dict[str, Any]:
    """How far back the check-ins go: ``data_since`` is the cutoff of the last retention
    run (rows before it were deleted) or, before any run, the oldest check-in kept.

    After a run no row is read: ``min(event_time)`` over millions of rows has no index to
    use on PostgreSQL (event_time has a BRIN index), and the daily timer always runs.
    """
    run = db.execute("SELECT ran_at, cutoff, days FROM retention_runs "
                     "ORDER BY ran_at DESC LIMIT 1").fetchone()
    if run is not None:
        since: int | None = run[1]
    else:
        since = db.one("SELECT min(event_time) FROM scans")[0]
    return {
        "data_since": iso(schema.from_us(since)) if since is not None else None,
        "retention_days": run[2] if run else None,
        "deleted_before": iso(schema.from_us(run[1])) if run else None,
        "last_retention_run": run[0] if run else None,
        "as_of": iso(now or now_utc()),
    }


def _traced(rows: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        item = item_of(row)
        out.append({
            "event_time": item["event_time"], "checkpoint_id": item["checkpoint_id"],
            "checkpoint_name": names.get(item["checkpoint_id"], ""),
            "direction": item["direction"], "decision": item["decision"],
            "kind": item["kind"], "person_key": item["person_key"],
            "display": item["display"], "reasons": item["reasons"],
            "time_basis": item["time_basis"], "device_id": item["device_id"],
            "id": item["id"], "source": item["source"], "officer": item["officer"],
            "override_of": item["override_of"],
        })
    return out


def _names(db: CentralDB) -> dict[str, str]:
    return dict(db.execute("SELECT id, name FROM checkpoints").fetchall())


def _checked_key(person_key: str) -> str:
    key = person_key.strip()
    if not 0 < len(key) <= 256:
        raise ValueError(f"identifier is {len(key)} characters long after trimming; give a "
                         "document number, QID, insurance number or UVCI (1 to 256 characters)")
    return key


def trace_person(db: CentralDB, person_key: str, *, days: int = 14,
                 now: datetime | None = None) -> dict[str, Any]:
    """Every check-in of the person with this identifier in the last ``days`` days,
    oldest first; an unknown identifier answers an empty list."""
    if not 1 <= days <= MAX_TRACE_DAYS:
        raise ValueError(f"days is {days!r}; use 1 to {MAX_TRACE_DAYS}")
    key = _checked_key(person_key)
    until = now or now_utc()
    since = until - timedelta(days=days)
    return {"person_key": key, **_trace(db, "person_key", key, since, until),
            "coverage": coverage(db, now=until)}


def _trace(db: CentralDB, column: str, value: str | int | None, since: datetime,
           until: datetime) -> dict[str, Any]:
    """The check-ins whose ``column`` (a name of ours, never a caller's) is ``value``
    between ``since`` and ``until``, oldest first, at most MAX_ROWS: a trace's body.
    ``value`` None (an unknown checkpoint) matches nothing."""
    rows = [] if value is None else list(rows_as_dicts(db.execute(
        EXPORT_SQL + f" WHERE s.{column} = ? AND s.event_time >= ? AND s.event_time <= ? "
        "ORDER BY s.event_time LIMIT ?",
        [value, schema.to_us(since), schema.to_us(until), MAX_ROWS + 1])))
    return {"since": iso(since), "until": iso(until),
            "checkins": _traced(rows[:MAX_ROWS], _names(db)),
            "truncated": len(rows) > MAX_ROWS}


def _checkpoint_num(db: CentralDB, checkpoint_id: str) -> int | None:
    row = db.execute("SELECT num FROM checkpoints WHERE id = ?", [checkpoint_id]).fetchone()
    return row[0] if row else None


def passed_checkpoint(db: CentralDB, checkpoint_id: str, since: datetime, until: datetime,
                      *, now: datetime | None = None) -> dict[str, Any]:
    """Everyone checked in at ``checkpoint_id`` between ``since`` and ``until`` (at most
    7 days), oldest first; an unknown checkpoint answers an empty list."""
    if until < since or until - since > MAX_WINDOW:
        raise ValueError(f"window {iso(since)} .. {iso(until)}; the end must follow the "
                         f"start, at most {MAX_WINDOW.days} days later")
    num = _checkpoint_num(db, checkpoint_id)
    return {"checkpoint_id": checkpoint_id, **_trace(db, "checkpoint", num, since, until),
            "coverage": coverage(db, now=now)}


def contacts(db: CentralDB, person_key: str, *, days: int = 14, minutes: int = 15,
             now: datetime | None = None) -> dict[str, Any]:
    """The people checked in at the same checkpoint within ±``minutes`` of each check-in
    of the case (``person_key``) in the last ``days`` days.  One entry per visit of the
    case: its check-in and the others', the case itself left out."""
    if not 1 <= minutes <= 24 * 60:
        raise ValueError(f"minutes is {minutes!r}; use 1 to 1440")
    case = trace_person(db, person_key, days=days, now=now)
    key = case["person_key"]
    span = minutes * 60_000_000
    visits = []
    for visit in case["checkins"][:MAX_CASE_VISITS]:
        num = _checkpoint_num(db, visit["checkpoint_id"])
        at = schema.to_us(datetime.fromisoformat(visit["event_time"].replace("Z", "+00:00")))
        rows = list(rows_as_dicts(db.execute(
            EXPORT_SQL + " WHERE s.checkpoint = ? AND s.event_time >= ? AND s.event_time <= ? "
            "AND (s.person_key IS NULL OR s.person_key <> ?) ORDER BY s.event_time LIMIT ?",
            [num, at - span, at + span, key, MAX_ROWS + 1])))
        visits.append({"case": visit, "others": _traced(rows[:MAX_ROWS], case_names(case)),
                       "truncated": len(rows) > MAX_ROWS})
    people = sorted({o["person_key"] for v in visits for o in v["others"] if o["person_key"]})
    return {"person_key": key, "since": case["since"], "until": case["until"],
            "minutes": minutes, "visits": visits, "people": people,
            "truncated": case["truncated"] or len(case["checkins"]) > MAX_CASE_VISITS,
            "coverage": case["coverage"]}


def case_names(case: dict[str, Any]) -> dict[str, str]:
    return {c["checkpoint_id"]: c["checkpoint_name"] for c in case["checkins"]}


def apply_retention(db: CentralDB, *, days: int = DEFAULT_RETENTION_DAYS,
                    now: datetime | None = None) -> dict[str, Any]:
    """Delete check-ins whose event time is more than ``days`` days old, and conflicts
    received that long ago; log and record the counts (never what was deleted).
    ``daily_counts`` stay: they hold no personal data."""
    if not 1 <= days <= 3660:
        raise ValueError(f"retention days is {days!r}; use 1 to 3660")
    when = now or now_utc()
    cutoff = when - timedelta(days=days)
    with db.atomic():
        deleted = db.execute("DELETE FROM scans WHERE event_time < ?",
                             [schema.to_us(cutoff)]).rowcount
        conflicts = db.execute("DELETE FROM conflicts WHERE received_at < ?",
                               [iso(cutoff)]).rowcount
        db.execute("INSERT INTO retention_runs (ran_at, cutoff, days, deleted, "
                   "conflicts_deleted) VALUES (?, ?, ?, ?, ?)",
                   [iso(when), schema.to_us(cutoff), days, deleted, conflicts])
    log.info("retention: deleted %d check-ins and %d conflicts older than %d days "
             "(before %s)", deleted, conflicts, days, iso(cutoff))
    return {"deleted": deleted, "conflicts_deleted": conflicts, "days": days,
            "deleted_before": iso(cutoff)}
