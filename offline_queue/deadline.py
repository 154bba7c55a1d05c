"""A total deadline for one HTTP exchange over ``requests`` (issue 9 #5).

requests' read timeout bounds each socket read, not the request: an answer that drips one
byte every few seconds (in its head, its body or the TLS handshake) never times out.  The
adapter here gives each connection a duplicate of its socket's file descriptor; when a
request's deadline passes (or :meth:`Deadline.fire` is called from another thread, as
``close()`` does), ``shutdown()`` on that duplicate ends every blocked read of the real
socket at once.  The duplicate is our own descriptor, so it can never hit a descriptor
number the system has reused for something else.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()  # the Deadline of the request running on this thread


class Deadline:
    """Context manager around one request: shuts its connection down when it expires.

    It expires ``seconds`` after the start, later only as :meth:`allow` grants (the body
    is arriving at a decent rate), and never later than ``max_seconds``.
    """

    def __init__(self, seconds: float, *, max_seconds: float | None = None) -> None:
        self.seconds = seconds
        self.max_seconds = max(seconds, max_seconds or seconds)
        self.started = time.monotonic()
        self.expires = self.started + seconds
        self.fired = False
        self._lock = threading.Lock()
        self._done = False
        self._connections: list[Any] = []
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Deadline:
        _current.deadline = self
        self._schedule(self.seconds)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            if self._timer is not None:
                self._timer.cancel()
        _current.deadline = None

    def _schedule(self, delay: float) -> None:
        self._timer = threading.Timer(delay, self._check)
        self._timer.daemon = True
        self._timer.start()

    def allow(self, extra_seconds: float) -> None:
        """Let the request run until ``seconds + extra_seconds`` after its start (capped)."""
        self.expires = max(self.expires, self.started + min(self.max_seconds,
                                                            self.seconds + extra_seconds))

    def _check(self) -> None:
        with self._lock:
            if self._done:
                return
            left = self.expires - time.monotonic()
            if left > 0:
                self._schedule(left)
                return
        self.fire()

    def attach(self, connection: Any) -> None:
        with self._lock:
            self._connections.append(connection)
            if self.fired:
                _shutdown(connection)

    def fire(self) -> None:
        """End the request now (its blocked read returns an error)."""
        with self._lock:
            if self._done:
                return
            self.fired = True
            for connection in self._connections:
                _shutdown(connection)


def _shutdown(connection: Any) -> None:
    handle = getattr(connection, "_deadline_handle", None)
    if handle is not None:
        try:
            handle.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by its owner


def _attach(connection: Any) -> None:
    deadline = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.attach(connection)


class _Watched:
    """Mixin for urllib3 connections: keep a duplicate descriptor, join the deadline."""

    def _new_conn(self) -> socket.socket:
        # mypy checks a mixin against its base, object; at run time super() is urllib3's.
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        self._close_handle()
        self._deadline_handle = sock.dup()
        _attach(self)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _attach(self)  # a kept-alive connection serving another request
        return super().request(*args, **kwargs)  # type: ignore[misc]  # (as _new_conn)

    def close(self) -> None:
        try:
            super().close()  # type: ignore[misc]  # (as _new_conn)
        finally:
            self._close_handle()

    def _close_handle(self) -> None:
        handle = self.__dict__.pop("_deadline_handle", None)
        if handle is not None:
            handle.close()


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections obey the :class:`Deadline` of the calling thread."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager
