"""Issue 14 item 3: no identity in clear at rest on the kiosk; the central opens sealed
identities on ingest and keeps aside those it cannot open (docs/privacy.md)."""

from __future__ import annotations

import base64
import json
import sqlite3
import uuid
from datetime import UTC, datetime

import pytest
from central_helpers import item
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from privacy_scan import assert_no_identifiers, find_identifiers, spellings

from offline_queue import wire
from offline_queue.central import db as central_db
from offline_queue.central.keys import (
    CentralKey,
    load_or_create,
    rotate_sealing,
    sealing_path,
)
from offline_queue.outbox import Outbox
from offline_queue.records import CheckIn
from offline_queue.sealing import (
    Opener,
    Sealer,
    SealError,
    SealingKey,
    aad_for,
    key_id,
    raw_public,
    read_signed_key,
    verify_signed_key,
)
from offline_queue.signing import public_bytes
from offline_queue.store import HELD, SEALING_KEY_META, Store

CCCD = "001185012345"


def new_key() -> tuple[X25519PrivateKey, SealingKey, Opener]:
    private = X25519PrivateKey.generate()
    public = SealingKey(raw_public(private), "2026-01-01T00:00:00.000000Z")
    return private, public, Opener({public.id: private})


def give_key(db_path, key: SealingKey) -> None:
    """What the sync worker does once the pinned central key vouched for ``key``."""
    with Outbox(db_path) as outbox:
        outbox.set_meta(**{SEALING_KEY_META: json.dumps(key.as_json(), sort_keys=True)})


def entry(person_key: str | None = CCCD, **kw) -> CheckIn:
    return CheckIn("in", "cccd", person_key, {"id": "********2345"}, "pass", **kw)


# -- the construction --------------------------------------------------------------------------


def test_sealed_identity_opens_only_with_its_key_and_for_its_row():
    _, public, opener = new_key()
    text = Sealer(public).seal({"person_key": CCCD}, aad_for("id-1", "kiosk-1"))
    assert CCCD not in text and text.startswith(f"seal1.{public.id}.")
    assert opener.open(text, aad_for("id-1", "kiosk-1")) == {"person_key": CCCD}
    with pytest.raises(SealError, match="moved from another check-in"):
        opener.open(text, aad_for("id-2", "kiosk-1"))
    with pytest.raises(SealError, match="does not hold"):
        new_key()[2].open(text, aad_for("id-1", "kiosk-1"))
    head, last = text.rsplit(".", 1)
    flipped = head + "." + ("A" if last[5] != "A" else "B").join((last[:5], last[6:]))
    with pytest.raises(SealError, match="changed in transit"):
        opener.open(flipped, aad_for("id-1", "kiosk-1"))
    with pytest.raises(SealError, match="cut short"):
        opener.open(text[:-40], aad_for("id-1", "kiosk-1"))
    with pytest.raises(SealError, match="four parts"):
        opener.open(text.rsplit(".", 1)[0], aad_for("id-1", "kiosk-1"))


