"""Issue 14 #1: the provisioning QR and file carry the central's key fingerprint; the kiosk
enrols only with a central that holds that key (or a key it rotated to), checked before
the one-time token is spent, and pins the key in its config."""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from conftest import snapshot

from kiosk import config as config_mod
from kiosk.errors import ProvisionError
from kiosk.ops import provision as prov
from offline_queue.central import db as central_db
from offline_queue.central.keys import KeyFile, rotate
from offline_queue.central.server import CentralServer
from offline_queue.outbox import Outbox
from offline_queue.records import CheckIn
from offline_queue.signing import fingerprint, parse_key
from offline_queue.store import Store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def central(tmp_path):
    keys = KeyFile(tmp_path / "central.key")
    keys.check_every = 0.0
    with CentralServer(tmp_path / "central.db", signing_key=keys) as server:
        server.keys = keys
        yield server


def token(central, tmp_path) -> str:
    with central_db.connect(tmp_path / "central.db") as cdb:
        return central_db.create_enrolment_token(cdb, checkpoint_id="LS-1", name="LS 1")


def qr(central, tmp_path, fp: str) -> prov.Request:
    text = prov.qr_payload(prov.Request(central.url, token(central, tmp_path),
                                        checkpoint_name="Cổng 1", central_key=fp))
    assert '"central_key":"' + fp.replace(":", "").lower() + '"' in text
    return prov.from_qr_payload(text)


def test_a_qr_with_the_central_s_fingerprint_enrols_and_pins_the_key(central, tmp_path, etc):
    fp = central.keys.fingerprint
    # Printed in groups, as a person might copy it: still the same fingerprint.
    grouped = ":".join(fp[i:i + 4] for i in range(0, 64, 4)).upper()
    result = prov.provision(qr(central, tmp_path, grouped), config_path=etc / "kiosk.toml",
                            store_path=tmp_path / "none.db")
    assert result.ok and result.central_key == fp and result.central_key_checked
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert fingerprint(parse_key(cfg.sync.central_key)) == fp


def test_the_wrong_central_is_refused_before_the_token_is_spent(central, tmp_path, etc):
    before = snapshot(etc)
    request = qr(central, tmp_path, "ab" * 32)
    with pytest.raises(ProvisionError) as e:
        prov.provision(request, config_path=etc / "kiosk.toml", store_path=tmp_path / "n.db")
    text = str(e.value)
    assert "is not the central the provisioning names" in text and "ab" * 32 in text
    assert "token was not used" in text and request.enrolment_token not in text
    assert snapshot(etc) == before
    # Indeed unused: the right central's technician can still use it.
    answer = requests.post(central.url + "/v1/devices/enrol",
                           json={"enrolment_token": request.enrolment_token}, timeout=5)
    assert answer.status_code == 201


def test_a_qr_printed_before_a_rotation_still_enrols_and_pins_the_new_key(central, tmp_path,
                                                                          etc):
    first = central.keys.fingerprint
    rotate(tmp_path / "central.key")
    newest = rotate(tmp_path / "central.key")
    result = prov.provision(qr(central, tmp_path, first), config_path=etc / "kiosk.toml",
                            store_path=tmp_path / "n.db")
    assert result.central_key == newest.fingerprint and result.central_key_checked
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert fingerprint(parse_key(cfg.sync.central_key)) == newest.fingerprint


