"""What pyserial costs against reading the tty by hand, on the same pty, in the same run.

Each round writes one CCCD payload + CR LF to a pty master and times until the reader hands
the line back; CPU is the process time over all rounds.  The plain reader is what we would
write without pyserial: ``os.open`` + ``tty.setraw`` + ``select`` + ``os.read`` into the same
:class:`LineFramer`.  A second figure: a 1 MiB line without terminator (rejected), its time
and the reader's peak Python memory.

    .venv/bin/python -m bench.scanner [--rounds 2000]
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import threading
import time
import tracemalloc
import tty

from hardware.scanner import Line, LineFramer, open_scanner

PAYLOAD = ("001185012345|012345678|Trần Thị Bích Ngọc|14071985|Nữ|"
           "Số 8 Ngõ 12, Phường Láng Hạ, Quận Đống Đa, Hà Nội|10052021").encode() + b"\r\n"


class PlainReader:
    """The hand-written alternative: a raw tty read with select, framed the same way."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.framer = LineFramer()
        self.ready: list[Line] = []

    def read(self, timeout: float = 1.0) -> Line | None:
        deadline = time.monotonic() + timeout
        while not self.ready:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.fd], [], [], min(0.1, left))
            if r:
                data = os.read(self.fd, 4096)
                if not data:
                    raise OSError("device gone")
                self.ready += self.framer.feed(data)
        return self.ready.pop(0)

    def close(self) -> None:
        os.close(self.fd)


def pty_pair() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


def rounds(reader, master: int, n: int) -> tuple[list[float], float]:
    latencies = []
    cpu0 = time.process_time()
    for _ in range(n):
        t0 = time.perf_counter()
        os.write(master, PAYLOAD)
        line = reader.read(2.0)
        latencies.append((time.perf_counter() - t0) * 1000)
        assert line is not None and line.raw == PAYLOAD[:-2]
    return latencies, (time.process_time() - cpu0) / n * 1000


def megabyte(reader, master: int) -> tuple[float, int]:
    junk = b"A" * 2**20 + b"\r\n"  # made before tracing: the reader's memory is measured

    def send() -> None:
        view = memoryview(junk)
        while view:
            view = view[os.write(master, view):]

    writer = threading.Thread(target=send)
    tracemalloc.start()
    t0 = time.perf_counter()
    writer.start()
    line = reader.read(60.0)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    writer.join()
    assert line is not None and line.rejected
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    figures = {}
    for name in ("pyserial", "plain"):
        master, path = pty_pair()
        reader = open_scanner(f"serial:{path}") if name == "pyserial" else PlainReader(path)
        try:
            rounds(reader, master, 50)  # warm up
            lat, cpu = rounds(reader, master, args.rounds)
            mb_s, mb_peak = megabyte(reader, master)
        finally:
            reader.close()
            os.close(master)
        lat.sort()
        figures[name] = (statistics.median(lat), lat[int(len(lat) * 0.95)], cpu, mb_s, mb_peak)
        print(f"{name:9s} line p50 {figures[name][0]:.3f} ms  p95 {figures[name][1]:.3f} ms  "
              f"CPU/line {cpu:.3f} ms  1 MiB junk {mb_s * 1000:.0f} ms, peak {mb_peak} B")
    p, q = figures["pyserial"], figures["plain"]
    print(f"ratio pyserial/plain: p50 {p[0] / q[0]:.2f}x  p95 {p[1] / q[1]:.2f}x  "
          f"CPU {p[2] / q[2]:.2f}x  1 MiB {p[3] / q[3]:.2f}x")


if __name__ == "__main__":
    main()
