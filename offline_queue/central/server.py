"""Serving the central app with waitress, in the foreground or on a background thread."""

from __future__ import annotations

import logging
import os
import resource
import threading

from waitress import wasyncore
from waitress.server import create_server

from offline_queue.central.app import MAX_BODY, Admission, create_app
from offline_queue.central.db import Validators
from offline_queue.central.keys import CentralKey, KeyFile
from offline_queue.central.throttle import Throttle

log = logging.getLogger(__name__)

# Limits that hold against slow clients (measured: docs/offline-queue.md, "The central").
# A half-sent request costs a socket but no thread, so many connections are cheap and a
# short silence timeout frees them; waitress's defaults (100 connections, 120 s, checked
# every 30 s) let 100 slow sockets lock every kiosk out for two minutes at a time.
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT = 20  # seconds without a byte before a connection is dropped
CLEANUP_INTERVAL = 2  # seconds between those checks
THREADS = 8  # application threads; SQLite serialises the writes anyway
# Posts waiting for a thread before the next one is answered 503 + Retry-After: with 8
# threads at ~20 ms a post, 64 queued is ~0.2 s of work, far inside a kiosk's timeout.
QUEUE_LIMIT = 64
MAX_HEADER_BYTES = 64 * 1024
# The documented TLS reverse proxy runs on this machine: behind it every peer is
# 127.0.0.1, and the last X-Forwarded-For entry (the one that proxy wrote) is the client.
# Entries a client wrote itself come before it and are ignored.
TRUSTED_PROXY = "127.0.0.1"
_SPARE_FILES = 64  # the database, its WAL, logs, the listening socket


def _files_for(connections: int) -> int:
    """Raise the open-file limit for ``connections`` sockets if allowed; the connections
    that fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + _SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        fitting = max(soft - _SPARE_FILES, 10)
        log.warning("open-file limit %d allows only %d connections, not %d; raise "
                    "LimitNOFILE in the service unit", soft, fitting, connections)
        return fitting
    return connections


class CentralServer:
    """The reference server on a thread (tests, benchmarks); ``url`` once started."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_token: str | None = None,
        validators: Validators | None = None,
        threads: int = THREADS,
        connection_limit: int = CONNECTION_LIMIT,
        channel_timeout: int = CHANNEL_TIMEOUT,
        cleanup_interval: int = CLEANUP_INTERVAL,
        queue_limit: int | None = QUEUE_LIMIT,
        signing_key: CentralKey | KeyFile | None = None,
        throttle: Throttle | None = None,
        trusted_proxy: str | None = TRUSTED_PROXY,
    ) -> None:
        self.target = db_path
        # The admission reads the task queue of the server made just below.
        self.admission = None if queue_limit is None else Admission(
            lambda: len(self._server.task_dispatcher.queue), limit=queue_limit)
        self.app = create_app(db_path, admin_token=admin_token, validators=validators,
                              admission=self.admission, signing_key=signing_key,
                              throttle=throttle)
        self._server = create_server(
            self.app, host=host, port=port, threads=threads,
            connection_limit=_files_for(connection_limit),
            channel_timeout=channel_timeout, cleanup_interval=cleanup_interval,
            # select() cannot watch descriptors above 1024; poll() can.
            asyncore_use_poll=True,
            max_request_body_size=MAX_BODY, max_request_header_size=MAX_HEADER_BYTES,
            # The client's address (the wrong-token throttle) as the TLS proxy saw it.
            **({"trusted_proxy": trusted_proxy, "trusted_proxy_count": 1,
                "trusted_proxy_headers": "x-forwarded-for"} if trusted_proxy else {}),
        )
        self.adjustments = self._server.adj
        self.host = host
        self.port = self._server.effective_port
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop = threading.Event()

    def start(self) -> CentralServer:
        self._thread = threading.Thread(target=self._run, name="central", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        # waitress has no public stop(): run its loop in short turns and tear it down
        # from this same thread, since closing sockets under a running select() races.
        server = self._server
        while not self._stop.is_set():
            wasyncore.loop(timeout=0.1, map=server._map, use_poll=True, count=1)
        server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(server._map)

    def serve_forever(self) -> None:
        log.info("central server listening on %s", self.url)
        try:
            self._server.run()
        finally:
            self.close()

    def __enter__(self) -> CentralServer:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is None:
            wasyncore.close_all(self._server._map)
        else:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                log.warning("central server thread did not stop within 5 s")
        self.app.extensions["checkpoint_kiosk_close"]()
