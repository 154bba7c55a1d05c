"""Enrolling a kiosk with the central platform and writing its configuration.

Three ways in, one code path: command-line flags (``checkpoint-kiosk provision``), a
provisioning file on the boot partition or a USB stick (:func:`import_file`,
:func:`import_from_media`), and a provisioning QR shown to the kiosk's camera from the officer
panel (:func:`from_qr_payload`).  Each builds a :class:`Request`; :func:`provision` then

1. validates everything, including the config file it is going to write, *before* spending
   the single-use enrolment token;
2. checks that the server holds the central key the request names (``central_key``, a
   fingerprint from the platform's QR or file: ``GET /v1/keys``), before the token is spent;
3. exchanges the token for a device token (``POST /v1/devices/enrol``), whose answer carries
   the central's public key: the kiosk pins it (``sync.central_key``) and from then on
   applies only documents signed by it or by a key it rotated to (docs/trust.md);
4. writes the device token (mode 0600) and the config atomically, so a failure at any step
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
from typing import TYPE_CHECKING, Any

from kiosk import config as config_mod
from kiosk.errors import ConfigError, StoreError
from kiosk.errors import ProvisionError as ProvisionError  # re-exported: what provisioning raises
from offline_queue.serverurl import check_server_url
from offline_queue.signing import (
    SignatureError,
    check_fingerprint,
    fingerprint,
    follow_rotations,
    key_of,
    key_text,
    parse_key,
    read_keys,
)
from offline_queue.untrusted import escaped

if TYPE_CHECKING:  # imported when enrolling: the commands start fast
    import requests

log = logging.getLogger(__name__)

QR_PREFIX = "CKPROV1:"
FILE_NAME = "checkpoint-kiosk-provision.toml"
# Where a technician's file is looked for: the boot partition (FAT, readable from any laptop)
# and removable media mounted by the udev rule install.sh adds (or by hand under /media, /mnt).
MEDIA_GLOBS = ("/boot/firmware", "/boot", "/media/*", "/media/*/*", "/run/media/*/*", "/mnt")
STATE_DIR = Path("/var/lib/checkpoint-kiosk")
RESULT_FILE = "provision-result.json"
PENDING_FILE = "provision-pending.json"  # a stick's change waiting for the officer (0600)
SEEN_FILE = "provisioned-files"  # SHA-256 of every file imported, confirmed or rejected
TOKEN_FILE_NAME = "device-token"  # beside the config when neither flag nor config names one
MAX_PREVIOUS_IDS = 16  # the central links at most this many old ids to a new device
MAX_DEVICE_ID = 64  # and refuses the whole enrolment for a longer id
SIGNAL_PINS = config_mod.PIN_KEYS  # the [signals] pins a request may set
REQUEST_KEYS = ("server_url", "enrolment_token", "checkpoint_id", "checkpoint_name",
                "policy_profile", "camera", "direction", "ca_bundle", "pins", "central_key")


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
    # The fingerprint of the central's signing key ('checkpoint-kiosk central key'): the
    # kiosk enrols only with a central holding it.  Empty: the key is taken on trust.
    central_key: str = ""

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
        if self.central_key:
            try:
                object.__setattr__(self, "central_key", check_fingerprint(
                    self.central_key, "central_key"))
            except SignatureError as e:
                raise ProvisionError(str(e)) from None
        for name in ("checkpoint_name", "checkpoint_id"):
            value = getattr(self, name)
            # Shown to officers and written to the config: no control or bidi characters
            # that could hide what it says (the text may come from a stranger's stick).
            if not isinstance(value, str) or len(value) > 200 or escaped(value) != value:
                raise ProvisionError(f"{name} {value!r} must be one line of plain text (no "
                                     "control, bidi or format characters)")
        if self.policy_profile is not None:
            from kiosk.domain.policy import PROFILES

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
    replaced_token: str = ""  # the token file that held another device token, if any
    replaced_device: str = ""  # whose token that was, when the config named it
    requeued: int = 0  # dead-lettered check-ins put back in the queue after enrolment
    previous_device_ids: tuple[str, ...] = ()  # sent to the central so it accepts the backlog
    unlinked_device_ids: tuple[str, ...] = ()  # of those, the ones the central did not link
    pending: bool = False  # staged for the officer's confirmation on screen, nothing changed
    central_key: str = ""  # the fingerprint of the central key pinned
    central_key_checked: bool = False  # it matched the fingerprint the request named

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
    for key in ("policy_profile", "camera", "direction", "ca_bundle", "central_key"):
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
    if isinstance(payload, bytes):
        return payload.startswith(QR_PREFIX.encode())
    return payload.startswith(QR_PREFIX)


# -- enrolment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    device_id: str
    checkpoint_id: str
    device_token: str = field(repr=False)
    server_time: str | None = None
    # The previous ids the central linked (their rows are accepted); None: not said.
    linked_device_ids: tuple[str, ...] | None = None
    central_key: bytes | None = None  # the central's signing key; None: an older central
    # The central's sealing key as the answer carries it, signed (offline_queue.sealing);
    # None: a central of before sealing.
    sealing_key: object = None


def enrol(request: Request, *, timeout: float = 10.0, session: requests.Session | None = None,
          previous_device_ids: Iterable[str] = ()) -> Enrolment:
    """Exchange the enrolment token for a device token; ProvisionError says what to do.

    ``previous_device_ids`` are the ids this kiosk recorded under before: the central links
    them to the new device so the backlog still carrying them is accepted (issue 9 #1).
    """
    import requests

    url = request.server_url + "/v1/devices/enrol"
    body: dict[str, Any] = {"enrolment_token": request.enrolment_token}
    previous = list(previous_device_ids)[:MAX_PREVIOUS_IDS]
    if previous:
        body["previous_device_ids"] = previous
    http = session or requests.Session()
    try:
        response = http.post(url, json=body, timeout=timeout, verify=request.ca_bundle or True)
    except requests.exceptions.SSLError as e:
        raise tls_error(url, e) from None
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
        linked = body.get("linked_device_ids")
        keys = body.get("central_key")
        enrolment = Enrolment(str(body["device_id"]), str(body["checkpoint_id"]),
                              str(body["device_token"]), body.get("server_time"),
                              tuple(str(i) for i in linked) if isinstance(linked, list)
                              else None,
                              read_keys(keys)[0] if keys is not None else None,
                              keys.get("sealing_key") if isinstance(keys, dict) else None)
    except SignatureError as e:
        raise ProvisionError(f"the enrolment answer from {url} carries no usable central "
                             f"key ({e}); the token is now used: ask for a new one once the "
                             "central is fixed") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ProvisionError(f"the answer from {url} is not an enrolment answer") from None
    if not enrolment.device_token or "\n" in enrolment.device_token:
        raise ProvisionError(f"the answer from {url} has no usable device token")
    return enrolment


def tls_error(url: str, e: Exception) -> ProvisionError:
    """A TLS failure before the token is sent: what the TLS library said (not the pool's
    wrapping), and the two usual causes, with what to do."""
    text = str(e)
    m = re.search(r"\] ([^'\"]+?)(?: \(_ssl\.c:\d+\))?['\"]", text)
    reason = escaped(m.group(1) if m else text, limit=300)
    return ProvisionError(
        f"TLS error talking to {url}: {reason}; if the central's certificate is from the "
        "province's own CA, give the kiosk that CA's certificate with --ca-bundle FILE "
        "(ca_bundle in a provisioning file or QR); if it says 'not yet valid', the kiosk's "
        "clock is wrong (set it or let NTP sync) (the enrolment token was not used)")


def check_central_key(request: Request, *, timeout: float = 10.0,
                      session: requests.Session | None = None) -> bytes:
    """The central's current signing key, once it is shown to be the key ``request`` names
    or one that key rotated to (``GET /v1/keys``); ProvisionError before the token is spent.
    """
    import requests

    url = request.server_url + "/v1/keys"
    http = session or requests.Session()
    try:
        response = http.get(url, timeout=timeout, verify=request.ca_bundle or True)
    except requests.exceptions.SSLError as e:
        raise tls_error(url, e) from None
    except requests.RequestException as e:
        raise ProvisionError(
            f"cannot read the central's key at {url}: {type(e).__name__}; check the URL, the "
            "network and that the server is up (the enrolment token was not used)") from None
    finally:
        if session is None:
            http.close()
    if response.status_code != 200:
        raise ProvisionError(
            f"the central at {request.server_url} shows no signing key ({url}: "
            f"{response.status_code} {_error_text(response)}): it is older than signed "
            "documents, or not the central; upgrade it, or leave central_key out of the "
            "provisioning file (the enrolment token was not used)")
    wanted = request.central_key
    try:
        current, rotations = read_keys(response.json())
        start = key_of(wanted, current, rotations)
        if start is None:
            raise SignatureError(f"its key is {fingerprint(current)}, not {wanted}, and no "
                                 "rotation leads from one to the other")
        follow_rotations(start, rotations, fingerprint(current))
    except (SignatureError, ValueError) as e:
        raise ProvisionError(
            f"the server at {request.server_url} is not the central the provisioning names: "
            f"{e}. Check the server URL and the central_key fingerprint ('checkpoint-kiosk "
            "central key' on the central); nothing changed and the enrolment token was not "
            "used") from None
    return current


def _error_text(response: requests.Response) -> str:
    """The server's words, quoted and escaped: they reach the log, the screen and status,
    and a hostile server must not forge a line there (issue 9 #14)."""
    from offline_queue.sync import quoted

    try:
        return quoted(response.json().get("error", ""), 200)
    except (ValueError, AttributeError):
        return quoted(response.reason or "", 200)


# -- writing the configuration ---------------------------------------------------------------


def provision(
    request: Request,
    *,
    config_path: str | os.PathLike[str] = config_mod.DEFAULT_PATH,
    token_path: str | os.PathLike[str] | None = None,
    replace_token: bool = False,
    store_path: str | os.PathLike[str] | None = None,
    owner: str | None = None,
    timeout: float = 10.0,
    source: str = "command line",
    session: requests.Session | None = None,
) -> Result:
    """Enrol and write the configuration; raises ProvisionError and leaves files untouched.

    ``token_path`` (default: the config's ``sync.token_file``, else ``device-token`` beside
    the config) is where the device token goes; the config written names exactly that file.
    An existing token file is replaced only with ``replace_token`` (it may be another
    kiosk's).  ``store_path`` (default: the config's ``store.path``) is the queue whose
    backlog the new enrolment must still deliver.  ``owner`` (a user name, e.g. ``kiosk``)
    gets the token and config when run as root.
    """
    config_path = Path(config_path)
    current = _read_toml(config_path)
    token_path = resolve_token_path(current, config_path, token_path)
    replacing = _check_token_file(token_path, config_path, current, replace=replace_token)
    new = _merged(current, request, token_path)
    _validate(new, config_path)
    uid_gid = _owner_ids(owner)
    store = Path(store_path) if store_path is not None else _store_path(current)
    previous = _previous_device_ids(current, store)

    checked = check_central_key(request, timeout=timeout, session=session) \
        if request.central_key else None
    enrolment = enrol(request, timeout=timeout, session=session, previous_device_ids=previous)
    pin = _pinned_key(request, checked, enrolment)
    if pin is None:
        new["sync"].pop("central_key", None)  # an older central: pinned on first use
    else:
        new["sync"]["central_key"] = key_text(pin)
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
    if replacing is not None:
        log.info("replaced the device token in %s (it belonged to %s)", token_path,
                 replacing or "a device this config does not name")
    _write_atomic(config_path, _header(source) + dumps_toml(new), mode=0o640, owner=uid_gid)
    log.info("enrolled as device %s at checkpoint %s (%s); config written to %s",
             enrolment.device_id, enrolment.checkpoint_id, source, config_path)
    unlinked = [i for i in previous if enrolment.linked_device_ids is not None
                and i not in enrolment.linked_device_ids]
    if unlinked:
        # Another checkpoint's or unknown ids: the central will refuse their rows.
        log.warning("the central did not link previous device id(s) %s to %s; check-ins "
                    "recorded under them cannot be delivered by this enrolment",
                    ", ".join(unlinked), enrolment.device_id)
    requeued = _requeue_dead_letter(store, owner=uid_gid) if previous else 0
    _keep_sealing_key(store, enrolment.sealing_key, pin, owner=uid_gid)
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
        replaced_token=str(token_path) if replacing is not None else "",
        replaced_device=replacing or "",
        requeued=requeued,
        previous_device_ids=tuple(previous),
        unlinked_device_ids=tuple(unlinked),
        central_key=fingerprint(pin) if pin is not None else "",
        central_key_checked=checked is not None,
    )


def _pinned_key(request: Request, checked: bytes | None,
                enrolment: Enrolment) -> bytes | None:
    """The key the kiosk pins: the one checked against the request's fingerprint, which the
    enrolment answer must carry too; without a fingerprint, the answer's (logged)."""
    if checked is not None:
        if enrolment.central_key != checked:
            raise ProvisionError(
                f"the enrolment answer from {request.server_url} carries another central key "
                f"than the one checked ({fingerprint(checked)}); something on the path "
                "changed it. The token is now used: ask for a new one and check the network")
        return checked
    if enrolment.central_key is None:
        log.warning("the central at %s sent no signing key: documents from it are refused "
                    "until it signs them (upgrade the central)", request.server_url)
        return None
    log.warning("enrolled without a central key fingerprint: pinned the key the central sent "
                "(%s) on trust; put central_key = \"%s\" in the provisioning file or QR to "
                "check it", fingerprint(enrolment.central_key), fingerprint(enrolment.central_key))
    return enrolment.central_key


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, Mapping) else {}