def test_a_session_is_derived_once_and_a_cached_one_still_checks_every_row():
    """The central's opener derives a kiosk session's key once (an X25519), then opens each
    row of it with the cached AEAD: a changed, moved or malformed row is still refused."""
    _, public, opener = new_key()
    sealer = Sealer(public)
    texts = [sealer.seal({"person_key": f"00118501{i:04d}"}, aad_for(f"id-{i}", "k"))
             for i in range(50)]
    assert [opener.open(t, aad_for(f"id-{i}", "k")) for i, t in enumerate(texts)] == [
        {"person_key": f"00118501{i:04d}"} for i in range(50)]
    assert opener.derived == 1
    Sealer(public).seal({"person_key": CCCD}, b"")  # another kiosk's session: not opened yet
    other = Sealer(public).seal({"person_key": CCCD}, aad_for("id-x", "k2"))
    assert opener.open(other, aad_for("id-x", "k2")) == {"person_key": CCCD}
    assert opener.derived == 2
    with pytest.raises(SealError, match="moved from another check-in"):
        opener.open(texts[1], aad_for("id-2", "k"))  # the session is cached, the row is wrong
    head, last = texts[3].rsplit(".", 1)
    with pytest.raises(SealError, match="too short"):
        opener.open(head + "." + last[:20], aad_for("id-3", "k"))
    kid, ephemeral = texts[0].split(".")[1:3]
    with pytest.raises(SealError, match="not 16 hex digits"):
        opener.open(texts[0].replace(kid, "XYZ", 1), aad_for("id-0", "k"))
    with pytest.raises(SealError, match="ephemeral key has 24 bytes"):
        opener.open(texts[0].replace(ephemeral, ephemeral[:32], 1), aad_for("id-0", "k"))
    # A full cache drops the least recently used session; it is derived again when needed.
    opener.CACHE = 1
    third = Sealer(public).seal({"person_key": CCCD}, aad_for("id-y", "k3"))
    opener.open(third, aad_for("id-y", "k3"))
    assert opener.derived == 3
    assert opener.open(texts[0], aad_for("id-0", "k")) == {"person_key": "001185010000"}
    assert opener.derived == 4


def test_a_substituted_sealing_key_is_refused():
    """The central's signing key vouches for the sealing key; a man in the middle who
    swaps in his own key (re-signed or not) is refused."""
    signing = Ed25519PrivateKey.generate()
    central = CentralKey(signing)
    key, signer, signature = read_signed_key(central.sealing_answer())
    verify_signed_key(public_bytes(signing), key, signature)
    assert signer == central.fingerprint
    _, mitm, _ = new_key()
    swapped = {**central.sealing_answer(), "public_key": mitm.as_json()["public_key"],
               "key_id": mitm.id}
    key, _, signature = read_signed_key(swapped)
    with pytest.raises(SealError, match="not signed by the pinned central key"):
        verify_signed_key(public_bytes(signing), key, signature)
    resigned = CentralKey(Ed25519PrivateKey.generate(), sealing_keys=central.sealing)
    key, _, signature = read_signed_key(resigned.sealing_answer())
    with pytest.raises(SealError):
        verify_signed_key(public_bytes(signing), key, signature)


# -- the kiosk's store ---------------------------------------------------------------------------


def test_without_a_key_the_identity_waits_in_memory_then_is_sealed(tmp_path):
    path = tmp_path / "kiosk.db"
    with Store(path, device_id="kiosk-1", checkpoint_id="cp") as store:
        first = store.record(entry())
        assert store.identities_waiting == 1
        with Outbox(path) as outbox:
            assert outbox.claim(10) == []  # not sent without its identity
        assert_no_identifiers([tmp_path], [CCCD])
        _, public, opener = new_key()
        give_key(path, public)
        store.record(entry("001185099999", override_reason="the card 001185077777 was torn"))
        assert store.identities_waiting == 0
    with Outbox(path) as outbox:
        items = outbox.claim(10)
    opened = [opener.open(i["sealed"], aad_for(i["id"], i["device_id"])) for i in items]
    assert [i["id"] for i in items][0] == first
    assert opened == [{"person_key": CCCD},
                      {"person_key": "001185099999",
                       "override_reason": "the card 001185077777 was torn"}]
    assert all(i["person_key"] is None and i["override_reason"] is None for i in items)
    assert_no_identifiers([tmp_path], [CCCD, "001185099999", "001185077777"])


def test_an_identity_held_in_memory_is_lost_by_a_restart_and_the_row_says_so(tmp_path):
    path = tmp_path / "kiosk.db"
    with Store(path, device_id="kiosk-1", checkpoint_id="cp") as store:
        checkin_id = store.record(entry())
    HELD.take(path)  # what a new process would have: nothing
    with Store(path, device_id="kiosk-1", checkpoint_id="cp") as store:
        stats_row = store._db.execute("SELECT identity, reasons FROM checkins").fetchone()
    assert tuple(stats_row) == ("lost", '["identity_not_kept"]')
    with Outbox(path) as outbox:
        (sent,) = outbox.claim(10)
    assert sent["id"] == checkin_id and sent["person_key"] is None and "sealed" not in sent


