"""Issue 9 #3b: a USB stick never re-points an enrolled kiosk by itself.

The stick's file is checked and staged; the officer confirms or rejects it on the screen
(tests/test_provision_confirm_screen.py drives that screen); the library calls are tested here
against two real central servers on 127.0.0.1: the kiosk's own and the stick's.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import new_token, snapshot

from kiosk import config as config_mod
from kiosk.errors import ProvisionError
from kiosk.ops import provision as prov
from offline_queue.central import db as central_db

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def other(tmp_path_factory):
    """Another central server: the one a stick points at."""
    from offline_queue.central.server import CentralServer

    path = tmp_path_factory.mktemp("other") / "central.db"
    with CentralServer(path) as server:
        server.db_path = path
        yield server


def devices(server) -> list[str]:
    conn = central_db.connect(server.db_path)
    try:
        return [r[0] for r in conn.execute("SELECT id FROM devices").fetchall()]
    finally:
        conn.close()


@pytest.fixture
def enrolled(central, etc):
    return prov.provision(prov.Request(central.url, new_token(central, "LS-A", "A")),
                          config_path=etc / "kiosk.toml")


class Stick(NamedTuple):
    path: Path  # the stick's mount point
    token: str  # the enrolment token its file holds


@pytest.fixture
def stick(tmp_path, other):
    folder = tmp_path / "media" / "usb-sda1"
    folder.mkdir(parents=True)
    token = new_token(other, "QN-MONGCAI", "Móng Cái")
    (folder / prov.FILE_NAME).write_text(
        f'server_url = "{other.url}"\nenrolment_token = "{token}"\n'
        'checkpoint_name = "Móng Cái"\n', encoding="utf-8")
    return Stick(folder, token)


def kw(etc, tmp_path, stick):
    return dict(globs=[str(stick.path)], config_path=etc / "kiosk.toml",
                state_dir=tmp_path / "state")


def test_a_stick_on_an_enrolled_kiosk_is_staged_not_applied(central, other, etc, enrolled,
                                                            stick, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    before, other_devices = snapshot(etc), devices(other)
    (result,) = prov.import_from_media(**kw(etc, tmp_path, stick))
    assert result.pending and result.server_url == other.url
    assert snapshot(etc) == before  # config and token untouched
    assert devices(other) == other_devices  # nothing sent to the stick's server
    pending = prov.pending_change(tmp_path / "state")
    assert pending is not None and pending.source == f"file {stick.path / prov.FILE_NAME}"
    assert pending.changes()[:2] == [("server_url", central.url, other.url),
                                     ("checkpoint_id", "LS-A", "")]
    assert ("checkpoint_name", "Old name", "Móng Cái") in pending.changes()
    staged = tmp_path / "state" / prov.PENDING_FILE
    assert stat.S_IMODE(staged.stat().st_mode) == 0o600  # it holds the enrolment token
    assert stick.token not in caplog.text and stick.token not in repr(pending)
    assert stick.token not in str(pending.as_dict())
    # The last result (screen, status) is not replaced by a "pending" that did nothing.
    assert prov.last_result(tmp_path / "state") is None
    # Plugged in again: nothing new.
    assert prov.import_from_media(**kw(etc, tmp_path, stick)) == []


def test_rejected_nothing_changes_and_it_is_not_offered_again(etc, enrolled, stick, tmp_path,
                                                              caplog):
    caplog.set_level(logging.INFO, logger="kiosk.ops.provision")
    prov.import_from_media(**kw(etc, tmp_path, stick))
    before = snapshot(etc)
    rejected = prov.reject_pending(tmp_path / "state")
    assert rejected is not None and prov.pending_change(tmp_path / "state") is None
    assert snapshot(etc) == before
    assert "officer rejected provisioning file" in caplog.text
    assert "server_url" in caplog.text and stick.token not in caplog.text
    shown = prov.last_result(tmp_path / "state")
    assert not shown.ok and "rejected" in shown.message
    assert prov.import_from_media(**kw(etc, tmp_path, stick)) == []
    assert prov.reject_pending(tmp_path / "state") is None


def test_confirmed_the_kiosk_moves_and_what_changed_is_logged(other, etc, enrolled, stick,
                                                             tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kiosk.ops.provision")
    prov.import_from_media(**kw(etc, tmp_path, stick))
    result = prov.confirm_pending(tmp_path / "state", config_path=etc / "kiosk.toml")
    assert result.ok and result.checkpoint_id == "QN-MONGCAI"
    assert result.replaced_token == str(etc / "device-token")
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert cfg.sync.server_url == other.url and cfg.device.id in devices(other)
    assert "officer confirmed provisioning file" in caplog.text
    assert f"server_url '{enrolled.server_url}' -> '{other.url}'" in caplog.text
    device_token = (etc / "device-token").read_text().strip()
    for secret in (stick.token, device_token):
        assert secret not in caplog.text
    assert prov.pending_change(tmp_path / "state") is None
    assert prov.last_result(tmp_path / "state") == result
    assert prov.import_from_media(**kw(etc, tmp_path, stick)) == []
    with pytest.raises(ProvisionError, match="no staged provisioning change"):
        prov.confirm_pending(tmp_path / "state", config_path=etc / "kiosk.toml")


def test_a_failed_confirmation_keeps_it_staged_and_the_old_config(other, etc, enrolled, stick,
                                                                  tmp_path):
    prov.import_from_media(**kw(etc, tmp_path, stick))
    conn = central_db.connect(other.db_path)  # the token is spent meanwhile
    conn.execute("UPDATE enrolment_tokens SET used_at = '2026-01-01T00:00:00Z'")
    conn.commit()
    conn.close()
    before = snapshot(etc)
    with pytest.raises(ProvisionError, match="refused the enrolment token"):
        prov.confirm_pending(tmp_path / "state", config_path=etc / "kiosk.toml")
    assert snapshot(etc) == before
    assert prov.pending_change(tmp_path / "state") is not None  # retry or reject


def test_an_unenrolled_kiosk_takes_the_stick_at_once_but_only_https(other, etc, stick,
                                                                    tmp_path):
    (result,) = prov.import_from_media(**kw(etc, tmp_path, stick))
    assert result.ok and not result.pending and result.checkpoint_id == "QN-MONGCAI"
    assert prov.pending_change(tmp_path / "state") is None
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    (rogue / prov.FILE_NAME).write_text(
        'server_url = "http://rogue.example"\nenrolment_token = "enrol-x"\n', encoding="utf-8")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with pytest.raises(ProvisionError, match="plain http.*use https://"):
        prov.import_from_media(globs=[str(rogue)], config_path=fresh / "kiosk.toml",
                               state_dir=tmp_path / "state")
    assert list(fresh.iterdir()) == []


def test_the_unit_command_stages_and_does_not_restart(central, etc, enrolled, stick, tmp_path):
    """What checkpoint-kiosk-provision.service runs when a stick is plugged in."""
    before = snapshot(etc)
    proc = subprocess.run(
        [sys.executable, "-m", "kiosk", "provision", "--from-media", "--media", str(stick.path),
         "--restart-kiosk", "--config", str(etc / "kiosk.toml"), "--state-dir",
         str(tmp_path / "state")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PATH": str(tmp_path / "nobin")})  # a systemctl call would fail
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"staged: file {stick.path / prov.FILE_NAME}: waiting for the "
                                  "officer's confirmation")
    assert snapshot(etc) == before
    assert stick.token not in proc.stdout + proc.stderr


@pytest.mark.parametrize("text", ["", "{not json", '{"request": 3}', '["x"]',
                                  '{"request": {"server_url": "http://rogue.example", '
                                  '"enrolment_token": "e"}, "source": "s", "digest": "d", '
                                  '"token_path": "t", "staged_at": "a", "current": {}}'])
def test_a_damaged_staged_file_is_ignored_and_can_be_cleared(tmp_path, text, caplog):
    state = tmp_path / "state"
    state.mkdir()
    (state / prov.PENDING_FILE).write_text(text, encoding="utf-8")
    assert prov.pending_change(state) is None
    assert prov.pending_change(state) is None
    assert caplog.text.count("is unreadable") == 1  # said once, not every poll
    assert prov.reject_pending(state) is None and not (state / prov.PENDING_FILE).exists()
