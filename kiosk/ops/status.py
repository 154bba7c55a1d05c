"""``checkpoint-kiosk status``: what a technician needs at a glance, without secrets.

Read-only: the check-in database is opened without migrating, nothing is written, and it
works while the kiosk runs (WAL lets a second reader in).  Every probe that does not apply
on this machine (no systemd, not a Pi) is reported as unknown (``None``), never guessed.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk import __version__
from kiosk.terminal import printable, printable_json
from offline_queue.disk import disk_space
from offline_queue.store import read_stats

UNIT = "checkpoint-kiosk.service"


@dataclass(frozen=True)
class Probes:
    """Where the facts come from; tests point these at files they write."""

    uptime: Path = Path("/proc/uptime")
    boot_id: Path = Path("/proc/sys/kernel/random/boot_id")
    synced_flag: Path = Path("/run/systemd/timesync/synchronized")
    hwmon_glob: str = "/sys/class/hwmon/hwmon*"
    systemd_dir: Path = Path("/run/systemd/system")
    state_dir: Path = Path("/var/lib/checkpoint-kiosk")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def uptime_seconds(probes: Probes = Probes()) -> float | None:
    text = _read(probes.uptime)
    try:
        return float(text.split()[0]) if text else None
    except ValueError:
        return None


def clock(probes: Probes = Probes()) -> dict[str, Any]:
    """Wall time, whether NTP set it this boot, and the boot id (for correcting times later)."""
    return {
        "now": datetime.now(UTC).isoformat(timespec="seconds"),
        "synced": probes.synced_flag.exists(),
        "boot_id": _read(probes.boot_id),
    }


def under_voltage(probes: Probes = Probes()) -> dict[str, bool | None]:
    """The Pi firmware's under-voltage flags; None when this machine does not report them.

    ``now`` comes from the ``rpi_volt`` hwmon alarm (kernel driver, no subprocess);
    ``since_boot`` from ``vcgencmd get_throttled`` bit 16 when that tool exists.
    """
    now: bool | None = None
    for folder in sorted(glob.glob(probes.hwmon_glob)):
        if _read(Path(folder) / "name") == "rpi_volt":
            alarm = _read(Path(folder) / "in0_lcrit_alarm")
            if alarm in ("0", "1"):
                now = alarm == "1"
    since_boot: bool | None = None
    if shutil.which("vcgencmd"):
        try:
            out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True,
                                 timeout=5).stdout
            bits = int(out.strip().partition("=")[2], 16)
            since_boot = bool(bits & 0x10000)
            now = bool(bits & 0x1) if now is None else now
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
    return {"now": now, "since_boot": since_boot}


def disk(path: str | os.PathLike[str], warn_bytes: int) -> dict[str, Any]:
    """Free space where the check-ins live, judged as ``queue stats`` and the screen judge it."""
    space = disk_space(path, low_below=warn_bytes)
    return {"path": space.path, "free_bytes": space.free_bytes,
            "total_bytes": space.total_bytes, "low": space.low, "error": space.error}


def service(probes: Probes = Probes()) -> dict[str, Any] | None:
    """The kiosk unit's state from systemd, or None where systemd is not running."""
    if not probes.systemd_dir.is_dir() or not shutil.which("systemctl"):
        return None
    try:
        out = subprocess.run(
            ["systemctl", "show", UNIT, "--property=ActiveState,SubState,NRestarts,"
             "ActiveEnterTimestamp,StatusText"], capture_output=True, text=True, timeout=10,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    props = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return {"active": props.get("ActiveState"), "sub": props.get("SubState"),
            "restarts": props.get("NRestarts"), "since": props.get("ActiveEnterTimestamp"),
            "status": props.get("StatusText")}


def scanner(spec: str) -> dict[str, Any] | None:
    """Whether the configured scanner's device is there (None: no scanner configured).

    Looked at, never opened: the running kiosk holds it (an open could steal its keys or
    its bytes), so this says "plugged in", not "working"; the self-test reads a scan.
    """
    from hardware.errors import HardwareError
    from hardware.scanner import ScannerSpec

    if not spec:
        return None
    try:
        device = ScannerSpec.parse(spec).device
    except HardwareError as e:
        return {"spec": spec, "device": None, "present": False, "error": str(e)}
    try:
        mode = os.stat(device).st_mode  # follows /dev/serial/by-id and /dev/input/by-id links
    except OSError:
        return {"spec": spec, "device": device, "present": False,
                "error": f"scanner {device} is not there: is it plugged in?"}
    if not stat.S_ISCHR(mode):
        return {"spec": spec, "device": device, "present": False,
                "error": f"scanner {device} is not a device; check scanner.spec"}
    return {"spec": spec, "device": device, "present": True, "error": None}


def queue(db_path: str | os.PathLike[str], warn_bytes: int) -> dict[str, Any]:
    """Backlog and last sync from the check-in database (read only: no migration, no write)."""
    path = Path(db_path)
    if not path.exists():
        return {"error": f"no check-in database at {str(path)!r} yet"}
    try:
        stats = read_stats(path, disk_low_below=warn_bytes)
    except Exception as e:  # status must always print something
        return {"error": str(e)}
    return {"backlog": stats["pending"] + stats["in_flight"],
            "dead_letter": stats["rejected"] + stats["conflict"], "sent": stats["sent"],
            "oldest_pending_age_s": stats["oldest_pending_age_s"],
            "db_size_bytes": stats["db_size_bytes"], "last_sync": stats["last_success"],
            "last_error": stats["last_error"],
            "reprovision_needed": stats["reprovision_needed"],
            "document_errors": stats.get("document_errors", []),
            "central_key_warning": stats.get("central_key_warning")}


def collect(cfg: Any, *, probes: Probes = Probes()) -> dict[str, Any]:
    """Everything ``status`` shows, as plain JSON-able data (no secrets, no personal data)."""
    from kiosk.ops.provision import last_result

    warn = cfg.store.disk_warn_mb * 2**20
    token_file = Path(cfg.sync.token_file)
    provisioned = last_result(probes.state_dir)
    report: dict[str, Any] = {
        "version": __version__,
        "uptime_s": uptime_seconds(probes),
        "service": service(probes),
        "device": {"id": cfg.device.id or None, "checkpoint_id": cfg.device.checkpoint_id or None,
                   "checkpoint_name": cfg.device.checkpoint_name or None,
                   "server_url": cfg.sync.server_url or None,
                   # Presence only: the token itself never leaves its file.
                   "device_token": "present" if token_file.exists() else "missing"},
        "queue": queue(cfg.store.path, warn),
        "disk": disk(Path(cfg.store.path).parent, warn),
        "scanner": scanner(cfg.scanner.spec),
        "clock": clock(probes),
        "under_voltage": under_voltage(probes),
        "last_provisioning": provisioned.as_dict() if provisioned else None,
    }
    report["errors"] = problems(report)
    report["warnings"] = warnings(report)
    return report


def problems(report: dict[str, Any]) -> list[str]:
    """What keeps this kiosk from recording and delivering check-ins: ``status`` exits 1."""
    out = _queue_problems(report["queue"])
    if report["device"]["server_url"] is None:
        out.append("not provisioned: no server URL")
    elif report["device"]["device_token"] == "missing":
        out.append("not provisioned: no device token")
    if report["disk"]["low"]:
        out.append(f"disk low: {report['disk']['free_bytes'] // 2**20} MiB free")
    elif report["disk"]["error"]:
        out.append(report["disk"]["error"])
    if (report.get("scanner") or {}).get("error"):
        out.append(report["scanner"]["error"])
    if report["under_voltage"]["now"]:
        out.append("under-voltage now: use the official power supply")
    svc = report["service"]
    if svc is not None and svc["active"] != "active":
        out.append(f"service {UNIT} is {svc['active']}")
    last = report["last_provisioning"]
    if last is not None and not last["ok"]:
        out.append(f"last provisioning failed: {last['message']}")
    return out


def _queue_problems(q: dict[str, Any]) -> list[str]:
    if "error" in q:  # the queue's database cannot be read
        return [q["error"]]
    out = []
    if q["last_error"]:
        out.append(f"last sync error: {q['last_error']}")
    if q["reprovision_needed"]:
        out.append("the server refused the device token: re-provision")
    if q["dead_letter"]:
        out.append(f"{q['dead_letter']} check-in(s) refused by the server (dead letter)")
    return out


def warnings(report: dict[str, Any]) -> list[str]:
    """Worth a look, but the kiosk works: a border post can be without NTP for days (times
    are corrected later), and a past under-voltage is history, not a fault now."""
    out: list[str] = []
    q = report["queue"]
    # A refused document (unsigned, tampered, rolled back): the last good one decides.
    out.extend(f"document {e[0]} refused, the previous one stays: {e[1]}"
               for e in q.get("document_errors") or [] if isinstance(e, list) and len(e) == 2)
    if q.get("central_key_warning"):
        out.append(q["central_key_warning"])
    if not report["clock"]["synced"]:
        out.append("clock not synced by NTP since boot")
    if not report["under_voltage"]["now"] and report["under_voltage"]["since_boot"]:
        out.append("under-voltage happened since boot: check the power supply")
    return out


def exit_status(report: dict[str, Any]) -> int:
    """``status``'s exit status: 0 nothing wrong (warnings allowed), 1 errors listed."""
    return 1 if report["errors"] else 0


def format_human(report: dict[str, Any]) -> str:
    def age(seconds: float | None) -> str:
        if seconds is None:
            return "unknown"
        d, rest = divmod(int(seconds), 86400)
        return (f"{d}d " if d else "") + time.strftime("%H:%M:%S", time.gmtime(rest))

    dev, q, dk, ck, uv = (report[k] for k in ("device", "queue", "disk", "clock",
                                               "under_voltage"))
    svc = report["service"]
    rows = [
        ("version", report["version"]),
        ("uptime", age(report["uptime_s"])),
        ("service", "no systemd here" if svc is None else
         f"{svc['active']} ({svc['sub']}) since {svc['since']}, restarts {svc['restarts']}"),
        ("device", f"{dev['id'] or '-'} at {dev['checkpoint_id'] or '-'} "
                   f"{dev['checkpoint_name'] or ''}".rstrip()),
        ("server", f"{dev['server_url'] or '-'} (device token {dev['device_token']})"),
        ("backlog", q.get("error") or f"{q['backlog']} waiting, {q['dead_letter']} dead letter"),
        ("last sync", q.get("last_sync") or "never"),
        ("disk", dk["error"] or
         f"{dk['free_bytes'] // 2**20} MiB free of {dk['total_bytes'] // 2**20} MiB"
         + (" (LOW)" if dk["low"] else "")),
        ("scanner", _scanner_row(report.get("scanner"))),
        ("clock", f"{ck['now']} ({'NTP synced' if ck['synced'] else 'NOT synced'})"),
        ("under-voltage", "not reported here" if uv["now"] is None and uv["since_boot"] is None
         else f"now {_yes(uv['now'])}, since boot {_yes(uv['since_boot'])}"),
    ]
    lines = [f"{k + ':':<15}{v}" for k, v in rows]
    for title in ("errors", "warnings"):
        items = report.get(title) or ["none"]
        lines.append(f"{title + ':':<15}{items[0]}")
        lines += [f"{'':<15}{e}" for e in items[1:]]
    # Server errors, provisioning messages and config values are external text: no raw
    # control characters reach the technician's terminal.
    return "\n".join(printable(str(line), keep="") for line in lines)


def _scanner_row(sc: dict[str, Any] | None) -> str:
    if sc is None:
        return "none configured"
    return f"{sc['spec']} ({'plugged in' if sc['present'] else sc['error']})"


def _yes(value: bool | None) -> str:
    return "unknown" if value is None else ("YES" if value else "no")


def to_json(report: dict[str, Any]) -> str:
    return printable_json(report, indent=1, default=str)
