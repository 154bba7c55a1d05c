"""Issue 9 #14: text from the network cannot forge or garble a kiosk log line."""

from __future__ import annotations

import io
import logging
import sys

from kiosk.logfmt import SafeFormatter, escape_controls
from offline_queue.store import Store
from offline_queue.sync import SyncWorker
from tests.synchelp import ScriptedServer
from tests.test_sync import FAST, entry, wait_for

HOSTILE = "boom\nINFO offline_queue.sync: forged \x1b[2J\r\u202eevil\u2066 ok"


def test_the_formatter_escapes_controls_and_keeps_its_layout():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    log = logging.getLogger("test.logfmt")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("server said %s", HOSTILE)
        try:
            raise ValueError(HOSTILE)
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("WARNING test.logfmt: server said boom\\nINFO")
    for bad in ("\x1b", "\r", "\u202e", "\u2066"):
        assert bad not in stream.getvalue()
    assert "\\x1b[2J" in lines[0] and "\\u202e" in lines[0]
    assert lines[1].startswith("ERROR test.logfmt: failed\\nTraceback")
    assert escape_controls("Nguyễn Văn A\t\x85") == "Nguyễn Văn A\\t\\x85"


def test_a_server_error_text_gives_one_escaped_log_line(tmp_path, caplog):
    with Store(tmp_path / "k.db", device_id="d", checkpoint_id="c") as store:
        store.record(entry(1))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old = root.level
    root.setLevel(logging.INFO)
    try:
        with ScriptedServer(lambda m, p, b: (500, {"error": HOSTILE}, {})) as server, \
                SyncWorker(db_path=tmp_path / "k.db", server_url=server.url, token="t",
                           **FAST) as worker:
            assert wait_for(lambda: worker.status().last_error is not None, timeout=10)
            status = worker.status()
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    # Sync's own messages carry the text quoted, whatever formatter the journal uses.
    assert "\n" not in status.last_error and "\x1b" not in status.last_error
    sync_records = [r for r in caplog.records if r.name == "offline_queue.sync"]
    assert sync_records
    assert all("\n" not in r.getMessage() and "\x1b" not in r.getMessage()
               for r in sync_records)
    lines = [line for line in stream.getvalue().splitlines() if "forged" in line]
    assert lines and all(line.startswith(("INFO offline_queue.sync", "WARNING offline_queue"))
                         for line in lines), lines


def test_setup_logging_uses_the_safe_formatter(monkeypatch):
    from kiosk.runtime.build import setup_logging

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("INFO")
        assert root.handlers and all(isinstance(h.formatter, SafeFormatter)
                                     for h in root.handlers)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_a_full_disk_in_the_worker_is_one_error_line_not_a_traceback(tmp_path, caplog,
                                                                       monkeypatch):
    """Found by the checkpoint-day scenario: a disk-full StoreError in the worker was logged
    as an 'unexpected error' with a traceback; it is a known fault, said in one line."""
    from kiosk.errors import StoreError
    from offline_queue.outbox import Outbox

    with Store(tmp_path / "k.db", device_id="d", checkpoint_id="c") as store:
        store.record(entry(1))
    calls = []

    def full(self, *args, **kwargs):
        calls.append(1)
        raise StoreError("queue database 'k.db': database or disk is full")

    monkeypatch.setattr(Outbox, "claim_batch", full)
    caplog.set_level(logging.INFO)
    with ScriptedServer(lambda m, p, b: (200, {"results": []}, {})) as server, \
            SyncWorker(db_path=tmp_path / "k.db", server_url=server.url, token="t",
                       **FAST) as worker:
        assert wait_for(lambda: len(calls) >= 2, timeout=10), "the worker stopped trying"
        assert "disk is full" in (worker.status().last_error or "")
    sync_records = [r for r in caplog.records if r.name == "offline_queue.sync"]
    assert any("disk is full" in r.getMessage() for r in sync_records)
    assert not [r for r in sync_records if r.exc_info], "a traceback was logged"


def test_identifiers_are_masked_but_key_fingerprints_are_kept_whole():
    """A fingerprint a technician compares with a kiosk's must come out whole: about one
    SHA-256 fingerprint in four has a run of nine decimal digits, and the number rule
    starred it (the central's "created the signing key" line)."""
    from kiosk.logfmt import mask_identifiers
    fingerprint = "03f8034aa39b2cf8232ca437ecda79697dbc6de45b38e2ef62044d0123456789"
    key_id = "37ce135d9555039b"
    text = (f"created the signing key, fingerprint {fingerprint}; sealing key {key_id}; "
            "card 079123456789, phone 0912345678, HC1:NCFOXN, digits 0791234567890123")
    masked = mask_identifiers(text)
    assert fingerprint in masked and key_id in masked
    assert "079123456789" not in masked and "*********789" in masked
    assert "0912345678" not in masked and "0791234567890123" not in masked
    assert "HC1:<masked>" in masked
    # A number glued into a word is no digest: still masked.
    assert mask_identifiers("id=x079123456789") == "id=x*********789"
