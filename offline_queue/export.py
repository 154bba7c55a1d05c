"""Offline reporting: check-ins of a time range as CSV or JSON lines (no person keys)."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TextIO

from offline_queue.clock import iso
from offline_queue.errors import StoreError

COLUMNS = (
    "id", "time", "corrected_time", "clock_synced", "device_id", "checkpoint_id", "direction",
    "kind", "decision", "reasons", "source", "override_of", "original_decision",
    "override_reason", "officer", "display", "state",
)
# A spreadsheet runs cells that start like a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def parse_when(value: str) -> datetime:
    """ISO date or date-time; without a zone it is the kiosk's local time."""
    try:
        when = datetime.fromisoformat(value)
    except ValueError as e:
        raise ValueError(f"{value!r} is not an ISO date or date-time, e.g. 2021-09-20") from e
    return when if when.tzinfo else when.astimezone()


def rows(db_path: str | os.PathLike[str], since: datetime, until: datetime
         ) -> Iterator[dict[str, Any]]:
    if not os.path.isfile(db_path):
        raise StoreError(f"no check-in database at {os.fspath(db_path)!r}; pass --db PATH")
    conn = sqlite3.connect(f"file:{os.fspath(db_path)}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        for r in conn.execute(
            "SELECT * FROM checkins WHERE wall_time >= ? AND wall_time < ? ORDER BY seq",
            [iso(since), iso(until)],
        ):
            yield {
                "id": r["id"], "time": r["wall_time"], "corrected_time": r["corrected_time"],
                "clock_synced": bool(r["clock_synced"]), "device_id": r["device_id"],
                "checkpoint_id": r["checkpoint_id"], "direction": r["direction"],
                "kind": r["kind"], "decision": r["decision"], "reasons": json.loads(r["reasons"]),
                "source": r["source"], "override_of": r["override_of"],
                "original_decision": r["original_decision"],
                "override_reason": r["override_reason"], "officer": r["officer"],
                "display": json.loads(r["display"]),
                "state": r["state"],
            }
    finally:
        conn.close()


def write_csv(items: Iterator[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    n = 0
    for item in items:
        cells = []
        for column in COLUMNS:
            value = item[column]
            if column == "reasons":
                value = ";".join(value)
            elif isinstance(value, dict):
                value = json.dumps(value, ensure_ascii=False, sort_keys=True)
            cells.append(neutralise(value))
        writer.writerow(cells)
        n += 1
    return n


def write_jsonl(items: Iterator[dict[str, Any]], out: TextIO) -> int:
    n = 0
    for item in items:
        out.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")
        n += 1
    return n
