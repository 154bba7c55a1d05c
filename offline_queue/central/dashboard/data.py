"""What the dashboard reads and writes besides ``queries``: checkpoint places, the fleet,
the documents list."""

from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, TypedDict

from offline_queue.central.backend import CentralDB

if TYPE_CHECKING:
    from offline_queue.central.queries import ActivityReport

MAX_PLACE = 100
MAX_NAME = 200


def places(db: CentralDB) -> dict[str, tuple[str, str]]:
    """Checkpoint id -> (district, commune), '' where an administrator has not set them."""
    return {r[0]: (r[1] or "", r[2] or "") for r in db.execute(
        "SELECT id, district, commune FROM checkpoints")}


class CheckpointRow(TypedDict):
    id: str
    name: str
    district: str  # '' where not set
    commune: str
    created_at: str
    devices: int  # enrolled and not revoked


class DeviceRow(TypedDict):
    id: str
    checkpoint_id: str
    checkpoint_name: str
    enrolled_at: str
    last_seen_at: str | None
    backlog: int | None
    app_version: str | None
    clock_offset_ms: int | None
    last_error: str | None
    last_error_at: str | None
    revoked: bool
    stale: NotRequired[bool]  # the fleet page's: no contact for a day, not revoked


class DocumentRow(TypedDict):
    name: str
    etag: str
    updated_at: str
    expires_at: str | None
    bytes: int


class PlacedCheckpoint(TypedDict):
    """A line of the activity report with the checkpoint's place (the dashboard's)."""

    id: str
    name: str
    scans: int
    per_day: list[int]
    district: str
    commune: str


class PlaceActivity(TypedDict):
    """The activity report summed over one district and commune."""

    district: str
    commune: str
    checkpoints: int
    active: int
    scans: int
    per_day: list[int]


def checkpoints(db: CentralDB) -> list[CheckpointRow]:
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


def fleet(db: CentralDB) -> list[DeviceRow]:
    """Every device: checkpoint, enrolment, last contact, backlog, app version, clock
    offset, last error, revoked."""
    rows = db.execute(
        "SELECT d.id, d.checkpoint_id, p.name, d.enrolled_at, d.last_seen_at, d.backlog, "
        "d.app_version, d.clock_offset_ms, d.last_error, d.last_error_at, d.revoked "
        "FROM devices AS d JOIN checkpoints AS p ON p.id = d.checkpoint_id "
        "ORDER BY d.checkpoint_id, d.enrolled_at").fetchall()
    return [DeviceRow(id=r[0], checkpoint_id=r[1], checkpoint_name=r[2], enrolled_at=r[3],
                      last_seen_at=r[4], backlog=r[5], app_version=r[6], clock_offset_ms=r[7],
                      last_error=r[8], last_error_at=r[9], revoked=bool(r[10])) for r in rows]


def documents(db: CentralDB) -> list[DocumentRow]:
    rows = db.execute("SELECT name, etag, updated_at, expires_at, length(body) "
                      "FROM documents ORDER BY name").fetchall()
    return [{"name": r[0], "etag": r[1], "updated_at": r[2], "expires_at": r[3],
             "bytes": int(r[4])} for r in rows]


def by_place(report: ActivityReport, where: dict[str, tuple[str, str]]
             ) -> list[PlaceActivity]:
    """The activity report summed by district and commune ("(not set)" where unset)."""
    groups: dict[tuple[str, str], PlaceActivity] = {}
    for row in report["checkpoints"]:
        district, commune = where.get(row["id"], ("", ""))
        place = (district or "(not set)", commune or "(not set)")
        g = groups.setdefault(place, PlaceActivity(
            district=place[0], commune=place[1], checkpoints=0, active=0, scans=0,
            per_day=[0] * int(report["days"])))
        g["checkpoints"] += 1
        g["active"] += 1 if row["scans"] else 0
        g["scans"] += row["scans"]
        g["per_day"] = [a + b for a, b in zip(g["per_day"], row["per_day"], strict=True)]
    return [groups[place] for place in sorted(groups)]