def test_rows_of_an_earlier_release_are_sealed_and_leave_no_clear_byte(tmp_path):
    """An upgraded kiosk: clear person keys in live rows, in delivered rows and in the free
    pages of rows purged before; after the upgrade and the key, no byte of any is left."""
    path = tmp_path / "kiosk.db"
    pending, sent, purged = CCCD, "001185022222", "001185033333"
    with Store(path, device_id="kiosk-1", checkpoint_id="cp") as store:
        for key in (pending, sent, purged):
            store.record(entry(key))
    HELD.take(path)
    # What release N-1 wrote: the clear key in the row, no secure_delete.
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA secure_delete=OFF")
    for seq, key in enumerate((pending, sent, purged), 1):
        conn.execute("UPDATE checkins SET person_key = ?, identity = 'clear' WHERE seq = ?",
                     [key, seq])
    conn.execute("UPDATE checkins SET state = 'sent', identity = 'none', person_key = NULL "
                 "WHERE seq = 2")
    conn.execute("UPDATE checkins SET person_key = ? WHERE seq = 2", [sent])
    conn.execute("DELETE FROM checkins WHERE seq = 3")
    conn.execute("DELETE FROM sync_meta WHERE key = 'at_rest'")
    conn.commit()
    conn.close()
    assert find_identifiers([path], [pending, sent, purged])  # the test can fail
    _, public, opener = new_key()
    give_key(path, public)
    with Store(path, device_id="kiosk-1", checkpoint_id="cp") as store:
        pass
    assert_no_identifiers([tmp_path], [pending, purged])
    with Outbox(path) as outbox:
        (item_,) = outbox.claim(10)
    assert opener.open(item_["sealed"], aad_for(item_["id"], "kiosk-1")) == {"person_key":
                                                                            pending}
    # A delivered row's clear key (set after the migration here) goes at the next sealing.
    assert store is not None


def test_the_migration_clears_delivered_rows_and_marks_live_ones():
    from sqlite_utils import Database

    from offline_queue import migrations

    db = Database(sqlite3.connect(":memory:"))
    for name in ("m001_checkins", "m002_documents", "m003_sync_meta",
                 "m004_time_source_and_forbidden", "m005_boot_clock"):
        getattr(migrations, name)(db)
    base = ("d", "c", "in", "cccd", "pass", "t", 1, "b", 1, "v")
    for i, (key, state) in enumerate(((CCCD, "sent"), ("001185022222", "pending"))):
        db.execute("INSERT INTO checkins (id, person_key, state, device_id, checkpoint_id, "
                   "direction, kind, decision, wall_time, mono_ns, boot_id, clock_synced, "
                   "app_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [str(i), key, state, *base])
    migrations.m006_sealed_identity(db)
    rows = db.execute("SELECT person_key, identity FROM checkins ORDER BY id").fetchall()
    assert rows == [(None, "none"), ("001185022222", "clear")]


# -- the central ---------------------------------------------------------------------------------


@pytest.fixture
def central_db_with_device(db_target):
    with central_db.connect(db_target) as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id="CP-S", name="S")
        device, _ = central_db.enrol(cdb, token)
        yield cdb, device


def sealed_item(device, public: SealingKey, person_key: str = CCCD, **kw) -> dict:
    base = item({"device_id": device.id, "checkpoint_id": device.checkpoint_id},
                person_key=None, **kw)
    base["sealed"] = Sealer(public).seal({"person_key": person_key},
                                         aad_for(base["id"], device.id))
    return base


