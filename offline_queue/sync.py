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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests

from offline_queue import wire
from offline_queue.backoff import Backoff
from offline_queue.clock import Clock, iso
from offline_queue.deadline import Deadline, DeadlineAdapter
from offline_queue.documents import DOCUMENT_NAMES, Document, sha256, validate
from offline_queue.errors import StoreError, SyncError
from offline_queue.outbox import Outbox
from offline_queue.pinned import PinnedKey
from offline_queue.sealing import SealError, read_signed_key, verify_signed_key
from offline_queue.serverurl import check_server_url
from offline_queue.signing import Envelope, SignatureError, read_envelope, verify_document
from offline_queue.store import SEALING_KEY_META
from offline_queue.untrusted import escaped

log = logging.getLogger(__name__)

# The caller names itself (the kiosk passes "checkpoint-kiosk/<version>").
USER_AGENT = "offline-queue"
MAX_RETRY_AFTER_S = 3600.0


# A body arriving at least this fast (bytes/s) may take longer than the total deadline,
# up to MAX_REQUEST_S; it is read in BODY_CHUNK pieces, each one a heartbeat.
MIN_RATE = 2048.0
MAX_REQUEST_S = 600.0
BODY_CHUNK = 16384
# External text (a server's or a proxy's words) is capped at this many characters.
MAX_EXTERNAL_TEXT = 300
# Date has whole seconds: the server's true time lies anywhere in the second it names.
DATE_RESOLUTION_S = 1.0


def clean(text: object, limit: int = MAX_EXTERNAL_TEXT) -> str:
    """External text made safe for a log line, the database and the screen: newlines,
    escapes, other control and bidi characters escaped (:mod:`offline_queue.untrusted`);
    length capped."""
    return escaped(str(text), limit=limit)


def quoted(text: object, limit: int = MAX_EXTERNAL_TEXT) -> str:
    """:func:`clean` text in quotes, so where the outside words start and end is plain."""
    return f"'{clean(text, limit)}'"


class TransientSyncError(SyncError):
    """Network trouble, a timeout, a 5xx or 429: safe to retry later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthSyncError(SyncError):
    """401/403 for a whole request: the token was refused, by the server or by something
    on the path.  The worker keeps asking slowly (the token file may be fixed, the proxy
    may recover); rows stay pending."""


class BatchRejectedError(TransientSyncError):
    """A whole request refused with a 4xx other than 401/403/404/408/429.

    Often a middlebox (a body-size limit, a filtering proxy), not the server's verdict on
    the rows, so it is transient: the rows stay pending and the worker backs off.  Only
    the server's per-row ``rejected`` sends a row to the dead letter.
    """


@dataclass(frozen=True)
class TimeSample:
    """The central's clock seen in one exchange, and our clocks at its midpoint."""

    server_time: datetime
    wall: datetime  # our wall clock at the midpoint of the request
    mono_ns: int  # our monotonic clock at the midpoint
    uncertainty_s: float
    source: str  # 'server_time' or 'Date'


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