def resolve_token_path(current: Mapping[str, Any], config_path: str | os.PathLike[str],
                       token_path: str | os.PathLike[str] | None = None) -> Path:
    """The one place the device token's path is decided, as an absolute path.

    The flag, else the config's ``sync.token_file``, else ``device-token`` beside the config.
    Absolute, because the kiosk service reads the config from another working directory.
    """
    if token_path is None or str(token_path) == "":
        token_path = (_table(current, "sync").get("token_file")
                      or Path(config_path).parent / TOKEN_FILE_NAME)
    return Path(os.path.abspath(Path(token_path).expanduser()))


def _check_token_file(token_path: Path, config_path: Path, current: Mapping[str, Any], *,
                      replace: bool) -> str | None:
    """None when no token is there; else whose token it is ("" when unknown).

    Refuses, before the enrolment token is spent, to replace a token without ``replace``:
    the file may belong to another kiosk, which would then be cut off the platform.
    """
    if token_path == Path(os.path.abspath(config_path)):
        raise ProvisionError(f"the token file {str(token_path)!r} is the config file; give "
                             "--token-file another path")
    if token_path.is_dir():
        raise ProvisionError(f"the token file {str(token_path)!r} is a folder; give "
                             "--token-file a file path")
    if not token_path.exists():
        return None
    owner = ""
    named = _table(current, "sync").get("token_file")
    device_id = _table(current, "device").get("id")
    if named and device_id and resolve_token_path(current, config_path) == token_path:
        owner = f"device {device_id!r} of {str(config_path)!r}"
    if not replace:
        whose = f" ({owner})" if owner else (
            f" that {str(config_path)!r} does not name: perhaps another kiosk's")
        raise ProvisionError(
            f"the token file {str(token_path)!r} already holds a device token{whose}; "
            "replacing it cuts that device off the central platform. Re-provisioning this "
            "kiosk: add --replace-token. Another kiosk: give --token-file a path of its own. "
            "Nothing was changed and the enrolment token was not used"
        )
    return owner


