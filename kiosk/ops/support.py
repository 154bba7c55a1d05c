"""``checkpoint-kiosk support-bundle``: one tarball a technician can send.

It holds the configuration with secrets removed, recent logs with personal data masked,
``status`` as JSON and a little about the system.  Masking is belt and braces: the kiosk
logs no personal data above DEBUG, but a bundle may include DEBUG lines or another
program's output, so every line goes through :func:`mask_line`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import tarfile
import time
import tomllib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.logfmt import mask_identifiers

log = logging.getLogger(__name__)

REDACTED = "<redacted>"
UNITS = ("checkpoint-kiosk.service", "checkpoint-kiosk-provision.service")
_SECRET_KEY = re.compile(r"(token|secret|password|passwd|officer_pin|api_key)", re.I)
_NOT_SECRET = {"token_file"}  # a path, and useful to see

_MASKS: tuple[tuple[re.Pattern[str], Any], ...] = (
    # Bearer and our token formats (enrolment "enrol-…", device "dev-…").
    (re.compile(r"(?i)(bearer\s+)\S+"), r"\1" + REDACTED),
    (re.compile(r"\b(enrol|dev)-[A-Za-z0-9_-]{8,}"), REDACTED),
    # An EU DCC (base45 after HC1:) or a whole chip-ID / BHYT payload (pipe-separated).
    (re.compile(r"HC1:\S+"), "HC1:<masked>"),
    (re.compile(r"[^\s|\"']*(\|[^|\n\"']*){3,}"), "<masked payload>"),
    # ID, insurance and phone numbers: nine digits or more keep only their last three.
    (re.compile(r"\d{6,}(\d{3})"), lambda m: "*" * (len(m.group(0)) - 3) + m.group(1)),
)


def mask_line(line: str, secrets: Iterable[str] = ()) -> str:
    """``line`` with tokens, payloads, long numbers and every other identifier the log
    formatter masks (:func:`kiosk.logfmt.mask_identifiers`: a UVCI, a passport number)
    masked; ``secrets`` removed verbatim."""
    for secret in secrets:
        if secret:
            line = line.replace(secret, REDACTED)
    for pattern, repl in _MASKS:
        line = pattern.sub(repl, line)
    return mask_identifiers(line)


def redact_config(data: Any) -> Any:
    """A copy of a parsed config with every secret-looking value replaced."""
    if isinstance(data, dict):
        return {k: (REDACTED if _SECRET_KEY.search(k) and k not in _NOT_SECRET and v
                    else redact_config(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_config(v) for v in data]
    return data


def journal_lines(since: str = "-48h", units: Iterable[str] = UNITS,
                  max_lines: int = 20000) -> list[str] | None:
    """Recent lines of the kiosk's units from the journal; None without journalctl."""
    if not shutil.which("journalctl"):
        return None
    cmd = ["journalctl", "--no-pager", "-o", "short-iso", "--since", since, "-n",
           str(max_lines)]
    for unit in units:
        cmd += ["-u", unit]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                             errors="replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return [f"journalctl failed: {e}"]
    return (out.stdout + out.stderr).splitlines()


def make_bundle(
    cfg: Any,
    output: str | os.PathLike[str],
    *,
    config_path: str | os.PathLike[str] | None = None,
    log_files: Iterable[str | os.PathLike[str]] = (),
    since: str = "-48h",
    status_report: dict[str, Any] | None = None,
) -> Path:
    """Write the tarball to ``output`` (mode 0600) and return its path."""
    from kiosk import __version__
    from kiosk.ops import status as status_mod

    secrets = _known_secrets(cfg)
    members: dict[str, str] = {}
    if config_path is not None and Path(config_path).exists():
        try:
            parsed = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
            members["config.json"] = json.dumps(redact_config(parsed), ensure_ascii=False,
                                                indent=1)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            members["config.json"] = json.dumps({"error": f"config unreadable: {e}"})
    members["config-effective.json"] = json.dumps(
        redact_config(_as_data(cfg)), ensure_ascii=False, indent=1, default=str)
    report = status_report if status_report is not None else status_mod.collect(cfg)
    # status holds no personal data by design (and masking digits would break its numbers);
    # the device token is still scrubbed in case a server error message quoted it.
    text = status_mod.to_json(report)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    members["status.json"] = text
    lines = journal_lines(since)
    if lines is not None:
        members["journal.log"] = "\n".join(mask_line(x, secrets) for x in lines) + "\n"
    for path in log_files:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            text = f"cannot read {path}: {e}"
        members[f"logs/{path.name}"] = "\n".join(
            mask_line(x, secrets) for x in text.splitlines()) + "\n"
    members["system.txt"] = "\n".join([
        f"checkpoint-kiosk {__version__}",
        f"created {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"platform {platform.platform()}",
        f"python {platform.python_version()}",
        _read("/etc/os-release"),
        _read("/proc/device-tree/model"),
    ]) + "\n"

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # The folder the bundle unpacks into: its name without the archive suffix.
    root = re.sub(r"(\.tar\.gz|\.tgz|\.tar)$", "", output.name) or "support"
    if root == output.name:
        root += ".d"   # '-o bundle' must not unpack into a folder named like the file
    with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w:gz") as tar:
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    log.info("support bundle written to %s (%d files)", output, len(members))
    return output


def _known_secrets(cfg: Any) -> list[str]:
    """Secret values to scrub verbatim: the device token.  Not the officer PIN: it is never
    logged, and blanking every "1234" in the logs would point straight at it."""
    try:
        token = Path(cfg.sync.token_file).read_text(encoding="utf-8").strip()
    except OSError:
        return []
    return [token] if token else []


def _as_data(cfg: Any) -> dict[str, Any]:
    import dataclasses

    return {f.name: (dataclasses.asdict(getattr(cfg, f.name))
                     if dataclasses.is_dataclass(getattr(cfg, f.name))
                     else dict(getattr(cfg, f.name)))
            for f in dataclasses.fields(cfg)}


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip("\0\n")
    except OSError:
        return ""
