"""Enrolling a kiosk with the central platform and writing its configuration.

Three ways in, one code path: command-line flags (``checkpoint-kiosk provision``), a
provisioning file on the boot partition or a USB stick (:func:`import_file`,
:func:`import_from_media`), and a provisioning QR shown to the kiosk's camera from the officer
panel (:func:`from_qr_payload`).  Each builds a :class:`Request`; :func:`provision` then

1. validates everything, including the config file it is going to write, *before* spending
   the single-use enrolment token;
2. exchanges the token for a device token (``POST /v1/devices/enrol``);
3. writes the device token (mode 0600) and the config atomically, so a failure at any step
   leaves the old configuration exactly as it was.

Secrets (the enrolment and device tokens) never appear in logs, errors, ``repr`` or results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import pwd
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk import config as config_mod
from kiosk.errors import ConfigError, ProvisionError
from offline_queue.serverurl import check_server_url

log = logging.getLogger(__name__)

QR_PREFIX = "CKPROV1:"
FILE_NAME = "checkpoint-kiosk-provision.toml"
# Where a technician's file is looked for: the boot partition (FAT, readable from any laptop)
# and removable media mounted by the udev rule install.sh adds (or by hand under /media, /mnt).
MEDIA_GLOBS = ("/boot/firmware", "/boot", "/media/*", "/media/*/*", "/run/media/*/*", "/mnt")
STATE_DIR = Path("/var/lib/checkpoint-kiosk")
RESULT_FILE = "provision-result.json"
SIGNAL_PINS = ("red", "amber", "green", "buzzer", "gate", "confirm_button", "direction_button",
               "officer_button")
REQUEST_KEYS = ("server_url", "enrolment_token", "checkpoint_id", "checkpoint_name",
                "policy_profile", "camera", "direction", "ca_bundle", "pins")


@dataclass(frozen=True)
class Request:
    """What a technician supplies; ``enrolment_token`` is secret and kept out of ``repr``."""

    server_url: str
    enrolment_token: str = field(repr=False)
    checkpoint_name: str = ""
    checkpoint_id: str = ""  # if given, the server's answer must match it
    policy_profile: str | None = None
    camera: str | None = None
    direction: str | None = None
    ca_bundle: str | None = None
    pins: Mapping[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            url = check_server_url(self.server_url)
        except ValueError as e:
            raise ProvisionError(str(e)) from None
        object.__setattr__(self, "server_url", url)
        token = self.enrolment_token.strip() if isinstance(self.enrolment_token, str) else ""
        if not token or any(c.isspace() for c in token) or len(token) > 512:
            # Never echo a token, even a malformed one.
            raise ProvisionError(
                "the enrolment token is missing or malformed (it is one word, printed by "
                "'checkpoint-kiosk central enrol-token'); ask the platform for a new one"
            )
        object.__setattr__(self, "enrolment_token", token)
        for name in ("checkpoint_name", "checkpoint_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or len(value) > 200 or "\n" in value:
                raise ProvisionError(f"{name} {value!r} must be one line of text")
        if self.policy_profile is not None:
            from kiosk.policy import PROFILES

            if self.policy_profile not in PROFILES:
                raise ProvisionError(
                    f"policy profile {self.policy_profile!r} is unknown; choose one of "
                    f"{', '.join(PROFILES)}"
                )
        unknown = set(self.pins) - set(SIGNAL_PINS)
        if unknown:
            raise ProvisionError(
                f"unknown pin {sorted(unknown)[0]!r}; valid pins: {', '.join(SIGNAL_PINS)}"
            )


@dataclass(frozen=True)
class Result:
    """What provisioning did; safe to show on screen and in status (no secrets)."""

    ok: bool
    message: str
    device_id: str = ""
    checkpoint_id: str = ""
    checkpoint_name: str = ""
    server_url: str = ""
    config_path: str = ""
    source: str = ""
    at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- the three ways in -----------------------------------------------------------------------


def request_from_mapping(data: Mapping[str, Any], *, source: str) -> Request:
    """A request from a parsed file or QR object; every key checked, the first problem named."""
    unknown = set(data) - set(REQUEST_KEYS)
    if unknown:
        raise ProvisionError(
            f"{source}: unknown key {sorted(unknown)[0]!r}; valid keys: {', '.join(REQUEST_KEYS)}"
        )
    for key in ("server_url", "enrolment_token"):
        if key not in data:
            raise ProvisionError(f"{source}: {key!r} is missing")
    for key, value in data.items():
        if key != "pins" and not isinstance(value, str):
            shown = "<hidden>" if key == "enrolment_token" else repr(value)
            raise ProvisionError(f"{source}: {key} = {shown} must be a string")
    pins = data.get("pins", {})
    if not isinstance(pins, Mapping) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in pins.values()):
        raise ProvisionError(f"{source}: pins = {pins!r} must be a table of BCM pin numbers")
    values = {k: v for k, v in data.items() if k != "pins"}
    for key in ("policy_profile", "camera", "direction", "ca_bundle"):
        if values.get(key) == "":
            values.pop(key)
    try:
        return Request(**values, pins=dict(pins))
    except ProvisionError as e:
        raise ProvisionError(f"{source}: {e}") from None


def parse_file(path: str | os.PathLike[str]) -> Request:
    """Read and validate a provisioning file (TOML, see docs/appliance.md)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProvisionError(f"provisioning file {str(path)!r} cannot be read: {e}") from e
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ProvisionError(
            f"provisioning file {str(path)!r} is not valid TOML: {e}; compare it with the "
            "example in docs/appliance.md"
        ) from None
    return request_from_mapping(data, source=f"provisioning file {str(path)!r}")