def _store_path(current: Mapping[str, Any]) -> Path:
    path = _table(current, "store").get("path")
    return Path(path) if isinstance(path, str) and path else Path(config_mod.StoreConfig.path)


def _previous_device_ids(current: Mapping[str, Any], store: Path) -> list[str]:
    """The ids the backlog carries: the config's device id, then those of undelivered rows."""
    ids: list[str] = []
    device_id = _table(current, "device").get("id")
    if isinstance(device_id, str) and device_id:
        ids.append(device_id)
    if store.is_file():  # never create a queue database from here
        from offline_queue.outbox import Outbox

        try:
            with Outbox(store) as outbox:
                ids.extend(outbox.undelivered_device_ids())
        except StoreError as e:
            log.warning("cannot read the device ids of the backlog in %s (%s); the central "
                        "links only %s", store, e, ids or "no previous id")
    unique = [i for i in dict.fromkeys(ids) if _plain_id(i)]
    if len(unique) > MAX_PREVIOUS_IDS:
        log.warning("the backlog carries %d device ids; the central links the first %d",
                    len(unique), MAX_PREVIOUS_IDS)
    return unique[:MAX_PREVIOUS_IDS]


def _plain_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_DEVICE_ID and value.isprintable()


def _keep_sealing_key(store: Path, value: object, pin: bytes | None, *,
                      owner: tuple[int, int] | None) -> str | None:
    """Keep the central's sealing key from the enrolment answer in the queue, so the very
    first check-in is sealed (without it, identities wait in RAM until the first sync,
    and a restart before it loses them: docs/privacy.md).  Only a key the pinned signing
    key signed; anything else is left to the sync worker, which asks again.  Returns its id."""
    if value is None or pin is None:
        return None
    from offline_queue.outbox import Outbox
    from offline_queue.sealing import SealError, read_signed_key, verify_signed_key
    from offline_queue.store import SEALING_KEY_META

    try:
        key, signer, signature = read_signed_key(value)
        if signer != fingerprint(pin):
            raise SealError(f"it is signed by {signer[:16]}…, not by the pinned key "
                            f"{fingerprint(pin)[:16]}…")
        verify_signed_key(pin, key, signature)
        if not store.parent.is_dir():
            # Not made here: systemd makes the kiosk's state directory, owned by its user.
            raise SealError(f"the queue's folder {str(store.parent)!r} does not exist yet")
        with Outbox(store) as outbox:
            outbox.set_meta(**{SEALING_KEY_META: json.dumps(key.as_json(), sort_keys=True)})
    except (SealError, StoreError, OSError) as e:
        log.warning("enrolled, but the central's sealing key was not kept (%s); the kiosk "
                    "asks for it at its first sync", e)
        return None
    finally:
        _give_to_owner(store, owner)
    log.info("identities will be sealed to the central's key %s", key.id)
    return key.id