class SyncClient:
    """The HTTP side, over one configured ``requests.Session``.

    Every call has a connect and read timeout and a total deadline (``total_timeout``,
    default connect + read): a slow drip never holds the sync thread longer.
    """

    def __init__(
        self,
        server_url: str,
        token: str | None,
        *,
        ca_bundle: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        total_timeout: float | None = None,
        session: requests.Session | None = None,
        clock: Clock | None = None,
        before_request: Callable[[], None] | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        server_url = check_server_url(server_url, "server_url")  # https; http only to here
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ValueError(f"ca_bundle {ca_bundle!r} is not a file; give a PEM CA bundle path")
        if total_timeout is not None and total_timeout <= 0:
            raise ValueError(f"total_timeout is {total_timeout!r}; use seconds > 0")
        self.base = server_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.total_timeout = total_timeout or connect_timeout + read_timeout
        self.clock = clock or Clock()
        self.before_request = before_request or (lambda: None)
        self.session = session or requests.Session()
        for prefix in ("https://", "http://"):
            self.session.mount(prefix, DeadlineAdapter())
        # TLS verification is always on; a private CA is added, never verification removed.
        self.session.verify = ca_bundle or True
        self.session.headers["User-Agent"] = user_agent
        self.set_token(token)
        self.time_sample: TimeSample | None = None  # of the last successful exchange
        self._active: Deadline | None = None
        self._aborted = False

    def set_token(self, token: str | None) -> None:
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        else:
            self.session.headers.pop("Authorization", None)

    def abort(self) -> None:
        """End the request in progress now and refuse new ones (from another thread)."""
        self._aborted = True
        active = self._active
        if active is not None:
            active.fire()

    def close(self) -> None:
        self.abort()
        self.session.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self, method: str, path: str, *, time_in_body: bool = False, **kw: Any
    ) -> requests.Response:
        url = self.base + path
        if self._aborted:
            raise TransientSyncError(f"{method} {url} not sent: sync is stopping")
        self.before_request()
        deadline = Deadline(self.total_timeout, max_seconds=MAX_REQUEST_S)
        self._active = deadline
        wall0, mono0 = self.clock.now(), self.clock.monotonic_ns()
        try:
            with deadline:
                if self._aborted:  # abort() ran between the check above and here
                    deadline.fire()
                response = self.session.request(method, url, timeout=self.timeout,
                                                stream=True, **kw)
                try:
                    self._read_body(response, deadline)
                finally:
                    response.close()
        except requests.RequestException as e:
            if deadline.fired:
                raise self._late(method, url) from e
            if isinstance(e, requests.exceptions.SSLError):
                # A stale clock shows up as "certificate is not yet valid": say so, retry.
                raise TransientSyncError(f"TLS error talking to {url}: {clean(e)}") from e
            raise TransientSyncError(
                f"{method} {url} failed: {e.__class__.__name__}: {clean(e)}"
            ) from e
        finally:
            self._active = None
        if deadline.fired:  # the answer may look complete when the cut fell at its end
            raise self._late(method, url)
        mono1 = self.clock.monotonic_ns()
        refused = _refusal(method, url, response)
        if refused is not None:
            raise refused
        status = response.status_code
        if 200 <= status < 300 or status == 304:
            sample = _time_sample(response, wall0, mono0, mono1, time_in_body)
            if sample is not None:
                self.time_sample = sample
        return response

    def _read_body(self, response: requests.Response, deadline: Deadline) -> None:
        """Read the whole body now (a cut one is transient), beating as it arrives.

        A body arriving at MIN_RATE or faster earns its time beyond the deadline (a big
        watchlist over a slow border link), up to MAX_REQUEST_S; a drip earns nothing.
        """
        chunks, received = [], 0
        for chunk in response.iter_content(BODY_CHUNK):
            chunks.append(chunk)
            received += len(chunk)
            deadline.allow(received / MIN_RATE)
            self.before_request()
        response._content = b"".join(chunks)  # what requests' own .content keeps

    def _late(self, method: str, url: str) -> TransientSyncError:
        if self._aborted:
            return TransientSyncError(f"{method} {url} cut off: sync is stopping")
        return TransientSyncError(
            f"{method} {url}: no complete answer within the {self.total_timeout:g} s "
            "deadline (a slow or stalled link); retrying later"
        )

    def _json(self, response: requests.Response) -> object:
        """The answer's JSON, not yet trusted: the caller checks its shape."""
        try:
            return response.json()
        except ValueError as e:
            raise TransientSyncError(
                f"unreadable answer from {quoted(response.url)}: {clean(e)}") from e

    def health(self) -> None:
        self._request("GET", "/v1/health", time_in_body=True)

    def post_checkins(self, items: list[wire.CheckIn], *,
                      backlog: int | None = None) -> list[object]:
        """Post a batch; the central's per-row answers (each still to be checked:
        ``_verdicts``).  ``backlog``: the rows this kiosk holds besides this batch (the
        X-Kiosk-Backlog header: the central's fleet page shows which kiosks are behind)."""
        headers = {} if backlog is None else {wire.BACKLOG_HEADER: str(max(0, backlog))}
        response = self._request("POST", "/v1/checkins", json={"checkins": items},
                                 headers=headers, time_in_body=True)
        body = self._json(response)
        results = body.get("results") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(results, list):
            raise TransientSyncError(f"unexpected answer {response.status_code} to a check-in post")
        return results

    def get_document(self, name: str, etag: str | None) -> requests.Response:
        headers = {"If-None-Match": f'"{etag}"'} if etag else {}
        return self._request("GET", f"/v1/documents/{name}", headers=headers)

    def get_keys(self) -> object:
        """The central's signing key and its rotations (``GET /v1/keys``), as parsed JSON
        (``signing.read_keys`` checks it)."""
        response = self._request("GET", "/v1/keys")
        if response.status_code != 200:
            raise SignatureError(f"the central answered {response.status_code} for its keys; "
                                 "a document from an unknown key is refused")
        try:
            return response.json()
        except ValueError:
            raise SignatureError("the central's key list is not JSON; refused") from None


