"""A stand-in for systemd's end of sd_notify: an AF_UNIX datagram socket in a temp folder."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time


class FakeSystemd:
    """Binds a datagram socket and records every message with its arrival time."""

    def __init__(self) -> None:
        # AF_UNIX paths are limited to 107 bytes: pytest's tmp_path can be longer.
        self._dir = tempfile.TemporaryDirectory(prefix="notify-")
        self.path = os.path.join(self._dir.name, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def env(self, watchdog_usec: int | None = None) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": self.path}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        return env

    def times(self, key: str, since: float = 0.0) -> list[float]:
        with self._lock:
            return [t for t, f in self.messages if key in f and t >= since]

    def values(self, key: str) -> list[str]:
        with self._lock:
            return [f[key] for _, f in self.messages if key in f]

    def wait_for(self, key: str, timeout: float, since: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.times(key, since)
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {key}= within {timeout} s; got {self.messages!r}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        self._dir.cleanup()

    def __enter__(self) -> FakeSystemd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
