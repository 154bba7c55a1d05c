"""A short kill -9 campaign (the long one is bench/crash.py --kills 200)."""

from __future__ import annotations

import pytest

from bench.crash import campaign


@pytest.mark.slow
def test_kill_9_loses_nothing_and_doubles_nothing(tmp_path):
    report = campaign(12, tmp_path, seed=12, quiet=True)
    assert report["acknowledged"] > 0 and report["server_rows"] >= report["acknowledged"]
    assert report["lost_locally"] == 0, report
    assert report["missing_on_server"] == 0, report
    assert report["unknown_on_server"] == 0, report
    assert report["duplicates_on_server"] == 0, report
    assert report["conflicts"] == 0, report
    assert report["kiosk_quick_check"] == "ok"
    assert report["final_sync_ok"], report