def test_without_a_fingerprint_the_key_is_pinned_on_trust_and_logged(central, tmp_path, etc,
                                                                     caplog):
    request = prov.Request(central.url, token(central, tmp_path))
    with caplog.at_level(logging.WARNING, logger="kiosk.ops.provision"):
        result = prov.provision(request, config_path=etc / "kiosk.toml",
                                store_path=tmp_path / "n.db")
    assert result.ok and not result.central_key_checked
    assert result.central_key == central.keys.fingerprint
    assert any("without a central key fingerprint" in r.getMessage()
               and central.keys.fingerprint in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value", ["abc", "z" * 64, "ab" * 33])
def test_a_malformed_fingerprint_is_named_before_anything_is_sent(value, tmp_path):
    path = tmp_path / prov.FILE_NAME
    path.write_text(f'server_url = "https://central.example"\nenrolment_token = "enrol-x"\n'
                    f'central_key = "{value}"\n', encoding="utf-8")
    with pytest.raises(ProvisionError, match="central_key") as e:
        prov.parse_file(path)
    assert "64 hex digits" in str(e.value)


def _provision_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk", "provision", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_the_technician_names_the_central_s_key_on_the_command_line(central, tmp_path, etc):
    """--central-key with --server: the same check as a QR's fingerprint."""
    common = ["--server", central.url, "--name", "Cổng 1", "--config", str(etc / "kiosk.toml"),
              "--state-dir", str(tmp_path / "state")]
    before = snapshot(etc)
    wrong = _provision_cli(*common, "--token", token(central, tmp_path),
                           "--central-key", "cd" * 32)
    assert wrong.returncode != 0
    assert "is not the central the provisioning names" in wrong.stderr, wrong.stderr
    assert snapshot(etc) == before
    fp = central.keys.fingerprint
    right = _provision_cli(*common, "--token", token(central, tmp_path), "--central-key", fp)
    assert right.returncode == 0, right.stderr
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    assert fingerprint(parse_key(cfg.sync.central_key)) == fp


def test_a_qr_and_a_central_key_flag_together_are_refused(tmp_path, etc):
    proc = _provision_cli("--qr", "{}", "--central-key", "ab" * 32,
                          "--config", str(etc / "kiosk.toml"))
    assert proc.returncode == 2 and "--central-key goes with --server" in proc.stderr


def test_the_first_check_in_after_enrolment_is_sealed_without_a_sync(central, tmp_path, etc):
    """The enrolment answer carries the central's sealing key, signed by the key just
    pinned: provisioning keeps it in the queue, so no identity waits in RAM (where a
    restart before the first sync would lose it)."""
    store_path = tmp_path / "state" / "checkins.db"
    store_path.parent.mkdir()  # made by systemd (StateDirectory) on the appliance
    result = prov.provision(qr(central, tmp_path, central.keys.fingerprint),
                            config_path=etc / "kiosk.toml", store_path=store_path)
    assert result.ok
    cfg = config_mod.load(etc / "kiosk.toml", environ={})
    with Store(store_path, device_id=cfg.device.id,
               checkpoint_id=cfg.device.checkpoint_id) as store:
        store.record(CheckIn(direction="in", kind="cccd", person_key="001085012345",
                             decision="pass"))
    with sqlite3.connect(store_path) as db:
        assert db.execute("SELECT identity, person_key FROM checkins").fetchall() == [
            ("sealed", None)]


def test_a_sealing_key_not_signed_by_the_pinned_key_is_not_kept(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from offline_queue.central.keys import CentralKey

    store_path = tmp_path / "checkins.db"
    stranger = CentralKey.generate().keys_answer()["sealing_key"]
    pin = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert prov._keep_sealing_key(store_path, stranger, pin, owner=None) is None
    assert not store_path.exists() or "sealing_key" not in Outbox(store_path).meta()


SSL_TEXT = ("HTTPSConnectionPool(host='central.example.vn', port=443): Max retries exceeded "
            "with url: /v1/keys (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
            "CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local issuer "
            "certificate (_ssl.c:992)')))")


class _UntrustedTLS(requests.Session):
    """A session whose every request fails as requests does on a certificate the kiosk
    does not trust (the province's own CA, no --ca-bundle)."""

    def request(self, *args, **kwargs):  # type: ignore[override]
        raise requests.exceptions.SSLError(SSL_TEXT)


@pytest.mark.parametrize("step", ["keys", "enrol"])
def test_a_certificate_the_kiosk_does_not_trust_is_named_with_the_way_out(step):
    """bench/central_setup.py, a kiosk without the province's CA: reading the central's key
    said only 'SSLError; check the URL, the network and that the server is up' (the server
    was up).  Both requests before the token is spent say it is TLS, why, and --ca-bundle."""
    request = prov.Request("https://central.example.vn", "enrol-x" * 4, central_key="ab" * 32)
    with pytest.raises(ProvisionError) as e:
        if step == "keys":
            prov.check_central_key(request, session=_UntrustedTLS())
        else:
            prov.enrol(request, session=_UntrustedTLS())
    text = str(e.value)
    path = "/v1/keys" if step == "keys" else "/v1/devices/enrol"
    assert text.startswith(f"TLS error talking to https://central.example.vn{path}: "
                           "certificate verify failed: unable to get local issuer "
                           "certificate; "), text
    assert "--ca-bundle" in text and "not yet valid" in text
    assert text.endswith("(the enrolment token was not used)") and "enrol-x" not in text
