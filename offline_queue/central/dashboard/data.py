"""What the dashboard reads and writes besides ``queries``: checkpoint places, the fleet,
the documents list."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from offline_queue.central.backend import CentralDB

MAX_PLACE = 100
MAX_NAME = 200


def places(db: CentralDB) -> dict[str, tuple[str, str]]:
    """Checkpoint id -> (district, commune), '' where an administrator has not set them."""
    return {r[0]: (r[1] or "", r[2] or "") for r in db.execute(
        "SELECT id, district, commune FROM checkpoints")}


def checkpoints(db: CentralDB) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT p.id, p.name, p.district, p.commune, p.created_at, "
        "(SELECT count(*) FROM devices AS d WHERE d.checkpoint_id = p.id AND d.revoked = 0) "
        "FROM checkpoints AS p ORDER BY p.district, p.commune, p.id").fetchall()
    return [{"id": r[0], "name": r[1], "district": r[2] or "", "commune": r[3] or "",
             "created_at": r[4], "devices": int(r[5])} for r in rows]


def check_place(field: str, value: str) -> str | None:
    text = value.strip()
    if len(text) > MAX_PLACE or any(ord(c) < 32 for c in text):
        raise ValueError(f"{field}: {len(text)} characters or a control character; use at "
                         f"most {MAX_PLACE} printable characters")
    return text or None


def update_checkpoint(db: CentralDB, checkpoint_id: str, *, name: str, district: str,
                      commune: str) -> bool:
    """Set a checkpoint's name, district and commune; False if there is no such checkpoint.
    ValueError names the field that is not allowed."""
    clean_name = name.strip()
    if not 0 < len(clean_name) <= MAX_NAME or any(ord(c) < 32 for c in clean_name):
        raise ValueError(f"name: {len(clean_name)} characters; give 1 to {MAX_NAME} "
                         "printable characters")
    values = [clean_name, check_place("district", district), check_place("commune", commune)]
    with db.atomic():
        return db.execute("UPDATE checkpoints SET name = ?, district = ?, commune = ? "
                          "WHERE id = ?", [*values, checkpoint_id]).rowcount == 1


def fleet(db: CentralDB) -> list[dict[str, Any]]:
    """Every device: checkpoint, enrolment, last contact, backlog, app version, clock
    offset, last error, revoked."""
    rows = db.execute(
        "SELECT d.id, d.checkpoint_id, p.name, d.enrolled_at, d.last_seen_at, d.backlog, "
        "d.app_version, d.clock_offset_ms, d.last_error, d.last_error_at, d.revoked "
        "FROM devices AS d JOIN checkpoints AS p ON p.id = d.checkpoint_id "
        "ORDER BY d.checkpoint_id, d.enrolled_at").fetchall()
    keys = ("id", "checkpoint_id", "checkpoint_name", "enrolled_at", "last_seen_at",
            "backlog", "app_version", "clock_offset_ms", "last_error", "last_error_at",
            "revoked")
    return [dict(zip(keys, r, strict=True)) | {"revoked": bool(r[10])} for r in rows]


def documents(db: CentralDB) -> list[dict[str, Any]]:
    rows = db.execute("SELECT name, etag, updated_at, expires_at, length(body) "
                      "FROM documents ORDER BY name").fetchall()
    return [{"name": r[0], "etag": r[1], "updated_at": r[2], "expires_at": r[3],
             "bytes": int(r[4])} for r in rows]


def by_place(report: dict[str, Any], where: dict[str, tuple[str, str]]
             ) -> list[dict[str, Any]]:
    """The activity report summed by district and commune ("(not set)" where unset)."""
    groups: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"checkpoints": 0, "active": 0, "scans": 0,
                 "per_day": [0] * int(report["days"])})
    for row in report["checkpoints"]:
        district, commune = where.get(row["id"], ("", ""))
        g = groups[(district or "(not set)", commune or "(not set)")]
        g["checkpoints"] += 1
        g["active"] += 1 if row["scans"] else 0
        g["scans"] += row["scans"]
        g["per_day"] = [a + b for a, b in zip(g["per_day"], row["per_day"], strict=True)]
    return [{"district": d, "commune": c, **v} for (d, c), v in sorted(groups.items())]
