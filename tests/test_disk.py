"""The one free-disk check (offline_queue.disk) and everyone who reports it agreeing."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections import namedtuple
from pathlib import Path

import pytest
from click.testing import CliRunner

from kiosk import config as config_mod
from kiosk.cli import cli
from kiosk.ops import status as status_mod
from kiosk.ops.selftest import FAIL
from kiosk.ops.selftest import _disk as selftest_disk
from kiosk.runtime.build import build
from offline_queue.disk import DiskWatch, disk_space
from offline_queue.records import CheckIn
from offline_queue.store import Store

MiB = 2**20
Usage = namedtuple("Usage", "total used free")
# A status report with nothing wrong but the part a test puts in.
REPORT_OK = {"queue": {"last_error": None, "reprovision_needed": False,
                       "dead_letter": 0},
             "device": {"server_url": "http://x", "device_token": "present"},
             "under_voltage": {"now": False}, "service": None, "last_provisioning": None}


def kiosk(tmp_path: Path, warn_mb: int) -> Path:
    db = tmp_path / "k.db"
    with Store(db, device_id="kiosk-1", checkpoint_id="LS-1") as store:
        store.record(CheckIn(direction="in", kind="cccd", person_key="001185012345"))
    path = tmp_path / "kiosk.toml"
    path.write_text(f'[store]\npath = "{db}"\ndisk_warn_mb = {warn_mb}\n[ui]\n'
                    f'officer_pin = "4826"\n', encoding="utf-8")
    return path


def test_queue_stats_status_selftest_and_the_screen_agree_the_disk_is_low(tmp_path,
                                                                        monkeypatch):
    """Found in issue 10: ``queue stats`` judged the disk against its own 200 MiB while the
    screen and ``status`` used ``store.disk_warn_mb``: with 300 MiB free and a 500 MiB
    threshold the screen said "disk low" and ``queue stats`` said it was fine."""
    path = kiosk(tmp_path, warn_mb=500)
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda _p: Usage(total=8000 * MiB, used=7700 * MiB, free=300 * MiB))
    cfg = config_mod.load(path, environ={})

    result = CliRunner().invoke(cli, ["queue", "stats", "--config", str(path)])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["disk_free_bytes"] == 300 * MiB
    report = status_mod.collect(cfg)
    assert report["disk"]["free_bytes"] == 300 * MiB
    assert selftest_disk(cfg)[0] == FAIL
    with contextlib.ExitStack() as stack:
        screen = build(cfg, stack, with_camera=False).loop.health().disk_low
    assert stats["disk_low"] is report["disk"]["low"] is screen is True


def test_disk_space_measures_the_nearest_existing_folder(tmp_path):
    space = disk_space(tmp_path / "not" / "yet", low_below=1 << 62)
    assert space.path == str(tmp_path)
    assert space.known and space.free_bytes > 0 and space.total_bytes >= space.free_bytes
    assert space.low and space.error is None
    assert not disk_space(tmp_path, low_below=0).low


def test_an_unreadable_file_system_is_unknown_not_low_and_says_why(tmp_path, monkeypatch):
    def broken(_path):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(shutil, "disk_usage", broken)
    space = disk_space(tmp_path, low_below=1 << 62)
    assert not space.known and not space.low
    assert space.error == f"free space of {str(tmp_path)!r} unknown: Input/output error"
    report = status_mod.disk(tmp_path, 1 << 62)
    assert report["error"] == space.error and report["low"] is False
    assert "Input/output error" in status_mod.problems({
        **REPORT_OK, "disk": report})[0]


def test_a_negative_threshold_is_refused(tmp_path):
    with pytest.raises(ValueError, match="low_below is -1 bytes"):
        disk_space(tmp_path, low_below=-1)


def test_the_watch_measures_at_most_every_interval_and_warns_once(tmp_path, monkeypatch,
                                                                 caplog):
    free = [300 * MiB]
    calls = []

    def usage(path):
        calls.append(path)
        if free[0] is None:
            raise OSError(5, "Input/output error")
        return Usage(total=8000 * MiB, used=0, free=free[0])

    monkeypatch.setattr(shutil, "disk_usage", usage)
    now = [0.0]
    watch = DiskWatch(tmp_path, low_below=500 * MiB, every=30.0, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="offline_queue.disk"):
        assert watch.low() and watch.low()
        assert len(calls) == 1  # the second ask is inside the interval
        now[0] += 30
        assert watch.low() and len(calls) == 2
        free[0] = None  # a failed read keeps the last reading
        now[0] += 30
        assert watch.low() and watch.check().error
        now[0] += 30
        assert watch.low()
        free[0] = 900 * MiB
        now[0] += 30
        assert not watch.low()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [f"disk nearly full: 300 MiB free at {tmp_path} (warning below 500 MiB)",
                        f"free space of {str(tmp_path)!r} unknown: Input/output error"]
