"""A fault-injecting HTTP proxy on 127.0.0.1:0 for sync tests.

Each client connection carries one request (the proxy answers ``Connection: close``), so
a fault applies to exactly one request.  Faults: ``drop`` (close without answer),
``reset`` (RST), ``500``, ``429`` (with ``Retry-After``), ``slow`` (delay, then forward),
``truncate`` (forward, then cut the answer's body), ``reset_after`` (forward, the server
acts, then RST: the client never learns the outcome), ``401`` (a proxy or captive portal
refusing the request, the server never sees it), ``400`` (a middlebox's HTML error page
for the whole request), ``drip`` (forward, then send the answer one byte every
``drip_s`` seconds, for at most ``drip_max_s``, then cut it: a slow-drip server).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

# The faults a sync client must ride out on its own (tests draw from these at random) ...
FAULTS = ("pass", "drop", "reset", "500", "429", "slow", "truncate", "reset_after")
# ... and those that need the client to keep trying or to give up in time (issue 9, #4 and #5).
PATH_FAULTS = ("401", "400", "drip")


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    lines = [
        line for line in head.split(b"\r\n")
        if not line.lower().startswith((b"connection:", b"keep-alive:"))
    ]
    return b"\r\n".join(lines) + b"\r\nConnection: close\r\n\r\n" + body


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class FaultProxy:
    """``choose()`` returns the fault for each new request; ``log`` records what was done."""

    def __init__(
        self, upstream: tuple[str, int], choose: Callable[[], str] = lambda: "pass",
        *, slow_s: float = 0.5, retry_after: int = 1, drip_s: float = 8.0,
        drip_max_s: float = 60.0,
    ) -> None:
        self.upstream = upstream
        self.choose = choose
        self.slow_s = slow_s
        self.retry_after = retry_after
        self.drip_s, self.drip_max_s = drip_s, drip_max_s
        self.log: list[tuple[float, str]] = []  # (time.monotonic(), fault)
        self.paths: Counter[str] = Counter()  # "METHOD /path" of every request
        # (seconds the client waited, whether it gave up before the end) per drip
        self.drips: list[tuple[float, bool]] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._stop.is_set():
            self._stop.set()
            # close() alone does not wake a thread blocked in accept() on Linux.
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
            self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _forward(self, request: bytes) -> bytes:
        with socket.create_connection(self.upstream, timeout=30) as up:
            up.sendall(request)
            chunks = []
            while chunk := up.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    # Complexity over 10 on purpose: one branch per injected fault.
    def _handle(self, conn: socket.socket) -> None:  # noqa: C901
        try:
            conn.settimeout(30)
            request = _read_request(conn)
            if request is None:
                conn.close()
                return
            fault = self.choose()
            self.log.append((time.monotonic(), fault))
            method, _, rest = request.partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0]
            self.paths[(method + b" " + path).decode("latin-1")] += 1
            if fault == "drop":
                conn.close()
            elif fault == "reset":
                _reset(conn)
            elif fault == "500":
                body = b'{"error": "injected"}'
                conn.sendall(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )
                conn.close()
            elif fault in ("401", "400"):
                status = (b"401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"proxy\""
                          if fault == "401" else b"400 Bad Request")
                body = b"<html><body><h1>Request blocked by the gateway</h1></body></html>"
                conn.sendall(
                    b"HTTP/1.1 %s\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
                    b"Connection: close\r\n\r\n%s" % (status, len(body), body)
                )
                conn.close()
            elif fault == "429":
                conn.sendall(
                    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: %d\r\n"
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n" % self.retry_after
                )
                conn.close()
            else:
                if fault == "slow":
                    time.sleep(self.slow_s)
                response = self._forward(request)
                if fault == "drip":
                    self._drip(conn, response)
                elif fault == "reset_after":
                    _reset(conn)
                elif fault == "truncate":
                    head, _, body = response.partition(b"\r\n\r\n")
                    conn.sendall(head + b"\r\n\r\n" + body[: len(body) // 2])
                    conn.close()
                else:
                    conn.sendall(response)
                    conn.close()
        except OSError:
            conn.close()

    def _drip(self, conn: socket.socket, response: bytes) -> None:
        started = time.monotonic()
        gave_up = False
        try:
            for i in range(len(response)):
                if self._stop.is_set() or time.monotonic() - started >= self.drip_max_s:
                    break
                conn.sendall(response[i:i + 1])
                # Wait in short turns: the proxy may be closed meanwhile.
                if self._stop.wait(self.drip_s):
                    break
        except OSError:
            gave_up = True  # the client closed its end: it has a deadline
        self.drips.append((time.monotonic() - started, gave_up))
        conn.close()
