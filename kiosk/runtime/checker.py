"""The decision maker in force: the config's policy until the central's documents arrive.

:class:`LiveChecker` wraps :class:`kiosk.domain.policy.Checker` and rebuilds it when the sync
worker stores a new policy, trust list, watchlist, status or risk-levels document; the scan
loop asks it at every decision, and asks it about the documents for the status strip
(:class:`kiosk.runtime.ports.DocumentState`).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from kiosk.config import Config
from kiosk.domain.documents import load as load_document
from kiosk.domain.model import Credential, Decision
from kiosk.domain.policy import Checker, Policy
from kiosk.errors import KioskError
from kiosk.runtime.ports import StoredDocuments
from offline_queue.documents import Document

log = logging.getLogger(__name__)


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class LiveChecker:
    """The decision maker, rebuilt when the sync worker stores a new document.

    A policy document from the central platform replaces the config's ``[policy]`` table: the
    province sets the rules, the technician's file only seeds them until the first sync.  The
    store is asked for changes at most every ``refresh_seconds``.  Each document is applied on
    its own with :func:`kiosk.domain.documents.load`: one that cannot be applied never stops the
    kiosk (a restart loop would leave every checkpoint dark); it is skipped, the one in force stays
    (at start-up the config's policy, or no list: ``*_missing`` reasons send people to an
    officer), and the fault is kept for the status strip until a good version arrives.

    Once :meth:`start` ed (``kiosk.runtime.build`` does), a thread of its own reads and
    applies new documents and swaps the checker in whole; :meth:`decide` then only uses the
    one in force, so a scan never waits for a large status document to be parsed (2.6 s for
    200,000 people here: docs/policy.md, "A large status document").  Not started (the
    ``inspect`` command, tests), :meth:`decide` refreshes on the caller's thread.
    """

    DOCUMENTS = ("policy", "trust_list", "watchlist", "status", "risk_levels")

    def __init__(self, cfg: Config, store: StoredDocuments, *,
                 refresh_seconds: float = 2.0) -> None:
        self._store = store
        self.refresh_seconds = refresh_seconds
        self._checked = float("-inf")
        # The technician's [policy] (a profile name or a local policy file, as config.check_values
        # accepts it) was validated at load; were it bad, start-up stops loudly here.
        table = dict(cfg.policy)
        self._seed = Policy.load(str(table.pop("profile", "border")), table)
        self._in_force: dict[str, Any] = {**dict.fromkeys(self.DOCUMENTS), "policy": self._seed}
        self._times: dict[str, datetime | None] = dict.fromkeys(self.DOCUMENTS)
        self._errors: dict[str, str] = {}
        self._versions: dict[str, tuple[str | None, datetime, int] | None] = {}
        self._bad: dict[str, tuple[str | None, str]] = {}  # the last body that failed, by name
        self.checker = Checker(**self._in_force)
        self._lock = threading.Lock()  # one refresh at a time
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh(force=True)

    def start(self) -> LiveChecker:
        """Apply new documents on a thread of its own from now on (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="documents", daemon=True)
            self._thread.start()
        return self

    def poke(self) -> None:
        """Look for new documents now (the sync worker stored one)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh(force=True)
            except Exception:  # noqa: BLE001 - the thread must outlive one bad turn
                log.exception("applying the stored documents failed; the ones in force stay")
            self._wake.wait(self.refresh_seconds or 0.5)
            self._wake.clear()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                log.warning("the documents thread did not stop within 10 s")

    @property
    def policy(self) -> Policy:
        return self.checker.policy

    def decide(self, credential: Credential, *, at: datetime,
               direction: str = "in") -> Decision:
        if self._thread is None:
            self.refresh()
        # One read of the attribute: the documents thread swaps in a whole new checker.
        return self.checker.decide(credential, at=at, direction=direction)

    def trust_list_age(self) -> timedelta | None:
        fetched_at = self._times["trust_list"]
        return None if fetched_at is None else datetime.now(UTC) - fetched_at

    def document_errors(self) -> dict[str, str]:
        """Why a stored document is not applied, by document name (empty when all are)."""
        return dict(self._errors)

    def document_times(self) -> dict[str, datetime | None]:
        """When each document in force was fetched; None for the config seed or no document."""
        return dict(self._times)

    def refresh(self, *, force: bool = False) -> None:
        with self._lock:
            self._refresh(force)

    def _refresh(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self.refresh_seconds:
            return
        self._checked = now
        changed = False
        for name in self.DOCUMENTS:
            try:
                doc = self._store.document(name)
            except Exception as e:  # noqa: BLE001 - a store hiccup must not stop decisions
                log.warning("cannot read the stored %s document (%s); keeping the one in force",
                            name, type(e).__name__)
                continue
            # Every store of a document sets its fetch time, so this changes with the body
            # without hashing a large trust list every two seconds.
            version = (doc.etag, doc.fetched_at, len(doc.body)) if doc else None
            if name in self._versions and self._versions[name] == version:
                continue
            self._versions[name] = version
            changed = self._apply(name, doc) or changed
        if changed:
            self.checker = Checker(**self._in_force)
            # The first argument is the profile: bench/day_kiosk.py reads it from this record.
            log.info("decisions use policy %r, trust list %s, watchlist %s, status %s, "
                     "risk levels %s%s",
                     self._in_force["policy"].profile,
                     *("present" if self._in_force[name] is not None else "missing"
                       for name in ("trust_list", "watchlist", "status", "risk_levels")),
                     f"; not applied: {', '.join(sorted(self._errors))}" if self._errors else "")

    @contextlib.contextmanager
    def _collector_paused(self) -> Iterator[None]:
        """On the documents thread: no cyclic garbage collection while a document is
        parsed, and what it made is then left out of later collections (``gc.freeze``).
        A 200,000-person status list is millions of objects: the collector walking them
        stopped every thread, the loop's too, for ~0.2 s (bench/status_apply.py).  Its
        records hold no cycles; reference counting frees an old list when it is replaced."""
        if self._thread is None or threading.current_thread() is not self._thread:
            yield
            return
        enabled = gc.isenabled()
        gc.disable()
        try:
            yield
        finally:
            gc.freeze()
            if enabled:
                gc.enable()

    def _apply(self, name: str, doc: Document | None) -> bool:
        """Put stored document ``name`` in force; False when it cannot be (fault recorded)."""
        if doc is None:
            self._in_force[name] = self._seed if name == "policy" else None
            self._times[name] = None
            self._errors.pop(name, None)
            return True
        try:
            with self._collector_paused():
                self._in_force[name] = load_document(name, doc.body, fetched_at=doc.fetched_at)
        except Exception as e:  # noqa: BLE001 - no stored document may stop the kiosk
            if not isinstance(e, KioskError):
                log.debug("loading the stored %s document failed", name, exc_info=True)
                e = KioskError(f"document {name!r} cannot be applied: {type(e).__name__}")
            body_id = (doc.etag, _sha256(doc.body))
            same_body = self._bad.get(name) == body_id
            self._bad[name] = body_id
            self._errors[name] = str(e)
            # Once per bad version, not at every fetch-time refresh of the same body.
            (log.debug if same_body else log.error)(
                "the stored %s document is not applied, the one in force stays: %s", name, e)
            return False
        self._times[name] = doc.fetched_at
        self._errors.pop(name, None)
        return True
