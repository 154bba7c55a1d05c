"""The central's signing key: one Ed25519 key in a file (mode 0600) and its rotations.

The key file holds the private key (PKCS#8 PEM); beside it, ``<key file>.rotations.json``
lists every rotation (each new public key signed by the key before it), public data the
kiosks fetch from ``GET /v1/keys``.  The private key is never logged: only its fingerprint.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from offline_queue import sealing
from offline_queue.clock import iso
from offline_queue.errors import StoreError
from offline_queue.sealing import Opener, SealingKey
from offline_queue.signing import (
    Rotation,
    fingerprint,
    key_text,
    public_bytes,
    sign_document,
    sign_rotation,
)

log = logging.getLogger(__name__)

KEY_FILE_ENV = "CHECKPOINT_CENTRAL_KEY_FILE"
DEFAULT_KEY_NAME = "central-signing.key"


class SealingKeys:
    """The central's X25519 sealing keys (docs/privacy.md): the current one, whose public
    half kiosks seal identities to, and every earlier one, kept to open the backlog of a
    kiosk that was offline for weeks.  Beside the signing key, in ``<key file>.sealing``
    (JSON, mode 0600)."""

    def __init__(self, keys: dict[str, tuple[X25519PrivateKey, str]], current: str,
                 path: Path | None = None) -> None:
        if current not in keys:
            raise StoreError(f"the current sealing key {current!r} is not among the keys of "
                             f"{str(path)!r}; restore the file from the backup")
        self._keys = keys
        self.current_id = current
        self.path = path
        self.opener = Opener({kid: private for kid, (private, _) in keys.items()})

    def __repr__(self) -> str:  # never a private key
        return (f"SealingKeys(current={self.current_id!r}, keys={len(self._keys)}, "
                f"path={self.path!r})")

    @classmethod
    def generate(cls, now: datetime | None = None, path: Path | None = None,
                 keys: dict[str, tuple[X25519PrivateKey, str]] | None = None) -> SealingKeys:
        private = X25519PrivateKey.generate()
        kid = sealing.key_id(sealing.raw_public(private))
        return cls({**(keys or {}), kid: (private, iso(now or datetime.now(UTC)))}, kid, path)

    @property
    def public(self) -> SealingKey:
        private, created = self._keys[self.current_id]
        return SealingKey(sealing.raw_public(private), created)

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def to_bytes(self) -> bytes:
        return json.dumps({"current": self.current_id, "keys": [
            {"key_id": kid, "created_at": created, "private": base64.b64encode(
                private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            ).decode("ascii")} for kid, (private, created) in self._keys.items()]},
            indent=1).encode() + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes, path: Path) -> SealingKeys:
        try:
            value = json.loads(data)
            keys = {}
            for entry in value["keys"]:
                private = X25519PrivateKey.from_private_bytes(base64.b64decode(entry["private"]))
                kid = sealing.key_id(sealing.raw_public(private))
                if entry.get("key_id") != kid:
                    raise ValueError(f"key {entry.get('key_id')!r} is not its private key's")
                keys[kid] = (private, str(entry["created_at"]))
            return cls(keys, str(value["current"]), path)
        except (ValueError, KeyError, TypeError) as e:
            raise StoreError(f"cannot read the central's sealing keys {str(path)!r}: "
                             f"{type(e).__name__} {e}; restore the file from the backup "
                             "(without it, identities sealed to these keys cannot be "
                             "opened)") from None


def sealing_path(signing_path: Path) -> Path:
    return signing_path.with_name(signing_path.name + ".sealing")


def load_or_create_sealing(path: Path) -> SealingKeys:
    """The sealing keys in ``path``, created (mode 0600) if the file is missing."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        keys = SealingKeys.generate(path=path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile
            return load_or_create_sealing(path)
        except OSError as e:
            raise StoreError(f"cannot create the central's sealing keys {str(path)!r}: {e}"
                             ) from None
        with os.fdopen(fd, "wb") as f:
            f.write(keys.to_bytes())
            f.flush()
            os.fsync(f.fileno())
        log.info("created the central's sealing key %s in %s", keys.current_id, path)
        return keys
    except OSError as e:
        raise StoreError(f"cannot read the central's sealing keys {str(path)!r}: {e}") from None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the central's sealing keys %s have mode %o; they should be 0600 "
                    "(chmod 600)", path, mode)
    return SealingKeys.from_bytes(data, path)