def _give_to_owner(store: Path, owner: tuple[int, int] | None) -> None:
    """Root made or touched the queue: the kiosk user must still open it."""
    if owner is None:
        return
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            path = Path(f"{store}{suffix}")
            if path.stat().st_uid == 0:
                os.chown(path, *owner)


def _requeue_dead_letter(store: Path, *, owner: tuple[int, int] | None) -> int:
    """After a re-enrolment, dead-lettered rows go back to pending (best effort, logged)."""
    if not store.is_file():
        return 0
    from offline_queue.outbox import Outbox

    try:
        with Outbox(store) as outbox:
            count = outbox.requeue_dead_letter()
    except StoreError as e:
        log.warning("enrolled, but the dead-lettered check-ins in %s could not be put back "
                    "in the queue (%s); they stay dead-lettered in the database", store, e)
        return 0
    finally:
        _give_to_owner(store, owner)
    if count:
        log.info("put %d dead-lettered check-ins back in the queue for the new enrolment",
                 count)
    return count


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
    token_path: str | os.PathLike[str] | None = None,
    replace_token: bool = False,
    owner: str | None = None,
    timeout: float = 10.0,
    force: bool = False,
) -> Result | None:
    """Validate and import one provisioning file; returns the result (also saved for the
    screen and ``status``), or None when this exact file was imported before.

    This is the technician's explicit import (``provision --file``): no confirmation on
    screen, but an existing device token is replaced only with ``replace_token``.  A file
    is remembered by its SHA-256, so media left in the kiosk are not re-imported at every
    boot (and read-only media work: nothing is written to them).
    """
    path = Path(path)
    state = Path(state_dir)
    digest = _digest(path)
    if digest in _seen(state) and not force:
        log.info("provisioning file %s was imported before; skipping", path)
        return None
    source = f"file {path}"
    try:
        result = provision(parse_file(path), config_path=config_path, token_path=token_path,
                           replace_token=replace_token, owner=owner, timeout=timeout,
                           source=source)
    except ProvisionError as e:
        result = Result(ok=False, message=str(e), source=source,
                        at=datetime.now(UTC).isoformat(timespec="seconds"))
        save_result(result, state)
        raise
    save_result(result, state)
    _remember(state, digest, _owner_ids(owner))
    pending = pending_change(state)
    if pending is not None and pending.digest == digest:  # the same file, imported by hand
        _drop_pending(state)
    return result


