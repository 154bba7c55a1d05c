"""Issue 14 #1: the central rotates its key and the kiosks follow without re-enrolling;
a kiosk enrolled before signing pins on first use, with a warning, and never stops.

End to end: the real central server (its key in a file, rotated by the central's own
``rotate-key`` command while it runs), the real sync client and queue database.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kiosk.cli import cli
from offline_queue.central import db as central_db
from offline_queue.central.keys import KeyFile, load_or_create, rotate, rotations_path
from offline_queue.central.server import CentralServer
from offline_queue.outbox import Outbox
from offline_queue.pinned import TOFU
from offline_queue.signing import SignatureError, fingerprint, parse_key, read_keys
from offline_queue.store import Store
from offline_queue.sync import sync_once
from tests.central_helpers import enrol
from tests.faultproxy import FaultProxy


@pytest.fixture
def central(tmp_path, db_target):
    keys = KeyFile(tmp_path / "central.key")
    keys.check_every = 0.0  # the test rotates and publishes at once
    with CentralServer(db_target, signing_key=keys) as server:
        yield server


def publish(db_target, body: bytes) -> None:
    with central_db.connect(db_target) as cdb:
        central_db.set_document(cdb, "policy", body)


def kiosk(tmp_path, device) -> str:
    db = tmp_path / "kiosk.db"
    Store(db, device_id=device["device_id"], checkpoint_id=device["checkpoint_id"]).close()
    return str(db)


def pinned(db) -> str:
    with Outbox(db) as outbox:
        return outbox.meta()["central_key"]


def test_kiosks_follow_rotations_without_re_enrolling(central, tmp_path, db_target):
    device = enrol(central, db_target)
    pin = device["central_key"]["public_key"]
    db = kiosk(tmp_path, device)

    def sync():
        return sync_once(db_path=db, server_url=central.url, token=device["device_token"],
                         central_key=pin)

    publish(db_target, b'{"profile": "border"}')
    assert sync().ok and pinned(db) == pin
    # One rotation through the command line, while the central runs.
    out = CliRunner().invoke(cli, ["central", "--db", str(db_target), "--key-file",
                                   str(tmp_path / "central.key"), "rotate-key"])
    assert out.exit_code == 0, out.output
    second = out.output.strip()
    assert second != fingerprint(parse_key(pin))
    publish(db_target, b'{"profile": "hospital"}')
    result = sync()
    assert result.ok and result.documents_changed == ["policy"], result.error
    assert fingerprint(parse_key(pinned(db))) == second
    # Two more while the kiosk was away: it walks the chain.
    rotate(tmp_path / "central.key")
    fourth = rotate(tmp_path / "central.key")
    publish(db_target, b'{"profile": "border"}')
    assert sync().ok and fingerprint(parse_key(pinned(db))) == fourth.fingerprint
    with Outbox(db) as outbox:
        assert outbox.document("policy").body == b'{"profile": "border"}'
    # A restart with the same config anchor keeps the rotated pin (not back to the first).
    publish(db_target, b'{"profile": "hospital"}')
    assert sync().ok and fingerprint(parse_key(pinned(db))) == fourth.fingerprint


def test_a_forged_rotation_is_refused(central, tmp_path, db_target):
    """A path that adds its own key to the key list (signed by itself, not by the pinned
    key) and signs the document with it: refused, the last good policy stays."""
    device = enrol(central, db_target)
    pin = device["central_key"]["public_key"]
    db = kiosk(tmp_path, device)
    publish(db_target, b'{"profile": "border"}')
    with FaultProxy((central.host, central.port), lambda: "pass") as proxy:
        assert sync_once(db_path=db, server_url=proxy.url, token=device["device_token"],
                         central_key=pin).ok
        publish(db_target, b'{"profile": "hospital"}')
        proxy.choose = lambda: "foreign_key"
        result = sync_once(db_path=db, server_url=proxy.url, token=device["device_token"],
                           central_key=pin)
    assert not result.ok and "no key rotation signed by the pinned key" in result.error
    assert pinned(db) == pin
    with Outbox(db) as outbox:
        assert outbox.document("policy").body == b'{"profile": "border"}'


def test_a_kiosk_enrolled_before_signing_pins_on_first_use_and_warns(central, tmp_path,
                                                                    db_target):
    device = enrol(central, db_target)
    db = kiosk(tmp_path, device)
    publish(db_target, b'{"profile": "border"}')
    # No central_key: the kiosk was provisioned by an older version.
    result = sync_once(db_path=db, server_url=central.url, token=device["device_token"])
    assert result.ok, result.error  # a warning, never a stop
    assert result.documents_changed == ["policy"]
    assert len(result.warnings) == 1 and "trusted on first use" in result.warnings[0]
    assert json.loads(result.as_json())["warnings"] == list(result.warnings)
    with Outbox(db) as outbox:
        meta = outbox.meta()
    assert meta["central_key_anchor"] == TOFU
    assert meta["central_key"] == device["central_key"]["public_key"]
    # From then on it is pinned: a key of the path's own is refused, rotations followed.
    with FaultProxy((central.host, central.port), lambda: "foreign_key") as proxy:
        publish(db_target, b'{"profile": "hospital"}')
        refused = sync_once(db_path=db, server_url=proxy.url, token=device["device_token"])
    assert not refused.ok and "no key rotation signed by the pinned key" in refused.error
    rotate(tmp_path / "central.key")
    assert sync_once(db_path=db, server_url=central.url, token=device["device_token"]).ok
    # Provisioned later with the key: the config's anchor replaces the first-use pin.
    anchor = read_keys(central.app.test_client().get("/v1/keys").get_json())[0]
    from offline_queue.signing import key_text

    after = sync_once(db_path=db, server_url=central.url, token=device["device_token"],
                      central_key=key_text(anchor))
    assert after.ok and after.warnings == ()
    with Outbox(db) as outbox:
        assert outbox.meta()["central_key_anchor"] == key_text(anchor)


def test_the_key_file_is_0600_and_a_cut_rotation_is_finished_or_forgotten(tmp_path):
    path = tmp_path / "k" / "central.key"
    key = load_or_create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create(path).fingerprint == key.fingerprint
    assert "PRIVATE" not in repr(key) and "BEGIN" not in repr(key)
    old_pem = path.read_bytes()
    new = rotate(path)
    # A crash after the rotation was published but before the switch: finished on load.
    (path.with_name(path.name + ".next")).write_bytes(path.read_bytes())
    path.write_bytes(old_pem)
    assert load_or_create(path).fingerprint == new.fingerprint
    assert path.read_bytes() != old_pem
    # A crash before it was published: the half-made key is forgotten.
    stray = load_or_create(tmp_path / "other.key")
    (path.with_name(path.name + ".next")).write_bytes((tmp_path / "other.key").read_bytes())
    assert load_or_create(path).fingerprint == new.fingerprint != stray.fingerprint
    assert not path.with_name(path.name + ".next").exists()
    chain = json.loads(rotations_path(path).read_text())["rotations"]
    assert [r["previous"] for r in chain] == [key.fingerprint]


def test_a_rotation_list_that_does_not_check_out_is_refused():
    keys = {"public_key": "ed25519:" + "A" * 44, "rotations": [{"previous": "0" * 64}]}
    with pytest.raises(SignatureError):
        read_keys(keys)


def test_a_damaged_pin_in_the_database_starts_again_from_the_config_key(central, tmp_path,
                                                                       db_target):
    """A damaged ``sync_meta`` never stops sync (it raised out of sync_once before)."""
    device = enrol(central, db_target)
    pin = device["central_key"]["public_key"]
    db = kiosk(tmp_path, device)
    publish(db_target, b'{"profile": "border"}')
    assert sync_once(db_path=db, server_url=central.url, token=device["device_token"],
                     central_key=pin).ok
    with Outbox(db) as outbox:
        outbox.set_meta(central_key="ed25519:not-base64!")
    publish(db_target, b'{"profile": "hospital"}')
    result = sync_once(db_path=db, server_url=central.url, token=device["device_token"],
                       central_key=pin)
    assert result.ok and result.documents_changed == ["policy"], result.error
    assert pinned(db) == pin