def test_the_central_opens_sealed_identities_and_keeps_aside_what_it_cannot(
        central_db_with_device, tmp_path):
    cdb, device = central_db_with_device
    keys = load_or_create(tmp_path / "central.key")
    public = keys.sealing.public
    good = sealed_item(device, public)
    unknown = sealed_item(device, new_key()[1], "001185044444")
    tampered = sealed_item(device, public, "001185055555")
    tampered["sealed"] = tampered["sealed"][:-4] + ("AAAA" if not
                                                    tampered["sealed"].endswith("AAAA") else "BBBB")
    cut = sealed_item(device, public, "001185066666")
    cut["sealed"] = cut["sealed"][:60]
    clear = item({"device_id": device.id, "checkpoint_id": device.checkpoint_id},
                 person_key="001185077777")
    results = central_db.ingest(cdb, device, [good, unknown, tampered, cut, clear],
                                opener=keys.sealing.opener)
    assert [r["status"] for r in results] == ["accepted", "unopened", "unopened", "unopened",
                                              "accepted"]
    assert "does not hold" in results[1]["errors"][0]
    stored = dict((str(r[0]), r[1]) for r in cdb.execute("SELECT id, person_key FROM scans"))
    assert stored == {good["id"]: CCCD, clear["id"]: "001185077777"}
    aside = central_db.unopened_rows(cdb)
    assert sorted(r["id"] for r in aside) == sorted([unknown["id"], tampered["id"], cut["id"]])
    assert all(r["device_id"] == device.id and r["error"] for r in aside)
    # A resend is answered the same, a good one is a duplicate (hash over the opened row).
    again = central_db.ingest(cdb, device, [unknown, good], opener=keys.sealing.opener)
    assert [r["status"] for r in again] == ["unopened", "duplicate"]
    assert len(central_db.unopened_rows(cdb)) == 3
    # The same row sent clear by an earlier release, then sealed: a duplicate, no conflict.
    legacy = item({"device_id": device.id, "checkpoint_id": device.checkpoint_id})
    central_db.ingest(cdb, device, [legacy])
    resent = {**legacy, "person_key": None,
              "sealed": Sealer(public).seal({"person_key": legacy["person_key"]},
                                            aad_for(legacy["id"], device.id))}
    (answer,) = central_db.ingest(cdb, device, [resent], opener=keys.sealing.opener)
    assert answer["status"] == "duplicate"


def test_a_row_sealed_to_a_restored_key_is_reopened(central_db_with_device, tmp_path):
    cdb, device = central_db_with_device
    old_private, old_public, old_opener = new_key()
    row = sealed_item(device, old_public)
    keys = load_or_create(tmp_path / "central.key")
    (answer,) = central_db.ingest(cdb, device, [row], opener=keys.sealing.opener)
    assert answer["status"] == "unopened"
    assert central_db.reopen(cdb, keys.sealing.opener) == {"unopened": 1}
    assert central_db.reopen(cdb, Opener({old_public.id: old_private,
                                          **{k: None for k in ()}})) == {"accepted": 1}
    assert central_db.unopened_rows(cdb) == []
    ((key,),) = cdb.execute("SELECT person_key FROM scans").fetchall()
    assert key == CCCD and old_opener is not None


def test_sealing_keys_rotate_and_old_ones_still_open(tmp_path):
    path = tmp_path / "central.key"
    first = load_or_create(path).sealing
    assert oct(sealing_path(path).stat().st_mode & 0o777) == "0o600"
    text = Sealer(first.public).seal({"person_key": CCCD}, b"x")
    second = rotate_sealing(path)
    assert second.current_id != first.current_id
    assert set(second.key_ids) == {first.current_id, second.current_id}
    reloaded = load_or_create(path)
    assert reloaded.sealing.current_id == second.current_id
    assert reloaded.sealing.opener.open(text, b"x") == {"person_key": CCCD}
    assert reloaded.keys_answer()["sealing_key"]["key_id"] == second.current_id
    assert CCCD not in sealing_path(path).read_text()


def test_wire_refuses_a_clear_key_beside_a_sealed_one():
    row = item({"device_id": "d", "checkpoint_id": "c"}, id=str(uuid.uuid4()))
    row["sealed"] = "seal1.x.y.z"
    assert any("beside a sealed identity" in e
               for e in wire.validation_errors(row, now=datetime.now(UTC)))


def test_spellings_cover_the_usual_ways_of_writing_a_number():
    assert {"001 185 012 345", "0011 8501 2345", "001185012345"} <= spellings(CCCD)
    assert base64 is not None and key_id(b"\0" * 32)