def import_from_media(*, globs: Iterable[str] = MEDIA_GLOBS, **kwargs: Any) -> list[Result]:
    """Every new provisioning file on mounted media (the boot-time and USB unit).

    An unenrolled kiosk is provisioned at once (the technician's first set-up).  An enrolled
    one is never re-pointed by a stick alone: the file is checked, then staged for the
    officer's confirmation on the kiosk screen (:func:`pending_change`), and the result says
    ``pending``.  ``kwargs`` are :func:`import_file`'s.
    """
    results = []
    for path in find_files(globs):
        if is_enrolled(kwargs.get("config_path", config_mod.DEFAULT_PATH),
                       kwargs.get("token_path")):
            result = stage_file(path, **{k: v for k, v in kwargs.items()
                                         if k in ("config_path", "state_dir", "token_path",
                                                  "owner")})
        else:
            result = import_file(path, **kwargs)
        if result is not None:
            results.append(result)
    return results


def is_enrolled(config_path: str | os.PathLike[str] = config_mod.DEFAULT_PATH,
                token_path: str | os.PathLike[str] | None = None) -> bool:
    """The config names a device, or a device token is already there."""
    current = _read_toml(Path(config_path))
    return bool(_table(current, "device").get("id")) or \
        resolve_token_path(current, config_path, token_path).exists()


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise ProvisionError(f"provisioning file {str(path)!r} cannot be read: {e}") from e


