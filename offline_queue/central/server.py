"""Serving the central app with waitress, in the foreground or on a background thread."""

from __future__ import annotations

import logging
import os
import threading

from waitress import wasyncore
from waitress.server import create_server

from offline_queue.central.app import create_app

log = logging.getLogger(__name__)


class CentralServer:
    """The reference server on a thread (tests, benchmarks); ``url`` once started."""

    def __init__(
        self,
        db_path: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_token: str | None = None,
        threads: int = 4,
    ) -> None:
        self.app = create_app(db_path, admin_token=admin_token)
        self._server = create_server(self.app, host=host, port=port, threads=threads)
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
            wasyncore.loop(timeout=0.1, map=server._map, count=1)
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
