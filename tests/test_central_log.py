"""The serving central's own log: what a province reads in the journal.

``checkpoint-kiosk central`` configured no logging, so Python dropped its INFO records
(listening, enrolments, documents published, status foldings) and wrote warnings and
errors without their level through its last-resort handler.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
        deadline = time.monotonic() + 20
        while "with 2 worker processes" not in log_path.read_text() \
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