def _seen(state: Path) -> set[str]:
    try:
        return set((state / SEEN_FILE).read_text(encoding="utf-8").split())
    except OSError:
        return set()


def _remember(state: Path, digest: str, owner: tuple[int, int] | None) -> None:
    """Note a file as done (imported, confirmed or rejected) so it is not offered again."""
    path = state / SEEN_FILE
    try:
        state.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(digest + "\n")
        if owner is not None:  # the kiosk user adds to it when the officer decides
            os.chown(path, *owner)
    except OSError as e:
        log.warning("cannot remember provisioning file %s… as done (%s); it may be offered "
                    "again", digest[:12], e)


# -- a stick's change to an enrolled kiosk: the officer confirms on screen --------------------


@dataclass(frozen=True)
class PendingChange:
    """A provisioning file staged for the officer; ``request`` holds the enrolment token."""

    request: Request
    source: str  # where the file was found
    digest: str  # its SHA-256
    token_path: str  # where the device token goes if confirmed
    staged_at: str
    current: Mapping[str, str]  # server_url, checkpoint_id, checkpoint_name, device_id

    def changes(self) -> list[tuple[str, str, str]]:
        """(setting, old, new) for what the officer is asked to confirm; "" = not set.

        A new ``checkpoint_id`` of "" means: the checkpoint the enrolment token belongs to.
        """
        r = self.request
        rows = [("server_url", self.current.get("server_url", ""), r.server_url),
                ("checkpoint_id", self.current.get("checkpoint_id", ""), r.checkpoint_id)]
        optional = [("checkpoint_name", r.checkpoint_name), ("policy_profile", r.policy_profile),
                    ("camera", r.camera), ("direction", r.direction), ("ca_bundle", r.ca_bundle),
                    ("central_key", r.central_key)]
        for name, value in optional:
            if value:
                rows.append((name, self.current.get(name, ""), value))
        for pin, number in sorted(r.pins.items()):
            rows.append((f"pins.{pin}", self.current.get(f"pins.{pin}", ""), str(number)))
        return rows

    def as_dict(self) -> dict[str, Any]:
        """Everything but the enrolment token (for logs and ``status``)."""
        return {"source": self.source, "digest": self.digest, "token_path": self.token_path,
                "staged_at": self.staged_at, "changes": self.changes()}


