"""Serving the central app with waitress, in the foreground or on a background thread."""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import socket
import threading
import time
import types
from collections.abc import Callable
from typing import Any, cast

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.receiver import FixedStreamReceiver
from waitress.server import create_server

from offline_queue.central import db as central_db
from offline_queue.central import people
from offline_queue.central.app import (
    MAX_BODY,
    Admission,
    busy_message,
    create_app,
    default_signing_key,
)
from offline_queue.central.db import Validators
from offline_queue.central.keys import CentralKey, KeyFile
from offline_queue.central.throttle import LIMIT as THROTTLE_LIMIT
from offline_queue.central.throttle import Throttle

log = logging.getLogger(__name__)

# Limits that hold against slow clients (measured: docs/offline-queue.md, "The central").
# A half-sent request costs a socket but no thread, so many connections are cheap and a
# short silence timeout frees them; waitress's defaults (100 connections, 120 s, checked
# every 30 s) let 100 slow sockets lock every kiosk out for two minutes at a time.
CONNECTION_LIMIT = 1000
CHANNEL_TIMEOUT = 20  # seconds without a byte before a connection is dropped
CLEANUP_INTERVAL = 2  # seconds between those checks
# Application threads per worker process: two overlap one post's database round trips
# with another's Python; more only contend for the interpreter lock (measured: 4 threads
# cost 10-25 % more CPU a check-in than 1 or 2, docs/central.md "Herd and ingest").
THREADS = 2
# Posts waiting for a thread (per worker) before the next one is answered 503 +
# Retry-After: at 10-30 ms a post, 64 queued is well under a second of work, far inside
# a kiosk's 30 s timeout.
QUEUE_LIMIT = 64
MAX_HEADER_BYTES = 64 * 1024
# The documented TLS reverse proxy runs on this machine: behind it every peer is
# 127.0.0.1, and the last X-Forwarded-For entry (the one that proxy wrote) is the client.
# Entries a client wrote itself come before it and are ignored.  Its X-Forwarded-Proto
# (https) makes the dashboard's cookies Secure (docs/central.md, "The TLS reverse proxy").
TRUSTED_PROXY = "127.0.0.1"
TRUSTED_PROXY_HEADERS = "x-forwarded-for x-forwarded-proto"
# Server processes sharing one listening socket (the ingest path keeps no state between
# requests): Python runs one thread at a time per process, so one process cannot use a
# second core for JSON and validation.  One a core (2 to 8): PostgreSQL's own work is
# short next to the Python per check-in.  Measured: docs/central.md, "Herd and ingest".
WORKERS = max(2, min(8, os.cpu_count() or 2))
# Connections the kernel queues before a worker accepts them (a herd connects by the
# thousand within seconds); capped by net.core.somaxconn.
BACKLOG = 4096
# Connections a worker takes from the listening socket per turn of its event loop
# (waitress takes one: with the loop's thread waiting for the interpreter lock behind the
# application threads, a herd's connections then wait in the backlog into their timeouts).
ACCEPT_BATCH = 64
# Answer a busy check-in post 503 on its headers, before its body (_EarlyBusyChannel)?
# Measured, it does not pay: the 6,000-kiosk herd took longer with it (77-85 s, ~4,400
# refusals) than without (docs/central.md, "Herd and ingest"): deciding on the queue as
# the headers arrive refuses more kiosks than deciding when a thread takes the post, and
# reading a refused body is cheap.  Kept as an option (CentralServer(early_busy=True)).
EARLY_BUSY = False
# The status republisher's CPU priority (nice, 0-19): below the workers'.  Folding hashes
# each new declaration with Argon2id (~6 ms here): in the 6,000-kiosk herd with 2 %
# declarations that was ~140 s of CPU taken from the workers at nice 0, and the herd took
# 211 s instead of ~80 (docs/central.md, "Herd and ingest").  Kiosks fetch the document
# every 15 minutes; the folding can wait for the workers' idle time.
REPUBLISHER_NICE = 19
# A batch of 200 check-ins is ~110 kB: read it in 2 calls, not 14 of waitress's 8 kB.
RECV_BYTES = 64 * 1024
_SPARE_FILES = 64  # the database, its WAL, logs, the listening socket
# Seconds the serving loop waits in poll() before it looks whether to stop again.
LOOP_TURN = 0.1