def from_qr_payload(payload: str | bytes) -> Request:
    """The request in a provisioning QR (``CKPROV1:`` + a JSON object), for the officer panel."""
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ProvisionError("the QR code is not a provisioning code (not UTF-8)") from None
    if not payload.startswith(QR_PREFIX):
        raise ProvisionError(
            f"the QR code is not a provisioning code (it must start with {QR_PREFIX!r})"
        )
    try:
        data = json.loads(payload[len(QR_PREFIX):])
    except ValueError as e:
        raise ProvisionError(f"the provisioning QR code is damaged: {e}") from None
    if not isinstance(data, dict):
        raise ProvisionError("the provisioning QR code holds no settings object")
    return request_from_mapping(data, source="provisioning QR")


def qr_payload(request: Request) -> str:
    """The text of a provisioning QR for ``request`` (the platform or a technician's laptop)."""
    data = {k: v for k, v in dataclasses.asdict(request).items() if v not in (None, "", {})}
    return QR_PREFIX + json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def is_provisioning_qr(payload: str | bytes) -> bool:
    prefix = QR_PREFIX.encode() if isinstance(payload, bytes) else QR_PREFIX
    return payload.startswith(prefix)  # type: ignore[arg-type]


# -- enrolment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    device_id: str
    checkpoint_id: str
    device_token: str = field(repr=False)
    server_time: str | None = None


def enrol(request: Request, *, timeout: float = 10.0, session: Any = None) -> Enrolment:
    """Exchange the enrolment token for a device token; ProvisionError says what to do."""
    import requests

    url = request.server_url + "/v1/devices/enrol"
    http = session or requests.Session()
    try:
        response = http.post(url, json={"enrolment_token": request.enrolment_token},
                             timeout=timeout, verify=request.ca_bundle or True)
    except requests.exceptions.SSLError as e:
        raise ProvisionError(
            f"TLS error talking to {url}: {e}; if it says 'not yet valid' the kiosk's clock is "
            "wrong (set it or let NTP sync), otherwise check ca_bundle"
        ) from None
    except requests.RequestException as e:
        raise ProvisionError(
            f"cannot reach the central platform at {request.server_url}: "
            f"{type(e).__name__}; check the URL, the network and that the server is up, "
            "then try again (the enrolment token was not used)"
        ) from None
    finally:
        if session is None:
            http.close()
    if response.status_code in (401, 403):
        raise ProvisionError(
            f"the central platform at {request.server_url} refused the enrolment token "
            f"({response.status_code}: {_error_text(response)}); tokens work once: ask for a "
            "new one"
        )
    if response.status_code != 201 and response.status_code != 200:
        raise ProvisionError(
            f"enrolment at {url} failed: {response.status_code} {_error_text(response)}"
        )
    try:
        body = response.json()
        enrolment = Enrolment(str(body["device_id"]), str(body["checkpoint_id"]),
                              str(body["device_token"]), body.get("server_time"))
    except (ValueError, KeyError, TypeError):
        raise ProvisionError(f"the answer from {url} is not an enrolment answer") from None
    if not enrolment.device_token or "\n" in enrolment.device_token:
        raise ProvisionError(f"the answer from {url} has no usable device token")
    return enrolment


