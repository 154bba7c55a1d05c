"""The serving central's own log: what a province reads in the journal.

``checkpoint-kiosk central`` configured no logging, so Python dropped its INFO records
(listening, enrolments, documents published, status foldings) and wrote warnings and
errors without their level through its last-resort handler.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_the_serving_central_logs_info_records_with_their_level(tmp_path):
    log_path = tmp_path / "central.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kiosk", "central", "--db", str(tmp_path / "s.db"),
             "--port", "0", "--workers", "2", "--status-every", "1"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("listening on http://127.0.0.1:")
        # Both workers serving, so that both have logged.
        deadline = time.monotonic() + 20
        while log_path.read_text().count("central server listening on") < 3 \
                and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    lines = log_path.read_text(encoding="utf-8").splitlines()
    listening = [line for line in lines if "central server listening on" in line]
    assert listening and " INFO offline_queue.central.server: " in listening[0], lines
    # The key file made beside the database on the first start is said too.
    assert any(" INFO offline_queue.central.keys: created the central's signing key" in line
               for line in lines), lines


_SUPERVISOR = """
import signal, socket, sys, time
from offline_queue.central.server import _Supervisor

slow = sys.argv[1]

def make_socket():
    if slow == "socket":
        time.sleep(0.5)  # the supervisor still forking its workers
    return socket.socket()

def work(sock):
    if slow == "worker":
        time.sleep(1.0)  # a worker not yet at its own SIGTERM handler (a loaded machine)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    time.sleep(60)

print("forking", flush=True)
_Supervisor(work, make_socket, 3).run()
"""


@pytest.mark.parametrize("slow", ["worker", "socket"])
def test_a_central_stopped_while_its_workers_start_exits(tmp_path, slow):
    """SIGTERM while the workers are still starting.  A child that got it before its own
    handler ran the supervisor's (inherited over the fork) and went on serving; and the
    supervisor forked the workers it had not yet forked after it had stopped the others:
    either way it then waited forever (found by the checkpoint day's central stop check:
    a central terminated just after it listened hung under load)."""
    proc = subprocess.Popen([sys.executable, "-c", _SUPERVISOR, slow], cwd=REPO,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "forking\n"
        time.sleep(0.3)  # the first workers forked, not yet at their handler / still forking
        proc.terminate()
        assert proc.wait(timeout=15) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):  # the supervisor and its children
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


_WORKER = """
import os, signal, sys
from offline_queue.central import server

class Finalised:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):  # the handler runs here, inside the finaliser
            pass

build = server.CentralServer.__init__

def building(self, *args, **kwargs):
    Finalised()  # collected at once: SIGTERM while the worker builds its server
    build(self, *args, **kwargs)

server.CentralServer.__init__ = building
sock = server.listening_socket("127.0.0.1", 0)
server._worker(sys.argv[1], sock, {"republish": False})
print("stopped", flush=True)
"""


def test_a_worker_told_to_stop_while_it_builds_its_server_stops(tmp_path):
    """A worker's SIGTERM handler raised SystemExit, which could land in code that swallows
    it (here a finaliser: Python prints "Exception ignored" and goes on); the worker then
    served on and its supervisor waited forever (1 start in 40-80 under load when the
    SIGTERM came within ~50 ms of the workers' start).  Now the handler sets an event
    that the serving loop looks at."""
    proc = subprocess.run([sys.executable, "-c", _WORKER, str(tmp_path / "s.db")], cwd=REPO,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout == "stopped\n", proc.stderr[-2000:]