def _verdicts(results: list[object], ids: list[str]
              ) -> tuple[dict[str, tuple[str, str | None]], dict[str, str]]:
    """The central's per-row answers to a batch of ``ids``: (id -> (state, error)) for the
    rows it decided, (id -> why) for the rows this device token may not deliver."""
    marks: dict[str, tuple[str, str | None]] = {}
    forbidden: dict[str, str] = {}
    for result in results:
        if not isinstance(result, dict) or result.get("id") not in ids:
            continue
        status = result.get("status")
        errors = result.get("errors")
        text = "; ".join(map(str, errors)) if isinstance(errors, list) else str(errors or "")
        if status == "forbidden":
            forbidden[result["id"]] = clean(
                f"forbidden for this device token: {text or 'no reason given'}; "
                "re-provision the kiosk so the central links its earlier device id")
            continue
        # A status that is not text (a broken central) is no verdict, like an unknown word.
        state = _STATE_OF.get(status) if isinstance(status, str) else None
        if state is not None:
            marks[result["id"]] = (state, clean(text) or None)
    return marks, forbidden


def _refusal(method: str, url: str, response: requests.Response) -> SyncError | None:
    """The error an answer's status means (None for a success, a 304 or a 404, which the
    caller reads: a document not published yet)."""
    status = response.status_code
    if status in (401, 403):
        return AuthSyncError(
            f"{method} {url}: {status} {quoted(_error_text(response))}; the device token "
            "was refused: re-provision the kiosk, or fix the token file or the proxy "
            "(sync keeps asking every few minutes)"
        )
    if status == 429 or status == 408 or status >= 500:
        return TransientSyncError(
            f"{method} {url}: {status} {quoted(_error_text(response))}",
            parse_retry_after(response.headers.get("Retry-After")),
        )
    if 400 <= status < 500 and status != 404:
        return BatchRejectedError(
            f"{method} {url}: {status} {quoted(_error_text(response))}; the rows stay "
            "pending (a whole request refused is retried, never dead-lettered)"
        )
    return None


def _error_text(response: requests.Response) -> str:
    try:
        return str(response.json().get("error", ""))[:MAX_EXTERNAL_TEXT]
    except (ValueError, AttributeError):
        return response.reason or ""


# A central answer dated outside these years is not a clock to correct ours by.
_SANE_YEARS = range(2020, 2101)


