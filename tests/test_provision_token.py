"""Issue 9 #2: the device token goes where it is told, and an existing one is never replaced
without saying so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import new_token, snapshot

from kiosk import config as config_mod
from kiosk.errors import ProvisionError
from kiosk.ops import provision as prov
from offline_queue.central import db as central_db

REPO = Path(__file__).resolve().parents[1]


def cli(*args, cwd=REPO, stdin=None):
    return subprocess.run([sys.executable, "-m", "kiosk", "provision", *args], cwd=cwd,
                          capture_output=True, text=True, input=stdin, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def device_of(central, token_file: Path) -> str | None:
    conn = central_db.connect(central.db_path)
    try:
        device = central_db.device_for_token(conn, token_file.read_text().strip())
    finally:
        conn.close()
    return device.id if device else None


@pytest.fixture
def kiosk_a(central, etc):
    """Kiosk A, enrolled, its token in etc/device-token (the default beside its config)."""
    result = prov.provision(prov.Request(central.url, new_token(central, "LS-A", "A")),
                            config_path=etc / "kiosk.toml")
    assert Path(config_mod.load(etc / "kiosk.toml", environ={}).sync.token_file) == \
        etc / "device-token"
    return result


def provision_file(tmp_path, central, checkpoint: str) -> Path:
    path = tmp_path / f"{checkpoint}.toml"
    path.write_text(f'server_url = "{central.url}"\n'
                    f'enrolment_token = "{new_token(central, checkpoint, checkpoint)}"\n',
                    encoding="utf-8")
    return path


def test_file_with_token_file_writes_that_file_and_names_it(central, etc, kiosk_a, tmp_path):
    """The trial: kiosk B provisioned beside A with --file and --token-file replaced A's token."""
    a_token = (etc / "device-token").read_text()
    b_token_file = etc / "b-token"
    proc = cli("--file", str(provision_file(tmp_path, central, "LS-B")),
               "--token-file", str(b_token_file), "--config", str(etc / "b.toml"),
               "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stderr
    assert (etc / "device-token").read_text() == a_token  # A untouched
    assert device_of(central, etc / "device-token") == kiosk_a.device_id
    cfg = config_mod.load(etc / "b.toml", environ={})
    assert Path(cfg.sync.token_file) == b_token_file
    assert device_of(central, b_token_file) == cfg.device.id != kiosk_a.device_id


def test_a_relative_token_file_is_written_as_an_absolute_path(central, etc, tmp_path):
    """The kiosk service runs elsewhere: a relative path in the config would name another file."""
    work = tmp_path / "work"
    work.mkdir()
    proc = cli("--file", str(provision_file(tmp_path, central, "LS-R")), "--token-file",
               "tok", "--config", str(etc / "kiosk.toml"), "--state-dir",
               str(tmp_path / "state"), cwd=work)
    assert proc.returncode == 0, proc.stderr
    written = tomllib.loads((etc / "kiosk.toml").read_text())["sync"]["token_file"]
    assert written == str(work / "tok") and (work / "tok").is_file()


@pytest.mark.parametrize("way", ["flags", "file", "qr"])
def test_an_existing_token_is_not_replaced_without_replace_token(central, etc, kiosk_a, tmp_path,
                                                                 way):
    token = new_token(central, "LS-B", "B")
    request = prov.Request(central.url, token)
    args = {"flags": ["--server", central.url, "--token", "-"],
            "file": ["--file", str(provision_file(tmp_path, central, "LS-B"))],
            "qr": ["--qr", prov.qr_payload(request)]}[way]
    before = snapshot(etc)
    proc = cli(*args, "--config", str(etc / "kiosk.toml"), "--state-dir",
               str(tmp_path / "state"), stdin=token + "\n")
    assert proc.returncode == 1
    assert str(etc / "device-token") in proc.stderr and "--replace-token" in proc.stderr
    assert kiosk_a.device_id in proc.stderr  # whose token it is
    assert snapshot(etc) == before
    assert token not in proc.stderr + proc.stdout
    # Nothing was spent: the same enrolment works once the technician says so.
    proc = cli(*args, "--replace-token", "--config", str(etc / "kiosk.toml"), "--state-dir",
               str(tmp_path / "state"), stdin=token + "\n")
    assert proc.returncode == 0, proc.stderr
    assert f"replaced:   device token in {etc / 'device-token'}" in proc.stdout
    assert kiosk_a.device_id in proc.stdout
    assert device_of(central, etc / "device-token") != kiosk_a.device_id
    assert (etc / "device-token").read_text().strip() not in proc.stdout + proc.stderr


def test_the_library_refuses_and_logs_what_it_replaced(central, etc, kiosk_a, caplog):
    caplog.set_level(logging.INFO, logger="kiosk.ops.provision")
    token = new_token(central, "LS-A", "A")
    with pytest.raises(ProvisionError, match="already holds a device token"):
        prov.provision(prov.Request(central.url, token), config_path=etc / "kiosk.toml")
    result = prov.provision(prov.Request(central.url, token), config_path=etc / "kiosk.toml",
                            replace_token=True)
    assert result.replaced_token == str(etc / "device-token")
    assert f"replaced the device token in {etc / 'device-token'}" in caplog.text
    assert kiosk_a.device_id in caplog.text
    assert (etc / "device-token").read_text().strip() not in caplog.text


def test_the_token_file_cannot_be_the_config(central, etc):
    with pytest.raises(ProvisionError, match="token file .* is the config file"):
        prov.provision(prov.Request(central.url, new_token(central)),
                       config_path=etc / "kiosk.toml", token_path=etc / "kiosk.toml")


def test_from_media_and_qr_honour_the_token_file_too(central, etc, kiosk_a, tmp_path):
    """Every way in: a fresh config beside kiosk A, its token in a file of its own."""
    stick = tmp_path / "usb"
    stick.mkdir()
    provision_file(tmp_path, central, "LS-M").rename(stick / prov.FILE_NAME)
    proc = cli("--from-media", "--media", str(stick), "--token-file", str(etc / "m-token"),
               "--config", str(etc / "m.toml"), "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stderr
    assert device_of(central, etc / "m-token") == \
        config_mod.load(etc / "m.toml", environ={}).device.id
    token = new_token(central, "LS-Q", "Q")
    proc = cli("--qr", prov.qr_payload(prov.Request(central.url, token)), "--token-file",
               str(etc / "q-token"), "--config", str(etc / "q.toml"), "--state-dir",
               str(tmp_path / "state"))
    assert proc.returncode == 0, proc.stderr
    assert Path(config_mod.load(etc / "q.toml", environ={}).sync.token_file) == etc / "q-token"
    assert device_of(central, etc / "device-token") == kiosk_a.device_id  # A untouched


def test_a_staged_stick_keeps_the_token_file_it_was_staged_with(central, etc, kiosk_a,
                                                                 tmp_path):
    stick = tmp_path / "usb"
    stick.mkdir()
    provision_file(tmp_path, central, "LS-S").rename(stick / prov.FILE_NAME)
    (result,) = prov.import_from_media(globs=[str(stick)], config_path=etc / "kiosk.toml",
                                       state_dir=tmp_path / "state",
                                       token_path=etc / "s-token")
    assert result.pending
    assert prov.pending_change(tmp_path / "state").token_path == str(etc / "s-token")
    prov.confirm_pending(tmp_path / "state", config_path=etc / "kiosk.toml")
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert Path(cfg.sync.token_file) == etc / "s-token"
    assert device_of(central, etc / "s-token") == cfg.device.id