class _EarlyBusyChannel(HTTPChannel):
    """waitress's connection, answering a busy check-in post as soon as its headers are in
    (used with ``early_busy=True``; off by default, see ``EARLY_BUSY``).

    waitress hands a request to the application only once the whole body has arrived, so
    a refused post (the central is busy) still uploaded its ~110 kB and was parsed before
    its 503.  This answers 503 + Retry-After (:class:`Admission`) after the headers, then
    reads and drops the rest of the body without buffering it (closing with the body
    unread would reset the connection, and the kiosk could lose the answer), and closes.
    """

    admission: Admission | None = None
    _discard = 0  # body bytes still to read and drop after an early answer

    def received(self, data: bytes) -> bool:
        if self._discard:
            self._discard = max(0, self._discard - len(data))
            if not self._discard:
                self.close_when_flushed = True
            return True
        taken: bool = super().received(data)  # waitress has no type hints
        request: Any = cast(Any, self).request  # waitress has no type hints
        if (self.admission is None or request is None or not request.headers_finished
                or request.completed or self.requests or request.command != "POST"
                or request.path != "/v1/checkins"
                or not isinstance(request.body_rcv, FixedStreamReceiver)):
            return taken
        wait = self.admission.retry_after()
        if wait is None:
            return taken
        self._discard = request.body_rcv.remain
        request.close()  # its buffer
        self.request = None
        body = json.dumps({"error": busy_message(wait)}).encode()
        answer = (f"HTTP/1.1 503 Service Unavailable\r\nRetry-After: {wait}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                  "Connection: close\r\n\r\n").encode("ascii") + body
        with self.outbuf_lock:
            self.outbufs[-1].append(answer)
            self.current_outbuf_count += len(answer)
            self.total_outbufs_len += len(answer)
        if not self._discard:
            self.close_when_flushed = True
        return True


def _accept_many(server: Any) -> None:
    """waitress's ``handle_accept``, taking up to ``ACCEPT_BATCH`` waiting connections
    (within the connection limit) instead of one."""
    room = server.adj.connection_limit - len(server._map)
    for _ in range(max(1, min(ACCEPT_BATCH, room))):
        try:
            accepted = server.accept()
            if accepted is None:  # none left (another worker took it)
                return
            conn, addr = accepted
            server.set_socket_options(conn)
        except OSError:
            log.debug("accept() failed", exc_info=True)
            return
        server.channel_class(server, conn, server.fix_addr(addr), server.adj,
                             map=server._map)


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
        early_busy: bool = EARLY_BUSY,
        sock: socket.socket | None = None,
        backlog: int = BACKLOG,
        fold: people.Folder | None = None,
        republish: bool = True,
        status_every: float = people.CHECK_EVERY,
    ) -> None:
        self.target = db_path
        # ``fold``: the status document holds the kiosks' declarations; this server also
        # republishes it (a thread) unless ``republish`` is off (``serve`` runs one apart).
        self.republisher = people.Republisher(db_path, fold, validators=validators,
                                              every=status_every) \
            if fold is not None and republish else None
        # The admission reads the task queue of the server made just below.
        self.admission = None if queue_limit is None else Admission(
            lambda: len(self._server.task_dispatcher.queue), limit=queue_limit)
        self.app = create_app(db_path, admin_token=admin_token, validators=validators,
                              admission=self.admission, signing_key=signing_key,
                              throttle=throttle, fold=fold, republisher=self.republisher)
        where: dict[str, Any] = {"sockets": [sock]} if sock is not None else {
            "host": host, "port": port}
        self._server = create_server(
            self.app, threads=threads,
            connection_limit=_files_for(connection_limit),
            channel_timeout=channel_timeout, cleanup_interval=cleanup_interval,
            # select() cannot watch descriptors above 1024; poll() can.
            asyncore_use_poll=True, backlog=backlog, recv_bytes=RECV_BYTES,
            max_request_body_size=MAX_BODY, max_request_header_size=MAX_HEADER_BYTES,
            # The client's address (the wrong-token throttle) and scheme as the TLS proxy
            # saw them.
            **({"trusted_proxy": trusted_proxy, "trusted_proxy_count": 1,
                "trusted_proxy_headers": TRUSTED_PROXY_HEADERS} if trusted_proxy else {}),
            **where,
        )
        if early_busy and self.admission is not None:
            self._server.channel_class = type(
                "CentralChannel", (_EarlyBusyChannel,), {"admission": self.admission})
        self._server.handle_accept = types.MethodType(_accept_many, self._server)
        self.adjustments = self._server.adj
        self.host = host if sock is None else sock.getsockname()[0]
        self.port = self._server.effective_port
        self.url = f"http://{_url_host(self.host)}:{self.port}"
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop = threading.Event()

    def start(self) -> CentralServer:
        self._thread = threading.Thread(target=self._run, name="central", daemon=True)
        self._thread.start()
        if self.republisher is not None:
            self.republisher.start()
        return self

    def _run(self, until: threading.Event | None = None) -> None:
        # waitress has no public stop(): run its loop in short turns and tear it down
        # from this same thread, since closing sockets under a running select() races.
        server = self._server
        try:
            while not self._stop.is_set() and not (until is not None and until.is_set()):
                wasyncore.loop(timeout=LOOP_TURN, map=server._map, use_poll=True, count=1)
        finally:
            server.task_dispatcher.shutdown(timeout=5)
            wasyncore.close_all(server._map)

    def serve_forever(self, until: threading.Event | None = None) -> None:
        """Serve on this thread until :meth:`close` or until ``until`` is set (a signal
        handler sets it: an exception raised from a handler can land anywhere, even in a
        finaliser that swallows it)."""
        log.info("central server listening on %s", self.url)
        if self.republisher is not None:
            self.republisher.start()
        try:
            self._run(until)
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
        if self.republisher is not None:
            self.republisher.close()
        if self._thread is None:
            wasyncore.close_all(self._server._map)
        else:
            self._thread.join(timeout=5)
            if self._thread.is_alive():
                log.warning("central server thread did not stop within 5 s")
        self.app.extensions["checkpoint_kiosk_close"]()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def listening_socket(host: str, port: int, backlog: int = BACKLOG, *,
                     reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (0: a free port) and listening;
    ``reuse_port``: one of a group on the same port among which the kernel spreads the
    connections (SO_REUSEPORT)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise OSError(f"cannot resolve the central's --host {host!r}: {e}; give an IP "
                      "address such as 127.0.0.1") from e
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {e.strerror or e}; pick another "
                      "--port or stop what uses it") from e
    return sock