def _time_sample(response: requests.Response, wall0: datetime, mono0: int, mono1: int,
                 time_in_body: bool) -> TimeSample | None:
    """The central's time from ``server_time`` in the JSON answer, else the Date header."""
    server_time, source, resolution = None, "server_time", 0.0
    if time_in_body:
        try:
            value = response.json().get("server_time")
            if isinstance(value, str):
                server_time = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except (ValueError, AttributeError):
            server_time = None
    if server_time is None or server_time.tzinfo is None:
        try:
            server_time = parsedate_to_datetime(response.headers.get("Date", ""))
        except (TypeError, ValueError):
            return None
        # The Date names a whole second: the middle of it is the best estimate.
        server_time += timedelta(seconds=DATE_RESOLUTION_S / 2)
        source, resolution = "Date", DATE_RESOLUTION_S / 2
    if server_time.tzinfo is None or server_time.year not in _SANE_YEARS:
        return None
    half_ns = (mono1 - mono0) // 2
    return TimeSample(
        server_time=server_time.astimezone(UTC),
        wall=wall0 + timedelta(microseconds=half_ns // 1000),
        mono_ns=mono0 + half_ns,
        uncertainty_s=half_ns / 1e9 + resolution,
        source=source,
    )


_STATE_OF = {
    "accepted": "sent", "duplicate": "sent", "conflict": "conflict", "rejected": "rejected",
    # The central could not open the sealed identity and kept the row aside for its
    # administrator (docs/privacy.md): delivered, the kiosk can do nothing more about it.
    "unopened": "sent",
}
# The sealing key is looked at again this often once one is kept, this often until then.
SEALING_REFRESH_S = 6 * 3600.0
SEALING_RETRY_S = 10.0
# A whole-request 4xx halves the batch (a body-size limit on the path) for this long.
SHRINK_S = 3600.0

Validator = Callable[[bytes], None]


class Syncer:
    """One push or pull pass, without threads or waiting (the worker and ``sync --once``).

    ``validators`` map a document name to a function that raises ValueError when the
    kiosk cannot apply that document; such a version is never stored.
    """

    def __init__(
        self, outbox: Outbox, client: SyncClient, *, clock: Clock, batch_size: int = 500,
        validators: Mapping[str, Validator] | None = None, central_key: str | None = None,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError(f"batch_size is {batch_size!r}; use 1 to 1000")
        unknown = sorted(set(validators or {}) - set(DOCUMENT_NAMES))
        if unknown:
            raise ValueError(f"validators for unknown documents {unknown!r}; use "
                             f"{', '.join(DOCUMENT_NAMES)}")
        self.outbox = outbox
        self.client = client
        self.clock = clock
        self.batch_size = batch_size
        self.validators: Mapping[str, Validator] = dict(validators or {})
        # Documents are applied only when signed by the pinned central key (docs/trust.md).
        self.pin = PinnedKey(outbox, central_key, client.get_keys)
        self.key_warning: str | None = None  # escaped; set by each pull
        # (name, escaped reason) of each document of the last pull that was not applied
        self.document_errors: tuple[tuple[str, str], ...] = ()
        self._reduced = batch_size
        self._reduced_until = 0.0
        self._anchor_uncertainty: float | None = None
        self._sealing_next = 0.0  # monotonic time of the next look at the sealing key
        self.sealing_error: str | None = None  # escaped; why the last look took no key

    def _limit(self) -> int:
        return self._reduced if time.monotonic() < self._reduced_until else self.batch_size

    def _now(self) -> datetime:
        """The best known time: NTP or the central's clock, else the wall clock."""
        return self.outbox.trusted_now(self.clock) or self.clock.now()

    def _take_time(self) -> bool:
        """Keep the central's clock of the last exchange as this boot's anchor if it is
        better than the one kept; True if it changed."""
        sample = self.client.time_sample
        self.client.time_sample = None
        if sample is None or self.clock.synced():
            return False
        if self._anchor_uncertainty is not None and \
                self._anchor_uncertainty <= sample.uncertainty_s:
            return False
        stored = self.outbox.record_clock(
            clock=self.clock, server_time=sample.server_time, wall=sample.wall,
            mono_ns=sample.mono_ns, uncertainty_s=sample.uncertainty_s, source="central",
        )
        anchor = self.outbox.anchor(self.clock.boot_id)
        self._anchor_uncertainty = anchor.uncertainty_s if anchor else None
        if stored:
            log.info("clock: the central's time (%s) is %+.3f s from ours, +/- %.3f s; "
                     "correcting this boot's check-in times", sample.source,
                     (sample.server_time - sample.wall).total_seconds(), sample.uncertainty_s)
        return stored

    def push(self, stop: threading.Event | None = None,
             on_batch: Callable[[], None] = lambda: None, *,
             include_forbidden: bool = True) -> int:
        """Send pending rows in creation order, each once per pass; returns rows delivered.

        ``on_batch`` runs before each batch: the worker's heartbeat, so that draining a long
        backlog over a slow link is not mistaken for a hung thread by the watchdog.  Rows
        the server called forbidden are sent again only when ``include_forbidden``.
        """
        if not self.clock.synced() and self.outbox.anchor(self.clock.boot_id) is None:
            # No NTP and no measurement in this boot yet: ask the central's time first,
            # so that even the first batch goes out with corrected times.
            self.client.health()
            self._take_time()
        self.outbox.correct_times(self.clock)
        if not self.outbox.meta().get(SEALING_KEY_META):
            self._refresh_sealing_key(fresh=True)
        self.outbox.seal_clear()  # identities that waited for the sealing key go out too
        delivered = 0
        after = 0
        counts = self.outbox.counts()
        held = counts["pending"] + counts["in_flight"]
        while not (stop and stop.is_set()):
            on_batch()
            items, after = self.outbox.claim_batch(
                self._limit(), after_seq=after, include_forbidden=include_forbidden
            )
            if not items:
                break
            held = max(0, held - len(items))
            delivered += self._send(items, backlog=held)
            if self._take_time():
                self.outbox.correct_times(self.clock)
        return delivered

    def _send(self, items: list[wire.CheckIn], *, backlog: int) -> int:
        ids = [i["id"] for i in items]
        try:
            results = self.client.post_checkins(items, backlog=backlog)
        except BatchRejectedError as e:
            # Not the server's verdict on these rows: keep them, and try smaller batches
            # for a while in case the path limits the request size.
            self.outbox.release(ids, str(e))
            self._reduced = max(1, min(self._limit(), len(items)) // 2)
            self._reduced_until = time.monotonic() + SHRINK_S
            raise
        except SyncError as e:
            self.outbox.release(ids, str(e))
            raise
        marks, forbidden = _verdicts(results, ids)
        self.outbox.mark_results(marks, self._now())
        if forbidden:
            self.outbox.hold(forbidden)
            log.warning("%d check-in(s) forbidden for this device token, kept pending: %s",
                        len(forbidden), next(iter(forbidden.values())))
        missing = [i for i in ids if i not in marks and i not in forbidden]
        if missing:
            self.outbox.release(missing, "no answer for this id in the server's reply")
        for i, (state, error) in marks.items():
            if state != "sent":
                log.warning("check-in %s is %s: %s", i, state, error)
        return sum(1 for state, _ in marks.values() if state == "sent")

    def pull(self) -> list[str]:
        """Fetch changed documents and apply the good ones together; returns their names.

        A version that fails its check is not stored (the last good one stays); its error
        is in ``document_errors`` until a pull finds it fixed.
        """
        now = self._now()
        changed: list[Document] = []
        unchanged: list[str] = []
        errors: list[tuple[str, str]] = []
        self.pin.begin_pull()
        self.pin.pinned()  # a new anchor in the config resets the versions first
        versions = self.pin.versions()
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
                envelope = self._verified(name, body, response, current, versions.get(name))
                validate(name, body)
                validator = self.validators.get(name)
                if validator is not None:
                    validator(body)
            except Exception as e:  # noqa: BLE001 - a validator's own bug must not stop sync
                errors.append((name, clean(e)))
                log.warning("document %s: the central's new version was not applied: %s",
                            name, errors[-1][1])
                continue
            try:  # the signed Expires, never one added on the way
                expires_at = parsedate_to_datetime(envelope.expires) if envelope.expires \
                    else None
            except (TypeError, ValueError):
                expires_at = None
            etag = (response.headers.get("ETag") or "").strip('"') or None
            changed.append(Document(name, body, etag, now, expires_at))
            versions[name] = envelope.version
        self.outbox.apply_documents(changed, unchanged, now)
        self._refresh_sealing_key()
        # After the bodies: a crash between leaves a version older than the body in force,
        # never a version whose body was not applied (that would refuse the next fetch).
        self.document_errors = tuple(errors)
        self.pin.record(versions, self.document_errors)
        warning = self.pin.warning()
        self.key_warning = clean(warning) if warning else None
        if changed:
            log.info("applied documents: %s", ", ".join(d.name for d in changed))
        return [d.name for d in changed]

    def _refresh_sealing_key(self, *, fresh: bool = False) -> None:
        """Fetch the central's sealing key when none is kept, else every few hours (a
        rotation), and keep it once the pinned signing key vouches for it
        (docs/privacy.md).  A failure is logged and tried again at a later pull: until a
        key is known, identities wait in the kiosk's RAM."""
        meta = self.outbox.meta()
        if meta.get(SEALING_KEY_META) and not self._sealing_next:
            # A key is kept: look for a rotation in a few hours, not at start-up.
            self._sealing_next = time.monotonic() + SEALING_REFRESH_S
        if meta.get(SEALING_KEY_META) and time.monotonic() < self._sealing_next:
            return
        self._sealing_next = time.monotonic() + SEALING_REFRESH_S
        try:
            if fresh:  # outside a pull: ask the central now, not a pull's earlier answer
                self.pin.begin_pull()
            value = self.pin.answer()
            value = value.get("sealing_key") if isinstance(value, dict) else None
            if value is None:
                raise SealError("the central publishes no sealing key; upgrade the central "
                                "(identities wait in memory meanwhile)")
            key, signer, signature = read_signed_key(value)
            verify_signed_key(self.pin.key_for(signer), key, signature)
        except (SealError, SignatureError, SyncError) as e:
            self.sealing_error = clean(e)
            if meta.get(SEALING_KEY_META) is None:
                self._sealing_next = time.monotonic() + SEALING_RETRY_S
            log.warning("sync: the central's sealing key was not taken: %s", self.sealing_error)
            return
        self.sealing_error = None
        text = json.dumps(key.as_json(), sort_keys=True)
        if meta.get(SEALING_KEY_META) != text:
            self.outbox.set_meta(**{SEALING_KEY_META: text})
            log.info("sync: identities are sealed to the central's key %s from now on", key.id)
        self.outbox.seal_clear()

    def _verified(self, name: str, body: bytes, response: requests.Response,
                  current: Document | None, in_force: int | None) -> Envelope:
        """The document's envelope once its signature, key and version are good;
        SignatureError (or SyncError fetching the keys) says why not."""
        envelope = read_envelope(response.headers)
        verify_document(self.pin.key_for(envelope.key), name, body, envelope)
        if in_force is not None and envelope.version < in_force:
            raise SignatureError(f"version {envelope.version} is older than version "
                                 f"{in_force} in force (a replayed document); refused")
        if in_force == envelope.version and current is not None and \
                sha256(current.body) != sha256(body):
            raise SignatureError(f"version {envelope.version} is the version in force but "
                                 "with other bytes; refused")
        return envelope


@dataclass(frozen=True)
class SyncStatus:
    """What the screen and systemd STATUS= show about delivery.

    ``dead_letter`` (rejected + conflict) and ``forbidden`` rows are undeliverable as things
    stand; ``reprovision_needed`` is set when the token is refused or rows are forbidden.
    Text fields hold external text already escaped (:func:`clean`).
    """

    online: bool
    backlog: int
    dead_letter: int
    last_success: datetime | None
    last_error: str | None
    reprovision_needed: bool
    in_flight: int = 0
    conflicts: int = 0
    forbidden: int = 0  # pending rows the server refuses for this device token (held)
    token_refused: bool = False  # the last request got 401/403 (sync keeps asking slowly)
    # (document name, escaped reason) for each document of the last pull not applied
    document_errors: tuple[tuple[str, str], ...] = ()
    clock_source: str = "none"  # how this boot's times are corrected: ntp, central, none
    # why the pinned central key deserves a look (trusted on first use), escaped
    key_warning: str | None = None

    @property
    def undeliverable(self) -> int:
        """Rows that will not reach the central without someone acting."""
        return self.dead_letter + self.forbidden


def _read_token(path: str | os.PathLike[str]) -> str | None:
    """The token in ``path`` (stripped), None if the file is missing or empty."""
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError) as e:
        log.warning("cannot read the device token file %s: %s", quoted(os.fspath(path)),
                    clean(e))
        return None


class SyncWorker:
    """Background delivery thread; ``close()`` stops and joins it promptly."""

    def __init__(
        self,
        *,
        db_path: str | os.PathLike[str],
        server_url: str,
        token: str | None,
        token_file: str | os.PathLike[str] | None = None,
        ca_bundle: str | None = None,
        on_status: Callable[[SyncStatus], None] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        total_timeout: float | None = None,
        batch_size: int = 500,
        backoff_base: float = 2.0,
        backoff_cap: float = 300.0,
        boot_jitter: float = 30.0,
        link_jitter: float = 10.0,
        idle_interval: float = 60.0,
        auth_retry_max: float = 300.0,
        documents_interval: float = 900.0,
        retention_days: int = 30,
        validators: Mapping[str, Validator] | None = None,
        central_key: str | None = None,
        clock: Clock | None = None,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.clock = clock or Clock()
        self.token_file = token_file
        self._token = token
        self._client = SyncClient(
            server_url, token, ca_bundle=ca_bundle, connect_timeout=connect_timeout,
            read_timeout=read_timeout, total_timeout=total_timeout, session=session,
            clock=self.clock, before_request=self._beat, user_agent=user_agent,
        )
        self._outbox = Outbox(db_path)
        self._syncer = Syncer(self._outbox, self._client, clock=self.clock,
                              batch_size=batch_size, validators=validators,
                              central_key=central_key)
        self._on_status = on_status
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.boot_jitter, self.link_jitter = boot_jitter, link_jitter
        self.idle_interval, self.documents_interval = idle_interval, documents_interval
        self.auth_retry_max = max(idle_interval, auth_retry_max)
        self.retention_days = retention_days
        self._rng = rng or random.Random()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._heartbeat = time.monotonic()
        self._online = False
        # AWS's "full jitter" ceiling base * 2**failures: the first failure waits up to 2 * base.
        self._backoff = Backoff(first=2 * backoff_base, cap=backoff_cap,
                                jitter=True, rng=self._rng)
        self._token_refused = False
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
        self._client.abort()  # a request in progress ends now, not at its deadline
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.error("sync worker did not stop within 5 s of close()")
        self._client.close()
        self._outbox.close()

    def status(self) -> SyncStatus:
        counts = self._outbox.counts()
        anchor = None if self.clock.synced() else self._outbox.anchor(self.clock.boot_id)
        return SyncStatus(
            online=self._online,
            backlog=counts["pending"] + counts["in_flight"],
            dead_letter=counts["rejected"] + counts["conflict"],
            last_success=self._last_success,
            last_error=self._last_error,
            reprovision_needed=self._token_refused or counts["forbidden"] > 0,
            in_flight=counts["in_flight"],
            conflicts=counts["conflict"],
            forbidden=counts["forbidden"],
            token_refused=self._token_refused,
            document_errors=self._syncer.document_errors,
            key_warning=self._syncer.key_warning,
            clock_source="ntp" if self.clock.synced() else (anchor.source if anchor else "none"),
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

    def _slow(self) -> float:
        """The pause between asks while refused: idle_interval .. auth_retry_max, jittered."""
        return self._rng.uniform(self.idle_interval, self.auth_retry_max)

    def _reload_token(self) -> bool:
        """Re-read the token file (a technician may have fixed it); True if it changed."""
        if self.token_file is None:
            return False
        token = _read_token(self.token_file)
        if token is None or token == self._token:
            return False
        self._token = token
        self._client.set_token(token)
        log.info("sync: the device token file %s changed; using the new token",
                 quoted(os.fspath(self.token_file)))
        return True

    def _loop(self) -> None:
        self._sleep(self._rng.uniform(0, self.boot_jitter), wake_on_poke=False)
        next_documents = 0.0
        next_purge = 0.0
        next_forbidden = 0.0
        while not self._stop.is_set():
            self._heartbeat = time.monotonic()
            try:
                if self._backoff.failures:
                    # The link may be back: a cheap probe, then a random pause before the
                    # backlog goes out, so kiosks that lost the link together spread out.
                    self._client.health()
                    self._sleep(self._rng.uniform(0, self.link_jitter), wake_on_poke=False)
                retry_forbidden = time.monotonic() >= next_forbidden
                # A token file replaced by hand is picked up when a request is due anyway.
                if (self._token_refused or retry_forbidden) and self._reload_token():
                    retry_forbidden = True
                delivered = self._syncer.push(self._stop, on_batch=self._beat,
                                              include_forbidden=retry_forbidden)
                if retry_forbidden:
                    # Forbidden rows are asked about slowly, like a refused token.
                    next_forbidden = time.monotonic() + self._slow()
                if time.monotonic() >= next_documents or self._token_refused:
                    self._syncer.pull()
                    next_documents = time.monotonic() + self.documents_interval
                if time.monotonic() >= next_purge:
                    self._outbox.purge(retention_days=self.retention_days, clock=self.clock)
                    next_purge = time.monotonic() + 3600
                self._succeeded(delivered)
                self._sleep(self.idle_interval, wake_on_poke=True)
            except SyncError as e:
                if self._stop.is_set():
                    break  # close() cut the request: not an error worth keeping
                self._failed(e)
            except Exception as e:
                self._paused(e)

    def _paused(self, e: Exception) -> None:
        """A round failed on this device, not on the link: record it and wait a while."""
        self._backoff.failed()  # counted; the wait is the fixed one below
        self._record_error(e)
        if isinstance(e, StoreError):
            # A known fault of this device (disk full, damaged file): one line, no
            # traceback; the scan loop shows it and the worker tries again later.
            log.error("sync paused, the queue database failed: %s", quoted(str(e)))
        else:
            log.exception("unexpected error in the sync worker")
        self._publish()
        self._sleep(min(self.backoff_cap, 60.0), wake_on_poke=False)

    def _failed(self, e: SyncError) -> None:
        """Record a failed round and wait: slowly when refused, else with backoff."""
        if isinstance(e, AuthSyncError):
            first = not self._token_refused
            self._token_refused, self._online = True, True
            self._backoff.reset()
            self._record_error(e)
            delay = self._slow()
            (log.error if first else log.info)(
                "sync refused, asking again in %.0f s: %s", delay, e)
        else:
            delay = self._backoff.failed()
            self._online = False
            self._record_error(e)
            retry_after = getattr(e, "retry_after", None)
            if retry_after is not None:
                # The server said when (a busy central spreads its herd with its own
                # jitter): come back then, not after our doubled backoff (up to the cap),
                # which left a whole province waiting minutes after a power cut.  Never
                # sooner than the first backoff step (a "Retry-After: 0" is no licence
                # to hammer).
                delay = max(retry_after, self._backoff.first)
            log.info("sync failed (%d in a row), retrying in %.1f s: %s",
                     self._backoff.failures, delay, e)
        self._publish()
        self._sleep(delay, wake_on_poke=False)

    def _succeeded(self, delivered: int) -> None:
        self._backoff.reset()
        self._online = True
        # The first success after start also counts: the database may still hold an old
        # error and the 401 flag from before a restart with a new device token.
        changed = self._last_error is not None or not self._persisted or self._token_refused
        self._token_refused = False
        self._last_error = None
        self._last_success = self.clock.now()  # last: a reader seeing it sees the rest
        forbidden = self._outbox.counts()["forbidden"]
        # Bound SD-card writes: persist only when something happened.
        if delivered or changed or forbidden:
            self._persisted = True
            self._outbox.set_meta(last_success=iso(self._last_success), last_error=None,
                                  reprovision_needed="1" if forbidden else "0")
        self._publish()

    def _record_error(self, error: BaseException) -> None:
        message = clean(error, limit=1000)
        if message != self._last_error:
            self._last_error = message
            try:
                self._outbox.set_meta(
                    last_error=message, reprovision_needed="1" if self._token_refused else "0"
                )
            except StoreError as e:  # the disk that failed the round fails this too
                log.warning("cannot record the sync error in the queue database: %s",
                            quoted(str(e)))
            except Exception:
                log.exception("cannot record the sync error in the queue database")


@dataclass(frozen=True)
class SyncOnceResult:
    delivered: int
    documents_changed: list[str]
    remaining: int
    dead_letter: int
    error: str | None
    forbidden: int = 0
    document_errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # worth a look, not a failure (a key trusted on first use)

    @property
    def ok(self) -> bool:
        """Everything delivered, nothing undeliverable, every document applied."""
        return (self.error is None and self.remaining == 0 and self.dead_letter == 0
                and self.forbidden == 0 and not self.document_errors)

    def as_json(self) -> str:
        return json.dumps(
            {"ok": self.ok, "delivered": self.delivered, "documents_changed":
             self.documents_changed, "remaining": self.remaining,
             "dead_letter": self.dead_letter, "forbidden": self.forbidden,
             "document_errors": list(self.document_errors), "error": self.error,
             "warnings": list(self.warnings)},
            ensure_ascii=False,
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
    total_timeout: float | None = None,
    validators: Mapping[str, Validator] | None = None,
    user_agent: str = USER_AGENT,
    central_key: str | None = None,
) -> SyncOnceResult:
    """Push everything pending and pull the documents once (``checkpoint-kiosk sync --once``).

    Not ``ok`` while any row is left undeliverable (dead letter, forbidden, still pending)
    or a document was not applied; ``error`` then says what and what to do.
    """
    clock = clock or Clock()
    client = SyncClient(server_url, token, ca_bundle=ca_bundle, connect_timeout=connect_timeout,
                        read_timeout=read_timeout, total_timeout=total_timeout, clock=clock,
                        user_agent=user_agent)
    with Outbox(db_path) as outbox:
        try:
            outbox.reset_in_flight()
            syncer = Syncer(outbox, client, clock=clock, batch_size=batch_size,
                            validators=validators, central_key=central_key)
            error = None
            refused = False
            delivered, changed = 0, []
            try:
                delivered = syncer.push()
                changed = syncer.pull()
                # Rows of an earlier release wait for the sealing key the pull may bring.
                delivered += syncer.push()
            except SyncError as e:
                error = str(e)
                refused = isinstance(e, AuthSyncError)
            after = outbox.counts()
            forbidden = after["forbidden"]
            # What `status` and `queue stats` show, as the worker keeps it: a technician's
            # successful round after re-provisioning clears the old error and the 401 flag.
            if error is None:
                outbox.set_meta(last_success=iso(clock.now()), last_error=None,
                                reprovision_needed="1" if forbidden else "0")
            else:
                outbox.set_meta(last_error=error, **({"reprovision_needed": "1"} if refused
                                                     else {}))
        finally:
            client.close()
    dead = after["rejected"] + after["conflict"]
    remaining = after["pending"] + after["in_flight"]
    document_texts = tuple(f"{name}: the central's new version was not applied: {why}"
                           for name, why in syncer.document_errors)
    if error is None:
        problems = []
        if after["rejected"]:
            problems.append(f"{after['rejected']} check-in(s) refused by the server (dead "
                            "letter): see `queue stats`; after the cause is fixed, "
                            "`checkpoint-kiosk queue requeue` sends them again")
        if after["conflict"]:
            problems.append(f"{after['conflict']} check-in(s) in conflict (dead letter: the "
                            "central holds these ids with other content); call a technician")
        if forbidden:
            problems.append(f"{forbidden} check-in(s) forbidden for this device token (kept "
                            "pending): re-provision the kiosk so the central links its "
                            "earlier device id")
        if remaining > forbidden:
            problems.append(f"{remaining - forbidden} check-in(s) still pending")
        problems.extend(document_texts)
        error = "; ".join(problems) or None
    return SyncOnceResult(delivered, changed, remaining, dead, error, forbidden,
                          document_texts,
                          (syncer.key_warning,) if syncer.key_warning else ())