def rotate_sealing(signing_path: str | os.PathLike[str], *, now: datetime | None = None
                   ) -> SealingKeys:
    """A new current sealing key; the earlier ones are kept (they open the backlog)."""
    path = sealing_path(Path(signing_path))
    old = load_or_create_sealing(path)
    new = SealingKeys.generate(now, path, dict(old._keys))
    _write(path, new.to_bytes(), 0o600)
    log.info("rotated the central's sealing key %s: %s -> %s", path, old.current_id,
             new.current_id)
    return new


class CentralKey:
    """The key that signs documents now, the rotations that lead to it, and the sealing
    keys it vouches for."""

    def __init__(self, private: Ed25519PrivateKey, rotations: tuple[Rotation, ...] = (),
                 path: Path | None = None, sealing_keys: SealingKeys | None = None) -> None:
        self._private = private
        self.rotations = rotations
        self.path = path
        self.public = public_bytes(private)
        self.fingerprint = fingerprint(self.public)
        self.sealing = sealing_keys if sealing_keys is not None else SealingKeys.generate()

    def sealing_answer(self) -> dict[str, str]:
        """The current sealing key signed by this signing key (``sealing_key`` member)."""
        key = self.sealing.public
        return {**key.as_json(), "signed_by": self.fingerprint, "signature": base64.b64encode(
            self._private.sign(sealing.sealing_statement(key))).decode("ascii")}

    def __repr__(self) -> str:  # never the private key
        return f"CentralKey(fingerprint={self.fingerprint!r}, path={self.path!r})"

    @classmethod
    def generate(cls) -> CentralKey:
        """A key held in memory only (a test server, a demo): kiosks pin it on first use."""
        return cls(Ed25519PrivateKey.generate())

    def current(self) -> CentralKey:
        """This key (a :class:`KeyFile` answers the key its file holds now)."""
        return self

    def sign_document(self, name: str, version: int, body: bytes,
                      expires: str | None) -> dict[str, str]:
        return sign_document(self._private, name, version, body, expires)

    def keys_answer(self) -> dict[str, Any]:
        """The ``GET /v1/keys`` body: the current key and every rotation."""
        return {"public_key": key_text(self.public), "fingerprint": self.fingerprint,
                "rotations": [r.as_json() for r in self.rotations],
                "sealing_key": self.sealing_answer()}


def default_path(db_target: str | os.PathLike[str]) -> Path:
    """Beside a SQLite database; in the working directory for a PostgreSQL URL."""
    text = os.fspath(db_target)
    if text.startswith(("postgresql://", "postgres://")):
        return Path(DEFAULT_KEY_NAME)
    return Path(text).with_name(Path(text).name + ".signing-key")


def rotations_path(path: Path) -> Path:
    return path.with_name(path.name + ".rotations.json")


