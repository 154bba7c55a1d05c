"""Delivering the queue to the central platform and fetching what the decision needs.

At-least-once: rows are marked in flight, posted, then marked with the server's answer;
a crash in between sends them again and the server answers "duplicate".  The worker
never gives up: it backs off (capped exponential, full jitter, ``Retry-After``) and
waits a random moment after boot and after the link returns, so a province's kiosks
do not all call at once when the power comes back.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from kiosk import __version__
from kiosk.errors import SyncError
from offline_queue.clock import Clock, iso
from offline_queue.documents import DOCUMENT_NAMES, Document, validate
from offline_queue.outbox import Outbox
from offline_queue.serverurl import check_server_url

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 3600.0


class TransientSyncError(SyncError):
    """Network trouble, a timeout, a 5xx or 429: safe to retry later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthSyncError(SyncError):
    """The server refused the device token (401/403): the kiosk must be re-provisioned."""


class BatchRejectedError(SyncError):
    """The server refused a whole request as invalid (a 4xx other than 401/403/408/429)."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), MAX_RETRY_AFTER_S)


def full_jitter(failures: int, *, base: float, cap: float, rng: random.Random) -> float:
    """AWS "full jitter": uniform in [0, min(cap, base * 2**failures))."""
    return rng.uniform(0, min(cap, base * 2 ** min(failures, 30)))


class SyncClient:
    """The HTTP side, over one configured ``requests.Session``; every call has a timeout."""

    def __init__(
        self,
        server_url: str,
        token: str | None,
        *,
        ca_bundle: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        session: requests.Session | None = None,
    ) -> None:
        server_url = check_server_url(server_url, "server_url")  # https; http only to here
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ValueError(f"ca_bundle {ca_bundle!r} is not a file; give a PEM CA bundle path")
        self.base = server_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or requests.Session()
        # TLS verification is always on; a private CA is added, never verification removed.
        self.session.verify = ca_bundle or True
        self.session.headers["User-Agent"] = f"checkpoint-kiosk/{__version__}"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def _request(self, method: str, path: str, **kw: Any) -> requests.Response:
        url = self.base + path
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kw)
            response.content  # noqa: B018 - read the whole body now: a cut body is transient
        except requests.exceptions.SSLError as e:
            # A stale clock shows up as "certificate is not yet valid": say so, retry later.
            raise TransientSyncError(f"TLS error talking to {url}: {e}") from e
        except requests.RequestException as e:
            raise TransientSyncError(f"{method} {url} failed: {e.__class__.__name__}: {e}") from e
        status = response.status_code
        if status in (401, 403):
            raise AuthSyncError(
                f"{method} {url}: {status} {_error_text(response)}; re-provision the kiosk"
            )
        if status == 429 or status == 408 or status >= 500:
            raise TransientSyncError(
                f"{method} {url}: {status} {_error_text(response)}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        if 400 <= status < 500 and status != 404:
            raise BatchRejectedError(f"{method} {url}: {status} {_error_text(response)}")
        return response

    def _json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as e:
            raise TransientSyncError(f"unreadable answer from {response.url}: {e}") from e

    def health(self) -> None:
        self._request("GET", "/v1/health")

    def post_checkins(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        response = self._request("POST", "/v1/checkins", json={"checkins": items})
        body = self._json(response)
        results = body.get("results") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(results, list):
            raise TransientSyncError(f"unexpected answer {response.status_code} to a check-in post")
        return results

    def get_document(self, name: str, etag: str | None) -> requests.Response:
        headers = {"If-None-Match": f'"{etag}"'} if etag else {}
        return self._request("GET", f"/v1/documents/{name}", headers=headers)


def _error_text(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:200]
    except (ValueError, AttributeError):
        return response.reason or ""


_STATE_OF = {
    "accepted": "sent", "duplicate": "sent", "conflict": "conflict", "rejected": "rejected",
}


class Syncer:
    """One push or pull pass, without threads or waiting (the worker and ``sync --once``)."""

    def __init__(
        self, outbox: Outbox, client: SyncClient, *, clock: Clock, batch_size: int = 500
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError(f"batch_size is {batch_size!r}; use 1 to 1000")
        self.outbox = outbox
        self.client = client
        self.clock = clock
        self.batch_size = batch_size

    def push(self, stop: threading.Event | None = None,
             on_batch: Callable[[], None] = lambda: None) -> int:
        """Send pending rows in creation order until none is left; returns rows delivered.

        ``on_batch`` runs before each batch: the worker's heartbeat, so that draining a long
        backlog over a slow link is not mistaken for a hung thread by the watchdog.
        """
        self.outbox.correct_times(self.clock)
        delivered = 0
        while not (stop and stop.is_set()):
            on_batch()
            items = self.outbox.claim(self.batch_size)
            if not items:
                break
            delivered += self._send(items)
        return delivered

    def _send(self, items: list[dict[str, Any]]) -> int:
        ids = [i["id"] for i in items]
        try:
            results = self.client.post_checkins(items)
        except BatchRejectedError as e:
            if len(items) == 1:
                self.outbox.mark_results({ids[0]: ("rejected", str(e))}, self.clock.now())
                log.warning("check-in %s moved to dead letter: %s", ids[0], e)
                return 0
            # Find the bad row: send the batch one by one (rare, so simple beats clever).
            self.outbox.release(ids, str(e))
            return sum(self._send(one) for i in ids if (one := self.outbox.claim_ids([i])))
        except SyncError as e:
            self.outbox.release(ids, str(e))
            raise
        marks: dict[str, tuple[str, str | None]] = {}
        for result in results:
            if not isinstance(result, dict) or result.get("id") not in ids:
                continue
            state = _STATE_OF.get(result.get("status"))
            if state is not None:
                error = "; ".join(result.get("errors") or []) or None
                marks[result["id"]] = (state, error)
        self.outbox.mark_results(marks, self.clock.now())
        missing = [i for i in ids if i not in marks]
        if missing:
            self.outbox.release(missing, "no answer for this id in the server's reply")
        for i, (state, error) in marks.items():
            if state != "sent":
                log.warning("check-in %s is %s: %s", i, state, error)
        return sum(1 for state, _ in marks.values() if state == "sent")

    def pull(self) -> list[str]:
        """Fetch changed documents and apply them together; returns names that changed."""
        now = self.clock.now()
        changed: list[Document] = []
        unchanged: list[str] = []
        for name in DOCUMENT_NAMES:
            current = self.outbox.document(name)
            response = self.client.get_document(name, current.etag if current else None)
            if response.status_code == 304:
                unchanged.append(name)
                continue
            if response.status_code == 404:
                continue
            body = response.content
            try:
                validate(name, body)
            except ValueError as e:
                raise BatchRejectedError(f"server sent an unusable {name}: {e}") from e
            expires = response.headers.get("Expires")
            try:
                expires_at = parsedate_to_datetime(expires) if expires else None
            except (TypeError, ValueError):
                expires_at = None
            etag = (response.headers.get("ETag") or "").strip('"') or None
            changed.append(Document(name, body, etag, now, expires_at))
        self.outbox.apply_documents(changed, unchanged, now)
        if changed:
            log.info("applied documents: %s", ", ".join(d.name for d in changed))
        return [d.name for d in changed]


@dataclass(frozen=True)
class SyncStatus:
    """What the screen and systemd STATUS= show about delivery."""

    online: bool
    backlog: int
    dead_letter: int
    last_success: datetime | None
    last_error: str | None
    reprovision_needed: bool
    in_flight: int = 0
    conflicts: int = 0


class SyncWorker:
    """Background delivery thread; ``close()`` stops and joins it promptly."""

    def __init__(
        self,
        *,
        db_path: str | os.PathLike[str],
        server_url: str,
        token: str | None,
        ca_bundle: str | None = None,
        on_status: Callable[[SyncStatus], None] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        batch_size: int = 500,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        boot_jitter: float = 30.0,
        link_jitter: float = 10.0,
        idle_interval: float = 60.0,
        documents_interval: float = 900.0,
        retention_days: int = 30,
        clock: Clock | None = None,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self._client = SyncClient(
            server_url, token, ca_bundle=ca_bundle, connect_timeout=connect_timeout,
            read_timeout=read_timeout, session=session,
        )
        self._outbox = Outbox(db_path)
        self._syncer = Syncer(self._outbox, self._client, clock=self.clock, batch_size=batch_size)
        self._on_status = on_status
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.boot_jitter, self.link_jitter = boot_jitter, link_jitter
        self.idle_interval, self.documents_interval = idle_interval, documents_interval
        self.retention_days = retention_days
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = time.monotonic()
        self._online = False
        self._failures = 0
        self._reprovision = False
        self._last_success: datetime | None = None
        self._last_error: str | None = None
        self._persisted = False  # no success written to the database since start
        self._closed = False

    def __enter__(self) -> SyncWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _beat(self) -> None:
        self._heartbeat = time.monotonic()

    @property
    def heartbeat(self) -> float:
        return self._heartbeat

    def start(self) -> None:
        if self._thread is not None:
            return
        self._outbox.reset_in_flight()
        self._thread = threading.Thread(target=self._loop, name="sync", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            # A request in progress ends within its timeouts at worst.
            self._thread.join(timeout=sum(self._client.timeout) + 5)
            if self._thread.is_alive():
                log.error("sync worker did not stop; a request is hanging past its timeout")
        self._client.close()
        self._outbox.close()

    def status(self) -> SyncStatus:
        counts = self._outbox.counts()
        return SyncStatus(
            online=self._online,
            backlog=counts["pending"] + counts["in_flight"],
            dead_letter=counts["rejected"] + counts["conflict"],
            last_success=self._last_success,
            last_error=self._last_error,
            reprovision_needed=self._reprovision,
            in_flight=counts["in_flight"],
            conflicts=counts["conflict"],
        )

    def _publish(self) -> None:
        if self._on_status is not None:
            try:
                self._on_status(self.status())
            except Exception:  # the UI's problem must not stop delivery
                log.exception("on_status callback failed")

    def _sleep(self, seconds: float, *, wake_on_poke: bool) -> None:
        """Wait, returning early on close (and on poke when idle)."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # Short turns keep the heartbeat fresh for the watchdog while waiting long.
            if wake_on_poke:
                if self._wake.wait(min(left, 5.0)):
                    self._wake.clear()
                    return
            else:
                self._stop.wait(min(left, 5.0))

    def _loop(self) -> None:
        self._sleep(self._rng.uniform(0, self.boot_jitter), wake_on_poke=False)
        next_documents = 0.0
        next_purge = 0.0
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            if self._reprovision:
                self._sleep(self.idle_interval, wake_on_poke=False)
                continue
            try:
                if self._failures:
                    # The link may be back: a cheap probe, then a random pause before the
                    # backlog goes out, so kiosks that lost the link together spread out.
                    self._client.health()
                    self._sleep(self._rng.uniform(0, self.link_jitter), wake_on_poke=False)
                delivered = self._syncer.push(self._stop, on_batch=self._beat)
                if time.monotonic() >= next_documents:
                    self._syncer.pull()
                    next_documents = time.monotonic() + self.documents_interval
                if time.monotonic() >= next_purge:
                    self._outbox.purge(retention_days=self.retention_days, now=self.clock.now())
                    next_purge = time.monotonic() + 3600
                self._succeeded(delivered)
                self._sleep(self.idle_interval, wake_on_poke=True)
            except AuthSyncError as e:
                self._reprovision, self._online = True, True
                self._record_error(e)
                log.error("sync stopped: %s", e)
                self._publish()
            except SyncError as e:
                # Storage errors are SyncError's siblings (StoreError), handled below.
                self._failures += 1
                self._online = False
                self._record_error(e)
                delay = full_jitter(
                    self._failures, base=self.backoff_base, cap=self.backoff_cap, rng=self._rng
                )
                retry_after = getattr(e, "retry_after", None)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                log.info("sync failed (%d in a row), retrying in %.1f s: %s",
                         self._failures, delay, e)
                self._publish()
                self._sleep(delay, wake_on_poke=False)
            except Exception as e:
                self._failures += 1
                self._record_error(e)
                log.exception("unexpected error in the sync worker")
                self._publish()
                self._sleep(min(self.backoff_cap, 60.0), wake_on_poke=False)

    def _succeeded(self, delivered: int) -> None:
        self._failures = 0
        self._online = True
        self._last_success = self.clock.now()
        # The first success after start also counts: the database may still hold an old
        # error and the 401 flag from before a restart with a new device token.
        changed = self._last_error is not None or not self._persisted
        self._last_error = None
        # Bound SD-card writes: persist only when something happened.
        if delivered or changed:
            self._persisted = True
            self._outbox.set_meta(last_success=iso(self._last_success), last_error=None,
                                  reprovision_needed="0")
        self._publish()

    def _record_error(self, error: BaseException) -> None:
        message = str(error)
        if message != self._last_error:
            self._last_error = message
            try:
                self._outbox.set_meta(
                    last_error=message, reprovision_needed="1" if self._reprovision else "0"
                )
            except Exception:
                log.exception("cannot record the sync error in the queue database")


