"""Provisioning end to end against the reference central server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import stat
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


def cli(*args, stdin: str | None = None, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "kiosk", "provision", *args], cwd=REPO,
                          capture_output=True, text=True, input=stdin, timeout=60,
                          env={**os.environ, **(env or {})})


def test_flags_enrol_and_write_config_and_a_0600_token(central, etc, tmp_path):
    token = new_token(central)
    proc = cli("--server", central.url, "--token", "-", "--name", "Cửa khẩu Hữu Nghị",
               "--checkpoint", "LS-HUUNGHI", "--profile", "border", "--camera",
               "v4l2:/dev/video0", "--pin", "red=5", "--pin", "buzzer=6",
               "--config", str(etc / "kiosk.toml"), "--state-dir", str(tmp_path / "state"),
               stdin=token + "\n")
    assert proc.returncode == 0, proc.stderr
    assert "provisioned: enrolled as kiosk-" in proc.stdout
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert cfg.device.checkpoint_id == "LS-HUUNGHI" and cfg.device.id.startswith("kiosk-")
    assert cfg.device.checkpoint_name == "Cửa khẩu Hữu Nghị"
    assert cfg.sync.server_url == central.url and cfg.camera.spec == "v4l2:/dev/video0"
    assert (cfg.signals.red, cfg.signals.buzzer, cfg.signals.green) == (5, 6, 22)
    assert cfg.ui.language == "en"  # what was there stays
    token_file = Path(cfg.sync.token_file)
    assert token_file == etc / "device-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    device_token = token_file.read_text().strip()
    # The token works: the server knows this device by it.
    conn = central_db.connect(central.db_path)
    assert central_db.device_for_token(conn, device_token).id == cfg.device.id
    conn.close()
    # No secret anywhere in what was printed or saved for the screen.
    saved = (tmp_path / "state" / prov.RESULT_FILE).read_text()
    for secret in (token, device_token):
        assert secret not in proc.stdout + proc.stderr + saved
        assert secret not in (etc / "kiosk.toml").read_text()
    assert json.loads(saved)["ok"] is True


def test_a_used_token_is_refused_and_the_old_config_untouched(central, etc):
    token = new_token(central)
    prov.provision(prov.Request(central.url, token), config_path=etc / "kiosk.toml")
    before = snapshot(etc)
    with pytest.raises(ProvisionError, match="refused the enrolment token .403.*new one") as e:
        prov.provision(prov.Request(central.url, token), config_path=etc / "kiosk.toml",
                       replace_token=True)
    assert token not in str(e.value)
    assert snapshot(etc) == before


def test_a_wrong_token_via_the_cli_is_one_clear_line(central, etc):
    before = snapshot(etc)
    proc = cli("--server", central.url, "--name", "X", "--config", str(etc / "kiosk.toml"),
               "--state-dir", str(etc.parent / "state"),
               env={"CHECKPOINT_KIOSK_ENROLMENT_TOKEN": "enrol-not-a-real-one"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"checkpoint-kiosk: error: the central platform at {central.url} refused the "
        "enrolment token (403: 'enrolment token unknown, already used or expired; ask for a "
        "new one'); tokens work once: ask for a new one"]
    assert "enrol-not-a-real-one" not in proc.stderr + proc.stdout
    assert snapshot(etc) == before


def test_an_unreachable_server_leaves_the_config_and_keeps_the_token_unused(central, etc):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    token = new_token(central)
    before = snapshot(etc)
    with pytest.raises(ProvisionError, match="cannot reach the central platform.*not used"):
        prov.provision(prov.Request(dead, token), config_path=etc / "kiosk.toml", timeout=2)
    assert snapshot(etc) == before
    # The same token still works against the real server.
    result = prov.provision(prov.Request(central.url, token), config_path=etc / "kiosk.toml")
    assert result.ok


def test_an_invalid_setting_fails_before_the_token_is_spent(central, etc):
    token = new_token(central)
    before = snapshot(etc)
    with pytest.raises(ProvisionError, match=r"signals.red = 99 is outside 0..27"):
        prov.provision(prov.Request(central.url, token, pins={"red": 99}),
                       config_path=etc / "kiosk.toml")
    assert snapshot(etc) == before
    assert prov.provision(prov.Request(central.url, token), config_path=etc / "kiosk.toml").ok


def test_a_camera_typo_fails_before_the_token_is_spent(central, etc):
    """Written, it would stop every start of the kiosk (a restart loop, then reboots)."""
    token = new_token(central)
    before = snapshot(etc)
    with pytest.raises(ProvisionError, match=r"camera spec 'picamra2' is not recognised"):
        prov.provision(prov.Request(central.url, token, camera="picamra2"),
                       config_path=etc / "kiosk.toml")
    assert snapshot(etc) == before
    assert prov.provision(prov.Request(central.url, token, camera="picamera2"),
                          config_path=etc / "kiosk.toml").ok


def test_a_token_for_another_checkpoint_is_caught(central, etc):
    token = new_token(central, checkpoint="HN-BVBM")
    before = snapshot(etc)
    with pytest.raises(ProvisionError, match="belongs to checkpoint 'HN-BVBM', not 'LS-1'"):
        prov.provision(prov.Request(central.url, token, checkpoint_id="LS-1"),
                       config_path=etc / "kiosk.toml")
    assert snapshot(etc) == before


MALFORMED = [
    ("server_url = 'https://x'\nenrolment_token = 'a'\nserver = 'y'\n", "unknown key 'server'"),
    ("server_url = 'https://x'\n", "'enrolment_token' is missing"),
    ("server_url = 'ftp://x'\nenrolment_token = 'a'\n", "server URL 'ftp://x' is not valid"),
    ("server_url = 'https://x'\nenrolment_token = 'a'\npolicy_profile = 'airport'\n",
     "policy profile 'airport' is unknown; choose one of"),
    ("server_url = 'https://x'\nenrolment_token = 42\n", "enrolment_token = <hidden> must be"),
    ("server_url = 'https://x\nenrolment_token = 'a'\n", "is not valid TOML"),
    ('server_url = "https://x"\nenrolment_token = "a"\ncheckpoint_name = "A\\u202eB"\n',
     r"checkpoint_name 'A\\u202eB' must be one line of plain text"),
    ('server_url = "https://x"\nenrolment_token = "a"\ncheckpoint_id = "A\\u001b[2J"\n',
     r"checkpoint_id 'A\\x1b\[2J' must be one line of plain text"),
    ("server_url = 'https://x'\nenrolment_token = 'a'\n[pins]\nred = 'GPIO5'\n",
     "pins = {'red': 'GPIO5'} must be a table of BCM pin numbers"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED)
def test_a_malformed_file_is_a_clear_error_and_nothing_changes(etc, tmp_path, text, message):
    path = tmp_path / prov.FILE_NAME
    path.write_text(text, encoding="utf-8")
    before = snapshot(etc)
    with pytest.raises(ProvisionError, match=message) as e:
        prov.import_file(path, config_path=etc / "kiosk.toml", state_dir=tmp_path / "state")
    assert str(path) in str(e.value)
    assert snapshot(etc) == before
    shown = prov.last_result(tmp_path / "state")  # what the screen shows
    assert shown is not None and not shown.ok and message.split("'")[0] in shown.message


def test_file_on_media_is_imported_once_and_the_result_kept_for_the_screen(central, etc,
                                                                           tmp_path):
    boot = tmp_path / "boot"
    boot.mkdir()
    token = new_token(central, checkpoint="QN-MONGCAI", name="Móng Cái")
    (boot / prov.FILE_NAME).write_text(
        f'server_url = "{central.url}"\nenrolment_token = "{token}"\n'
        'checkpoint_name = "Móng Cái"\npolicy_profile = "hospital"\n[pins]\ngreen = 12\n',
        encoding="utf-8")
    kw = dict(globs=[str(boot)], config_path=etc / "kiosk.toml", state_dir=tmp_path / "state")
    (result,) = prov.import_from_media(**kw)
    assert result.ok and result.checkpoint_id == "QN-MONGCAI"
    assert prov.last_result(tmp_path / "state") == result
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert cfg.policy["profile"] == "hospital" and cfg.signals.green == 12
    assert prov.import_from_media(**kw) == []  # the next boot does not try again


def test_provisioning_qr_round_trip_through_a_real_decoder(central, etc):
    from hardware.qr import open_decoder
    from kiosk.testing.samples import qr_image

    token = new_token(central)
    request = prov.Request(central.url, token, checkpoint_name="Hữu Nghị", camera="picamera2")
    payload = prov.qr_payload(request)
    assert token not in repr(request)
    import numpy as np

    with open_decoder("auto") as decoder:
        (code,) = decoder.decode(np.asarray(qr_image(payload, module_px=3)))
    assert prov.is_provisioning_qr(code.text)
    assert prov.from_qr_payload(code.raw) == request
    assert prov.provision(prov.from_qr_payload(code.text), config_path=etc / "kiosk.toml",
                          source="QR").ok
    cfg = tomllib.loads((etc / "kiosk.toml").read_text())
    assert cfg["device"]["checkpoint_name"] == "Hữu Nghị"


@pytest.mark.parametrize(("payload", "message"), [
    ("NC:001185012345", "not a provisioning code"),
    ("CKPROV1:{not json", "damaged"),
    ('CKPROV1:["x"]', "no settings object"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_a_bad_provisioning_qr_says_so(payload, message):
    with pytest.raises(ProvisionError, match=message):
        prov.from_qr_payload(payload)


def test_toml_writer_round_trips_config_shapes():
    data = {"device": {"checkpoint_name": 'Cửa "khẩu"\\ 1'}, "signals": {"gate": 4},
            "policy": {"profile": "border", "accepted": ["cccd", "eu_dcc"],
                       "limits": {"max_age_hours": 72.5, "strict": True}}}
    assert tomllib.loads(prov.dumps_toml(data)) == data


def test_a_hostile_servers_words_cannot_forge_a_log_line(etc, caplog):
    """Its error text is quoted and escaped wherever it goes (issue 9 #14)."""
    import http.server
    import threading

    forged = "no\n2026-12-04 INFO kiosk.ops.provision: enrolled as kiosk-evil\x1b[2J\u202e"

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"error": forged}).encode()
            self.send_response(403)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(ProvisionError) as e:
            prov.provision(prov.Request(url, "enrol-x"), config_path=etc / "kiosk.toml")
    finally:
        server.shutdown()
        server.server_close()
    message = str(e.value)
    assert "\n" not in message and "\x1b" not in message and "\u202e" not in message
    assert "'no\\n2026-12-04 INFO kiosk.ops.provision: enrolled as kiosk-evil\\x1b[2J\\u202e'" \
        in message
