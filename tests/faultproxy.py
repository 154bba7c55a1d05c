"""A fault-injecting HTTP proxy on 127.0.0.1:0 for sync tests.

Each client connection carries one request (the proxy answers ``Connection: close``), so
a fault applies to exactly one request.  Faults: ``drop`` (close without answer),
``reset`` (RST), ``500``, ``429`` (with ``Retry-After``), ``slow`` (delay, then forward),
``truncate`` (forward, then cut the answer's body), ``reset_after`` (forward, the server
acts, then RST: the client never learns the outcome), ``401`` (a proxy or captive portal
refusing the request, the server never sees it), ``400`` (a middlebox's HTML error page
for the whole request), ``drip`` (forward, then send the answer one byte every
``drip_s`` seconds, for at most ``drip_max_s``, then cut it: a slow-drip server).

Tampering with signed documents (issue 14), on a document's 200 answer only (any other
request passes untouched, so these mix with the faults above): ``tamper`` (other bytes,
the signature headers kept: ``rewrite(name, body)`` makes them, default a changed byte),
``cut_body`` (the body cut short, Content-Length fixed so the answer looks whole),
``strip_signature`` (the Checkpoint-* headers removed), ``replay`` (the first answer this
proxy saw for that document, an older signed version), ``foreign_key`` (the rewritten body
signed, at a higher version, by a key of the proxy's own).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from offline_queue.signing import KEY_HEADER, SIGNATURE_HEADER, VERSION_HEADER, sign_document

# The faults a sync client must ride out on its own (tests draw from these at random) ...
FAULTS = ("pass", "drop", "reset", "500", "429", "slow", "truncate", "reset_after")
# ... and those that need the client to keep trying or to give up in time (issue 9, #4 and #5).
PATH_FAULTS = ("401", "400", "drip")
# ... and those that change what a document says: the kiosk must refuse every one (issue 14).
TAMPER_FAULTS = ("tamper", "cut_body", "strip_signature", "replay", "foreign_key")
_SIGNATURE_HEADERS = tuple(h.lower().encode() for h in (VERSION_HEADER, KEY_HEADER,
                                                        SIGNATURE_HEADER))
DOCUMENT_PREFIX = b"/v1/documents/"


def flip_a_byte(name: str, body: bytes) -> bytes:
    """The default rewrite: the same length, one byte changed (a digit or a letter)."""
    for i in range(len(body) // 2, len(body)):
        if chr(body[i]).isalnum():
            return body[:i] + (b"1" if body[i:i + 1] != b"1" else b"2") + body[i + 1:]
    return body + b" "


def _split(response: bytes) -> tuple[list[bytes], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _join(lines: list[bytes], body: bytes) -> bytes:
    kept = [line for line in lines if not line.lower().startswith(b"content-length:")]
    return b"\r\n".join([*kept, b"Content-Length: %d" % len(body)]) + b"\r\n\r\n" + body


def _header(lines: list[bytes], name: bytes) -> bytes | None:
    for line in lines[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


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
        rewrite: Callable[[str, bytes], bytes] = flip_a_byte,
        foreign_version_offset: int = 1000,
    ) -> None:
        self.upstream = upstream
        self.choose = choose
        self.rewrite = rewrite
        self.attacker_key = Ed25519PrivateKey.generate()  # foreign_key signs with it
        self.foreign_version_offset = foreign_version_offset
        self.first_answers: dict[bytes, bytes] = {}  # path -> the first 200 seen (replay)
        self.tampered: Counter[str] = Counter()  # fault -> document answers changed
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
                if method == b"GET" and path.startswith(DOCUMENT_PREFIX):
                    response = self._document(path, response, fault)
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

    def _document(self, path: bytes, response: bytes, fault: str) -> bytes:
        """A document's answer as the fault has it (only a 200 is changed)."""
        lines, body = _split(response)
        if b" 200 " not in lines[0] + b" ":
            return response
        self.first_answers.setdefault(path, response)
        if fault not in TAMPER_FAULTS:
            return response
        name = path[len(DOCUMENT_PREFIX):].decode("latin-1")
        self.tampered[fault] += 1
        if fault == "tamper":
            return _join(lines, self.rewrite(name, body))
        if fault == "cut_body":
            return _join(lines, body[: len(body) // 2])
        unsigned = [line for line in lines
                    if not line.lower().startswith(_SIGNATURE_HEADERS)]
        if fault == "strip_signature":
            return _join(unsigned, body)
        if fault == "replay":
            return self.first_answers[path]
        # foreign_key: another body, signed properly, by a key the central never had.
        version = int(_header(lines, VERSION_HEADER.encode()) or b"1") + \
            self.foreign_version_offset
        expires = _header(lines, b"Expires")
        new_body = self.rewrite(name, body)
        signed = sign_document(self.attacker_key, name, version, new_body,
                               expires.decode("latin-1") if expires else None)
        return _join([*unsigned, *(f"{k}: {v}".encode() for k, v in signed.items())],
                     new_body)

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