@dataclass(frozen=True)
class SyncOnceResult:
    delivered: int
    documents_changed: list[str]
    remaining: int
    dead_letter: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None and self.remaining == 0

    def as_json(self) -> str:
        return json.dumps(
            {"ok": self.ok, "delivered": self.delivered, "documents_changed":
             self.documents_changed, "remaining": self.remaining,
             "dead_letter": self.dead_letter, "error": self.error}
        )


def sync_once(
    *,
    db_path: str | os.PathLike[str],
    server_url: str,
    token: str | None,
    ca_bundle: str | None = None,
    batch_size: int = 500,
    clock: Clock | None = None,
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
) -> SyncOnceResult:
    """Push everything pending and pull the documents once (``checkpoint-kiosk sync --once``)."""
    clock = clock or Clock()
    client = SyncClient(server_url, token, ca_bundle=ca_bundle,
                        connect_timeout=connect_timeout, read_timeout=read_timeout)
    with Outbox(db_path) as outbox:
        try:
            outbox.reset_in_flight()
            before = outbox.counts()
            syncer = Syncer(outbox, client, clock=clock, batch_size=batch_size)
            error = None
            refused = False
            delivered, changed = 0, []
            try:
                delivered = syncer.push()
                changed = syncer.pull()
            except SyncError as e:
                error = str(e)
                refused = isinstance(e, AuthSyncError)
            # What `status` and `queue stats` show, as the worker keeps it: a technician's
            # successful round after re-provisioning clears the old error and the 401 flag.
            if error is None:
                outbox.set_meta(last_success=iso(clock.now()), last_error=None,
                                reprovision_needed="0")
            else:
                outbox.set_meta(last_error=error, **({"reprovision_needed": "1"} if refused
                                                     else {}))
            after = outbox.counts()
        finally:
            client.close()
    dead = after["rejected"] + after["conflict"]
    new_dead = dead - before["rejected"] - before["conflict"]
    if error is None and new_dead:
        error = f"{new_dead} check-in(s) refused by the server (dead letter)"
    return SyncOnceResult(delivered, changed, after["pending"] + after["in_flight"], dead, error)