def _current_summary(current: Mapping[str, Any]) -> dict[str, str]:
    device, sync = _table(current, "device"), _table(current, "sync")
    out = {"server_url": sync.get("server_url", ""), "ca_bundle": sync.get("ca_bundle", ""),
           "checkpoint_id": device.get("checkpoint_id", ""),
           "checkpoint_name": device.get("checkpoint_name", ""),
           "device_id": device.get("id", ""), "direction": device.get("direction", ""),
           "policy_profile": _table(current, "policy").get("profile", ""),
           "camera": _table(current, "camera").get("spec", "")}
    try:
        out["central_key"] = fingerprint(parse_key(sync["central_key"])) \
            if sync.get("central_key") else ""
    except SignatureError:
        out["central_key"] = "(unreadable)"
    out.update({f"pins.{k}": v for k, v in _table(current, "signals").items()})
    return {k: str(v) for k, v in out.items() if v is not None}


def stage_file(
    path: str | os.PathLike[str],
    *,
    config_path: str | os.PathLike[str] = config_mod.DEFAULT_PATH,
    state_dir: str | os.PathLike[str] = STATE_DIR,
    token_path: str | os.PathLike[str] | None = None,
    owner: str | None = None,
) -> Result | None:
    """Check a file and keep it for the officer's decision; None when it was decided before.

    Nothing is sent anywhere and the config is untouched; the staged file (mode 0600, it
    holds the enrolment token) replaces an older undecided one.
    """
    path = Path(path)
    state = Path(state_dir)
    digest = _digest(path)
    if digest in _seen(state):
        log.info("provisioning file %s was decided before; skipping", path)
        return None
    pending = pending_change(state)
    if pending is not None and pending.digest == digest:
        return None  # already waiting for the officer
    source = f"file {path}"
    try:
        request = parse_file(path)
        current = _read_toml(Path(config_path))
        token = resolve_token_path(current, config_path, token_path)
        _check_token_file(token, Path(config_path), current, replace=True)
        _validate(_merged(current, request, token), Path(config_path))
    except ProvisionError as e:
        save_result(Result(ok=False, message=str(e), source=source,
                           at=datetime.now(UTC).isoformat(timespec="seconds")), state)
        raise
    staged = PendingChange(request, source, digest, str(token),
                           datetime.now(UTC).isoformat(timespec="seconds"),
                           _current_summary(current))
    data = {"request": dataclasses.asdict(request), **staged.as_dict(),
            "current": dict(staged.current)}
    data.pop("changes")
    _write_atomic(state / PENDING_FILE, json.dumps(data, ensure_ascii=False, indent=1) + "\n",
                  mode=0o600, owner=_owner_ids(owner))
    if pending is not None:
        log.info("provisioning file %s replaces the undecided %s", path, pending.source)
    log.info("provisioning file %s staged: the kiosk is enrolled, so the officer must confirm "
             "on the kiosk screen (%s)", path, _describe(staged))
    return Result(ok=True, pending=True, source=source, server_url=request.server_url,
                  checkpoint_id=request.checkpoint_id,
                  checkpoint_name=request.checkpoint_name,
                  message="waiting for the officer's confirmation on the kiosk screen",
                  config_path=str(config_path), at=staged.staged_at)