def serve(
    db_path: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = WORKERS,
    threads: int = THREADS,
    connection_limit: int = CONNECTION_LIMIT,
    queue_limit: int | None = QUEUE_LIMIT,
    early_busy: bool = EARLY_BUSY,
    admin_token: str | None = None,
    validators: Validators | None = None,
    signing_key: CentralKey | KeyFile | None = None,
    trusted_proxy: str | None = TRUSTED_PROXY,
    on_listening: Callable[[str], None] | None = None,
    fold: people.Folder | None = None,
    status_every: float = people.CHECK_EVERY,
) -> None:
    """Serve the central in the foreground: ``workers`` processes (forked), each a
    waitress server on its own listening socket of the same port, with ``threads``
    threads, at most ``connection_limit`` connections and its own admission
    (``queue_limit`` posts waiting; ``early_busy``: answered on their headers);
    ``workers=1`` serves in this process.

    The sockets are an SO_REUSEPORT group: the kernel spreads the connections evenly
    over the workers.  (One shared socket does not: the worker whose loop is idle takes
    every connection of a burst, and kiosks that keep their connection open then all
    land on one process: measured, docs/central.md.)  The database is migrated once
    here, before the workers start.  A worker that dies is started again on a new
    socket; SIGTERM or SIGINT stops them all.  ``on_listening(url)`` is called once the
    port listens (the CLI prints the URL: port 0 picks one).

    Each worker keeps its own wrong-token budget (the kernel spreads one address's
    connections over the workers), so each gets ``1/workers`` of the throttle's limit.

    ``fold`` (``offline_queue.central.people``): the published status document holds the
    kiosks' declarations, republished by one more process (with ``workers=1``, a thread)
    that looks for new declarations every ``status_every`` seconds.
    """
    if workers < 1:
        raise ValueError(f"workers is {workers!r}; use 1 or more server processes")
    central_db.connect(db_path).close()  # migrations, once
    if signing_key is None:  # one key for every worker
        signing_key = default_signing_key(db_path)
    first = listening_socket(host, port, reuse_port=workers > 1)
    bound_host, bound_port = first.getsockname()[:2]
    options: dict[str, Any] = dict(
        threads=threads, connection_limit=connection_limit, queue_limit=queue_limit,
        early_busy=early_busy, admin_token=admin_token, validators=validators,
        signing_key=signing_key, trusted_proxy=trusted_proxy,
        throttle=Throttle(limit=max(1, THROTTLE_LIMIT // workers)), fold=fold,
        status_every=status_every)
    url = f"http://{_url_host(bound_host)}:{bound_port}"
    if workers == 1:
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set())
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            server = CentralServer(db_path, sock=first, **options)
            if on_listening is not None:
                on_listening(url)
            server.serve_forever(until=stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return
    # Made one at a time, just before its worker is forked, so that no worker inherits
    # another's socket (which would keep a dead worker's socket, and the connections the
    # kernel gives it, alive).
    sockets = [first]
    if on_listening is not None:
        on_listening(url)
    log.info("central server listening on %s with %d worker processes", url, workers)

    def next_socket() -> socket.socket:
        return sockets.pop() if sockets else listening_socket(host, bound_port,
                                                              reuse_port=True)

    side = None
    if fold is not None:
        def side() -> None:
            assert fold is not None
            _republisher(db_path, fold, validators, status_every)
    _Supervisor(lambda sock: _worker(db_path, sock, {**options, "republish": False}),
                next_socket, workers, side).run()


def _worker(db_path: str | os.PathLike[str], sock: socket.socket,
            options: dict[str, Any]) -> None:
    """A worker process's life: serve until SIGTERM.

    The handler only sets an event the serving loop looks at every turn.  It used to raise
    SystemExit, which a SIGTERM arriving while the worker built its server could have
    raised inside code that swallowed it: that worker then served on, and its supervisor
    waited for it forever (about 1 start in 40 on a loaded machine, bench/central_stop.py).
    """
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server = CentralServer(db_path, sock=sock, **options)
    server.serve_forever(until=stop)


def _republisher(db_path: str | os.PathLike[str], fold: people.Folder,
                 validators: Validators | None, every: float = people.CHECK_EVERY) -> None:
    """The status republisher's process, at a lower CPU priority than the workers
    (``REPUBLISHER_NICE``): until SIGTERM."""
    try:
        os.nice(REPUBLISHER_NICE)
    except OSError as e:  # a restricted container: fold at the workers' priority
        log.warning("cannot lower the status republisher's priority: %s", e)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with people.Republisher(db_path, fold, validators=validators, every=every):
        stop.wait()


class _Supervisor:
    """Forks ``count`` workers, each with a socket of its own (``make_socket``; closed in
    this process once forked: a socket nobody accepts on would strand its connections),
    and, given ``side``, one more process that runs it (the status republisher: its work
    never takes a worker's interpreter lock); starts a dead one again (at most one a
    second), stops them all on SIGTERM/SIGINT."""

    def __init__(self, work: Callable[[socket.socket], None],
                 make_socket: Callable[[], socket.socket], count: int,
                 side: Callable[[], None] | None = None) -> None:
        self.work = work
        self.make_socket = make_socket
        self.count = count
        self.side = side
        self.children: dict[int, bool] = {}  # pid -> is the side process
        self.stopping = False

    def _spawn(self, side: bool = False) -> None:
        sock = None if side else self.make_socket()
        # A child that ran this supervisor's SIGTERM handler (inherited over the fork) would
        # go on serving, and so would one forked after a SIGTERM stopped the others: the
        # supervisor would wait for it forever.  The signals are held from the last look at
        # ``stopping`` across the fork, and the child takes them with the default action
        # (it dies) until it installs its own.
        stops = {signal.SIGTERM, signal.SIGINT}
        held = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        if self.stopping:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            if sock is not None:
                sock.close()
            return
        pid = os.fork()
        if pid == 0:  # the worker
            for sig in stops:
                signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
            code = 0
            try:
                if sock is None:
                    assert self.side is not None
                    self.side()
                else:
                    self.work(sock)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 0
            except BaseException:
                log.exception("central worker %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        if sock is not None:
            sock.close()
        self.children[pid] = side  # before a held SIGTERM runs _stop here
        signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def _stop(self, *_: object) -> None:
        self.stopping = True
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop)
                    for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for _ in range(self.count):
                self._spawn()
            if self.side is not None:
                self._spawn(side=True)
            last_restart = 0.0
            while self.children:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    break
                side = self.children.pop(pid, False)
                if self.stopping:
                    continue
                log.error("central %s %d ended (%s); starting another",
                          "status republisher" if side else "worker", pid, _exit_text(status))
                time.sleep(max(0.0, last_restart + 1.0 - time.monotonic()))
                last_restart = time.monotonic()
                if not self.stopping:
                    self._spawn(side=side)
        finally:
            self._stop()
            for pid in list(self.children):
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
