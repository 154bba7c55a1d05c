"""Small real HTTP servers on 127.0.0.1:0 for the sync tests: a status-injecting proxy in
front of the reference central, a slow-drip server and a scripted JSON server."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime

from offline_queue.store import Store, read_stats
from tests.faultproxy import FaultProxy, _read_request


def queue_stats(store: Store) -> dict:
    """What ``checkpoint-kiosk queue stats`` prints for this store's database, at its clock."""
    return read_stats(store.path, disk_low_below=0, now=store.clock.now())


def _answer(conn: socket.socket, status: int, body: bytes, headers: dict[str, str] | None = None
            ) -> None:
    head = [f"HTTP/1.1 {status} X", "Content-Type: application/json",
            f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


class StatusProxy(FaultProxy):
    """FaultProxy whose ``choose()`` may also return an HTTP status such as ``"401"``,
    answered by the proxy itself (a middlebox), with ``error_text`` as the JSON error."""

    error_text = "refused by a middlebox"

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            request = _read_request(conn)
            if request is None:
                conn.close()
                return
            fault = self.choose()
            self.log.append((time.monotonic(), fault))
            if fault.isdigit():
                _answer(conn, int(fault), json.dumps({"error": self.error_text}).encode())
            else:
                conn.sendall(self._forward(request))
            conn.close()
        except OSError:
            conn.close()


class DripServer:
    """Answers every request by sending its head at once (or dripping it when
    ``drip_head``), then the body ``chunk`` bytes every ``interval`` s, for at most ``limit``
    s; the body is ``size`` bytes of a valid check-in answer."""

    def __init__(self, *, interval: float = 0.5, limit: float = 12.0, drip_head: bool = False,
                 chunk: int = 1, size: int = 4015) -> None:
        self.interval, self.limit, self.drip_head = interval, limit, drip_head
        self.chunk, self.size = chunk, size
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> DripServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if _read_request(conn) is None:
                    return
                self.requests += 1
                body = b'{"results": []}'
                body += b" " * (self.size - len(body))
                head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body))
                data = head + body if self.drip_head else body
                if not self.drip_head:
                    conn.sendall(head)
                ends = time.monotonic() + self.limit
                for start in range(0, len(data), self.chunk):
                    if self._stop.is_set() or time.monotonic() > ends:
                        return
                    conn.sendall(data[start:start + self.chunk])
                    time.sleep(self.interval)
            except OSError:
                return


class ScriptedServer:
    """A JSON server: ``answer(method, path, body) -> (status, json, headers)``; the
    ``Date`` header is the real time unless ``date`` is given."""

    def __init__(self, answer: Callable[[str, str, object], tuple[int, object, dict]]) -> None:
        self.answer = answer
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.seen: list[tuple[str, str, object]] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                request = _read_request(conn)
                if request is None:
                    return
                head, _, raw = request.partition(b"\r\n\r\n")
                method, path, _ = head.split(b"\r\n")[0].decode().split(" ", 2)
                body = json.loads(raw) if raw.strip() else None
                self.seen.append((method, path, body))
                status, answer, headers = self.answer(method, path, body)
                headers = {"Date": format_datetime(datetime.now(UTC), usegmt=True), **headers}
                _answer(conn, status, json.dumps(answer).encode(), headers)
            except OSError:
                return


def give_sealing_key(db_path, central_url: str | None = None) -> None:
    """What a kiosk's first sync does before it records (docs/privacy.md): keep the
    central's sealing key, so identities are sealed at once rather than held in this
    process's memory (which a ``sync --once`` in another process cannot reach).  Without
    ``central_url`` (a scripted server that opens nothing) a key of the test's own."""
    import json as json_

    import requests as requests_
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from offline_queue.outbox import Outbox
    from offline_queue.sealing import SealingKey, raw_public
    from offline_queue.store import SEALING_KEY_META

    if central_url is None:
        key = SealingKey(raw_public(X25519PrivateKey.generate()), "2026-01-01T00:00:00Z")
    else:
        answer = requests_.get(central_url + "/v1/keys", timeout=5).json()
        key = SealingKey.from_json(answer["sealing_key"])
    with Outbox(db_path) as outbox:
        outbox.set_meta(**{SEALING_KEY_META: json_.dumps(key.as_json(), sort_keys=True)})