def _next_path(path: Path) -> Path:
    return path.with_name(path.name + ".next")


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write beside the target with ``mode`` from the start, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _pem(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def _read_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise StoreError(f"cannot read the central's signing key {str(path)!r}: "
                         f"{type(e).__name__}; restore it from the backup, or move it away "
                         "and rotate (kiosks refuse documents from a key they do not know)"
                         ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise StoreError(f"the central's signing key {str(path)!r} is not an Ed25519 key")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the central's signing key %s has mode %o; it should be 0600 (chmod 600)",
                    path, mode)
    return key


def _read_rotations(path: Path) -> tuple[Rotation, ...]:
    target = rotations_path(path)
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ()
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot read the key rotations {str(target)!r}: {e}") from None
    return tuple(Rotation.from_json(r) for r in data.get("rotations", []))


def load_or_create(path: str | os.PathLike[str]) -> CentralKey:
    """The key in ``path``, created (mode 0600) if there is none; a rotation cut short by
    a crash is finished or forgotten."""
    path = Path(path)
    rotations = _read_rotations(path)
    pending = _next_path(path)
    if pending.exists():
        nxt = _read_private(pending)
        if rotations and rotations[-1].public_key == public_bytes(nxt):
            os.replace(pending, path)  # the rotation was published: finish it
        else:
            pending.unlink()  # never published: as if it had not started
    if not path.exists():
        private = Ed25519PrivateKey.generate()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile
            return load_or_create(path)
        except OSError as e:
            raise StoreError(f"cannot create the central's signing key {str(path)!r}: {e}; "
                             "check the folder (--key-file)") from None
        with os.fdopen(fd, "wb") as f:
            f.write(_pem(private))
            f.flush()
            os.fsync(f.fileno())
        key = CentralKey(private, rotations, path, load_or_create_sealing(sealing_path(path)))
        log.info("created the central's signing key %s, fingerprint %s", path, key.fingerprint)
        return key
    private = _read_private(path)
    key = CentralKey(private, rotations, path, load_or_create_sealing(sealing_path(path)))
    if rotations and rotations[-1].public_key != key.public:
        raise StoreError(f"the signing key {str(path)!r} (fingerprint {key.fingerprint}) is "
                         f"not the last key of {str(rotations_path(path))!r}; restore the "
                         "matching pair from the backup")
    return key


def rotate(path: str | os.PathLike[str], *, now: datetime | None = None) -> CentralKey:
    """Replace the key in ``path`` by a new one signed by it; kiosks follow the rotation."""
    path = Path(path)
    old = load_or_create(path)
    new = Ed25519PrivateKey.generate()
    rotation = sign_rotation(old._private, public_bytes(new), iso(now or datetime.now(UTC)))
    rotations = (*old.rotations, rotation)
    # The new private key first, then the published chain, then the switch: a crash at any
    # point leaves either the old key in force or a rotation load_or_create() finishes.
    _write(_next_path(path), _pem(new), 0o600)
    _write(rotations_path(path), json.dumps(
        {"rotations": [r.as_json() for r in rotations]}, indent=1).encode() + b"\n", 0o644)
    os.replace(_next_path(path), path)
    key = CentralKey(new, rotations, path, old.sealing)
    log.info("rotated the central's signing key %s: %s -> %s", path, old.fingerprint,
             key.fingerprint)
    return key


class KeyFile:
    """The key in a file, read again when the file changes: ``central rotate-key`` takes
    effect in a running central within a second, without a restart."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._key = load_or_create(self.path)
        self._stamp = self._stat()
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.check_every = 1.0  # seconds between looks at the file

    def _stat(self) -> tuple[int, int, int, int] | None:
        """The signing key file's and the sealing keys file's identity and time."""
        try:
            st, sealed = self.path.stat(), sealing_path(self.path).stat()
        except OSError:
            return None
        return st.st_ino, st.st_mtime_ns, sealed.st_ino, sealed.st_mtime_ns

    def current(self) -> CentralKey:
        now = time.monotonic()
        if now - self._checked < self.check_every:
            return self._key
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp is not None and stamp != self._stamp:
                try:
                    self._key = load_or_create(self.path)
                    self._stamp = stamp
                    log.info("signing with key %s from %s", self._key.fingerprint, self.path)
                except StoreError as e:  # keep signing with the key in memory
                    log.error("cannot reload the signing key: %s", e)
        return self._key

    @property
    def fingerprint(self) -> str:
        return self.current().fingerprint