def _error_text(response: Any) -> str:
    try:
        return str(response.json().get("error", ""))[:200]
    except (ValueError, AttributeError):
        return str(response.reason or "")[:200]


# -- writing the configuration ---------------------------------------------------------------


def provision(
    request: Request,
    *,
    config_path: str | os.PathLike[str] = config_mod.DEFAULT_PATH,
    token_path: str | os.PathLike[str] | None = None,
    owner: str | None = None,
    timeout: float = 10.0,
    source: str = "command line",
    session: Any = None,
) -> Result:
    """Enrol and write the configuration; raises ProvisionError and leaves files untouched.

    ``owner`` (a user name, e.g. ``kiosk``) gets the token and config when run as root.
    """
    config_path = Path(config_path)
    current = _read_toml(config_path)
    if token_path is None:
        token_path = current.get("sync", {}).get("token_file") or config_path.parent / \
            "device-token"
    token_path = Path(token_path)
    new = _merged(current, request, token_path)
    _validate(new, config_path)
    uid_gid = _owner_ids(owner)

    enrolment = enrol(request, timeout=timeout, session=session)
    if request.checkpoint_id and enrolment.checkpoint_id != request.checkpoint_id:
        raise ProvisionError(
            f"the enrolment token belongs to checkpoint {enrolment.checkpoint_id!r}, not "
            f"{request.checkpoint_id!r}; the token is now used: ask for one for the right "
            "checkpoint"
        )
    new["device"]["id"] = enrolment.device_id
    new["device"]["checkpoint_id"] = enrolment.checkpoint_id
    _validate(new, config_path)
    _write_atomic(token_path, enrolment.device_token + "\n", mode=0o600, owner=uid_gid)
    _write_atomic(config_path, _header(source) + dumps_toml(new), mode=0o640, owner=uid_gid)
    log.info("enrolled as device %s at checkpoint %s (%s); config written to %s",
             enrolment.device_id, enrolment.checkpoint_id, source, config_path)
    return Result(
        ok=True,
        message=f"enrolled as {enrolment.device_id} at {enrolment.checkpoint_id}",
        device_id=enrolment.device_id,
        checkpoint_id=enrolment.checkpoint_id,
        checkpoint_name=new["device"].get("checkpoint_name", ""),
        server_url=request.server_url,
        config_path=str(config_path),
        source=source,
        at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ProvisionError(
            f"the current config {str(path)!r} cannot be read ({e}); fix or move it first"
        ) from None


def _merged(current: Mapping[str, Any], request: Request, token_path: Path) -> dict[str, Any]:
    new: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v
                           for k, v in current.items()}
    device = new.setdefault("device", {})
    if request.checkpoint_name:
        device["checkpoint_name"] = request.checkpoint_name
    if request.direction:
        device["direction"] = request.direction
    sync = new.setdefault("sync", {})
    sync["server_url"] = request.server_url
    sync["token_file"] = str(token_path)
    if request.ca_bundle:
        sync["ca_bundle"] = request.ca_bundle
    if request.camera:
        new.setdefault("camera", {})["spec"] = request.camera
    if request.pins:
        new.setdefault("signals", {}).update(request.pins)
    if request.policy_profile:
        new.setdefault("policy", {})["profile"] = request.policy_profile
    return new


