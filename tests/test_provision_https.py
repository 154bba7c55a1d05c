"""Issue 9 #3a: plain http is refused for any host that is not this machine, wherever a server
URL is accepted (provisioning flags, file, QR; config check; the sync client)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import snapshot

from kiosk import config as config_mod
from kiosk.errors import ConfigError, ProvisionError
from kiosk.ops import provision as prov
from offline_queue.serverurl import check_server_url
from offline_queue.sync import SyncClient

REPO = Path(__file__).resolve().parents[1]
REMOTE_HTTP = ["http://kiosk.example.vn", "http://10.0.0.5:8080", "http://192.168.1.1/api",
               "http://127.0.0.1.evil.example", "http://localhost.evil.example",
               "http://[2001:db8::1]:80", "http://0.0.0.0:8080"]
LOCAL_HTTP = ["http://127.0.0.1:8080", "http://127.5.6.7", "http://[::1]:9000",
              "http://localhost:8080", "http://LOCALHOST"]


@pytest.mark.parametrize("url", REMOTE_HTTP)
def test_plain_http_to_another_host_is_refused_and_says_https(url):
    with pytest.raises(ValueError, match=r"plain http.*use https://") as e:
        check_server_url(url)
    assert repr(url) in str(e.value)
    with pytest.raises(ProvisionError, match="use https://"):
        prov.Request(url, "enrol-x")


@pytest.mark.parametrize("url", LOCAL_HTTP + ["https://kiosk.example.vn", "https://10.0.0.5/x/"])
def test_https_anywhere_and_http_on_this_machine_are_accepted(url):
    assert check_server_url(url) == url.rstrip("/")
    assert prov.Request(url, "enrol-x").server_url == url.rstrip("/")


@pytest.mark.parametrize("url", ["https://user:pw@kiosk.example.vn", "http://127.0.0.1@evil.example",
                                 "https://", "https://host:99999", "ftp://x", "https://a b",
                                 "https://kiosk\x1b[2J.example.vn", "https://evil\u202envxe.vn",
                                 "https://bộ-y-tế.vn"])
def test_malformed_urls_are_refused(url):
    with pytest.raises(ValueError):
        check_server_url(url)


def test_a_file_or_qr_with_plain_http_is_refused_before_anything_changes(etc, tmp_path):
    path = tmp_path / prov.FILE_NAME
    path.write_text('server_url = "http://rogue.example"\nenrolment_token = "enrol-x"\n',
                    encoding="utf-8")
    before = snapshot(etc)
    with pytest.raises(ProvisionError, match="plain http.*use https://"):
        prov.import_file(path, config_path=etc / "kiosk.toml", state_dir=tmp_path / "state")
    with pytest.raises(ProvisionError, match="plain http"):
        prov.from_qr_payload('CKPROV1:{"server_url":"http://rogue.example",'
                             '"enrolment_token":"enrol-x"}')
    proc = subprocess.run([sys.executable, "-m", "kiosk", "provision", "--server",
                           "http://rogue.example", "--token", "enrol-x", "--config",
                           str(etc / "kiosk.toml"), "--state-dir", str(tmp_path / "state")],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1 and "use https://" in proc.stderr
    assert snapshot(etc) == before


def test_config_check_refuses_plain_http_to_another_host(tmp_path):
    path = tmp_path / "kiosk.toml"
    path.write_text('[sync]\nserver_url = "http://rogue.example"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="sync.server_url.*plain http.*use https://"):
        config_mod.load(path, environ={})
    path.write_text('[sync]\nserver_url = "http://127.0.0.1:8080"\n', encoding="utf-8")
    assert config_mod.load(path, environ={}).sync.server_url == "http://127.0.0.1:8080"


def test_the_sync_client_refuses_plain_http_to_another_host():
    with pytest.raises(ValueError, match="plain http.*use https://"):
        SyncClient("http://rogue.example", "dev-x")
    SyncClient("http://127.0.0.1:9", "dev-x").close()


@pytest.mark.parametrize("url", ["http://officer:S3cretPw@127.0.0.1:8080",
                                 "https://officer:S3cretPw@kiosk.example.vn/",
                                 "https://S3cretPw@kiosk.example.vn",
                                 "https://officer:S3cretPw@kiosk example.vn"])
def test_a_url_with_a_password_is_refused_without_repeating_it(url, tmp_path):
    """Issue 14 #5: ``http://user:pw@`` is refused with a message that says why and never
    shows the password (it reaches the screen, the log and status)."""
    with pytest.raises(ValueError) as e:
        check_server_url(url, "sync.server_url")
    assert "S3cretPw" not in str(e.value) and "***@" in str(e.value)
    if " " not in url:
        assert "user name or password" in str(e.value)
    path = tmp_path / prov.FILE_NAME
    path.write_text(f'server_url = "{url}"\nenrolment_token = "enrol-x"\n', encoding="utf-8")
    with pytest.raises(ProvisionError) as p:
        prov.parse_file(path)
    assert "S3cretPw" not in str(p.value)