def _describe(pending: PendingChange) -> str:
    return "; ".join(f"{name} {old or '(none)'!r} -> {new or '(from the token)'!r}"
                     for name, old, new in pending.changes())


_UNREADABLE: set[str] = set()


def pending_change(state_dir: str | os.PathLike[str] = STATE_DIR) -> PendingChange | None:
    """The change a stick staged for the officer, or None (also when unreadable: logged)."""
    path = Path(state_dir) / PENDING_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        request = request_from_mapping(
            {k: v for k, v in data["request"].items() if v not in (None, "", {})},
            source="staged provisioning file")
        return PendingChange(request, str(data["source"]), str(data["digest"]),
                             str(data["token_path"]), str(data["staged_at"]),
                             {str(k): str(v) for k, v in data["current"].items()})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ProvisionError) as e:
        # The screen asks every few seconds: say it once per file, not every time.
        level = logging.DEBUG if str(path) in _UNREADABLE else logging.WARNING
        _UNREADABLE.add(str(path))
        log.log(level, "the staged provisioning change %s is unreadable (%s); ignoring it",
                path, type(e).__name__)
        return None


def confirm_pending(
    state_dir: str | os.PathLike[str] = STATE_DIR,
    *,
    config_path: str | os.PathLike[str] = config_mod.DEFAULT_PATH,
    store_path: str | os.PathLike[str] | None = None,
    timeout: float = 10.0,
    session: requests.Session | None = None,
) -> Result:
    """The officer confirmed on screen: enrol with the staged file (replacing this kiosk's
    token), log what changed, forget the staged file.  On failure it stays staged (the
    officer may try again or reject it) and ProvisionError says why."""
    state = Path(state_dir)
    pending = pending_change(state)
    if pending is None:
        raise ProvisionError("there is no staged provisioning change to confirm (it was "
                             "decided meanwhile or is unreadable)")
    source = f"{pending.source}, confirmed on screen"
    try:
        result = provision(pending.request, config_path=config_path,
                           token_path=pending.token_path, replace_token=True,
                           store_path=store_path, timeout=timeout, source=source,
                           session=session)
    except ProvisionError as e:
        save_result(Result(ok=False, message=str(e), source=source,
                           at=datetime.now(UTC).isoformat(timespec="seconds")), state)
        raise
    log.info("officer confirmed provisioning file %s: %s; now device %s at %s",
             pending.source, _describe(pending), result.device_id, result.checkpoint_id)
    save_result(result, state)
    _remember(state, pending.digest, None)
    _drop_pending(state)
    return result


def reject_pending(state_dir: str | os.PathLike[str] = STATE_DIR) -> PendingChange | None:
    """The officer rejected the staged change: nothing changes; it is not offered again."""
    state = Path(state_dir)
    pending = pending_change(state)
    if pending is None:
        _drop_pending(state)
        return None
    log.info("officer rejected provisioning file %s (%s); nothing changed", pending.source,
             _describe(pending))
    _remember(state, pending.digest, None)
    _drop_pending(state)
    save_result(Result(ok=False, source=pending.source,
                       message="rejected on the kiosk screen by the officer; nothing changed",
                       at=datetime.now(UTC).isoformat(timespec="seconds")), state)
    return pending


def _drop_pending(state: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (state / PENDING_FILE).unlink()


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
        values = {k: v for k, v in data.items() if k in Result.__dataclass_fields__}
        for key in ("previous_device_ids", "unlinked_device_ids"):  # JSON has lists
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return Result(**values)
    except (OSError, ValueError, TypeError):
        return None