def _validate(data: Mapping[str, Any], config_path: Path) -> None:
    """The config module's own checks on exactly what will be written."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "kiosk.toml"
        probe.write_text(dumps_toml(data), encoding="utf-8")
        try:
            config_mod.load(probe, environ={})
        except ConfigError as e:
            raise ProvisionError(
                f"the new configuration for {str(config_path)!r} would be invalid: "
                f"{str(e).replace(str(probe), 'new config')}"
            ) from None


def _owner_ids(owner: str | None) -> tuple[int, int] | None:
    if owner is None or os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        raise ProvisionError(
            f"user {owner!r} does not exist; run systemd/install.sh first or pass --owner ''"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _write_atomic(path: Path, text: str, *, mode: int, owner: tuple[int, int] | None) -> None:
    """Write beside the target, fsync, rename: a power cut leaves the old or the new file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        raise ProvisionError(
            f"cannot write {str(path)!r}: {e}; run as root or as the kiosk user"
        ) from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)  # before any secret is written
            if owner is not None:
                os.fchown(f.fileno(), *owner)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ProvisionError(f"cannot write {str(path)!r}: {e}") from e
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _header(source: str) -> str:
    return (f"# Written by 'checkpoint-kiosk provision' ({source}) on "
            f"{datetime.now(UTC).isoformat(timespec='seconds')}.\n"
            "# The device token is in sync.token_file (mode 0600), never in this file.\n\n")


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML for the config's shapes: scalars, lists of scalars and nested tables."""
    lines: list[str] = []

    def table(prefix: str, values: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, Mapping)}
        tables = {k: v for k, v in values.items() if isinstance(v, Mapping)}
        if prefix and (scalars or not tables):
            lines.extend(["", f"[{prefix}]"] if lines else [f"[{prefix}]"])
        for key, value in scalars.items():
            if value is not None:
                lines.append(f"{_key(key)} = {_value(value)}")
        for key, value in tables.items():
            table(f"{prefix}.{_key(key)}" if prefix else _key(key), value)

    table("", data)
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, datetime):
        return value.isoformat()
    raise ProvisionError(f"cannot write {value!r} to TOML")


# -- files on the boot partition or a USB stick ----------------------------------------------


def find_files(globs: Iterable[str] = MEDIA_GLOBS) -> list[Path]:
    """Provisioning files on mounted media, in a stable order."""
    import glob

    found: list[Path] = []
    for pattern in globs:
        for folder in sorted(glob.glob(pattern)):
            candidate = Path(folder) / FILE_NAME
            if candidate.is_file() and candidate not in found:
                found.append(candidate)
    return found


def import_file(
    path: str | os.PathLike[str],
    *,
    config_path: str | os.PathLike[str] = config_mod.DEFAULT_PATH,
    state_dir: str | os.PathLike[str] = STATE_DIR,
    owner: str | None = None,
    timeout: float = 10.0,
    force: bool = False,
) -> Result | None:
    """Validate and import one provisioning file; returns the result (also saved for the
    screen and ``status``), or None when this exact file was imported before.

    A file is remembered by its SHA-256, so media left in the kiosk are not re-imported at
    every boot (and read-only media work: nothing is written to them).
    """
    path = Path(path)
    state = Path(state_dir)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise ProvisionError(f"provisioning file {str(path)!r} cannot be read: {e}") from e
    seen = state / "provisioned-files"
    done = set(seen.read_text(encoding="utf-8").split()) if seen.exists() else set()
    if digest in done and not force:
        log.info("provisioning file %s was imported before; skipping", path)
        return None
    source = f"file {path}"
    try:
        result = provision(parse_file(path), config_path=config_path, owner=owner,
                           timeout=timeout, source=source)
    except ProvisionError as e:
        result = Result(ok=False, message=str(e), source=source,
                        at=datetime.now(UTC).isoformat(timespec="seconds"))
        save_result(result, state)
        raise
    save_result(result, state)
    with contextlib.suppress(OSError):
        with seen.open("a", encoding="utf-8") as f:
            f.write(digest + "\n")
    return result


def import_from_media(**kwargs: Any) -> list[Result]:
    """Import every new provisioning file found on mounted media (the boot-time unit)."""
    globs = kwargs.pop("globs", MEDIA_GLOBS)
    results = []
    for path in find_files(globs):
        result = import_file(path, **kwargs)
        if result is not None:
            results.append(result)
    return results


def save_result(result: Result, state_dir: str | os.PathLike[str] = STATE_DIR) -> None:
    """Keep the last result for the screen and ``status`` (best effort: never fails)."""
    path = Path(state_dir) / RESULT_FILE
    try:
        _write_atomic(path, json.dumps(result.as_dict(), ensure_ascii=False, indent=1) + "\n",
                      mode=0o644, owner=None)
    except ProvisionError as e:
        log.warning("cannot keep the provisioning result: %s", e)


def last_result(state_dir: str | os.PathLike[str] = STATE_DIR) -> Result | None:
    """The last provisioning result (file, QR or command line), for the screen."""
    path = Path(state_dir) / RESULT_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Result(**{k: v for k, v in data.items() if k in Result.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None
