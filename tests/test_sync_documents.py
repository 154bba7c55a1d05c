"""Issue 9 #10 (kiosk side): a document the kiosk cannot apply is never stored."""

from __future__ import annotations

import json

from offline_queue.central import db as central_db
from offline_queue.outbox import Outbox
from offline_queue.sync import SyncWorker, sync_once
from tests import test_sync as base
from tests.test_sync import FAST, kiosk_store, wait_for

central, enrolled = base.central, base.enrolled  # the same fixtures


def refuse_airport(body: bytes) -> None:
    """A validator as kiosk/domain/documents.py gives them: ValueError with a clear message."""
    if json.loads(body).get("profile") not in ("border", "office"):
        raise ValueError(f"policy profile is {json.loads(body)['profile']!r}\n; use border")


VALIDATORS = {"policy": refuse_airport}


def test_an_invalid_document_is_not_stored_and_the_others_are(central, enrolled, tmp_path):
    with central_db.connect(tmp_path / "central.db") as cdb:
        central_db.set_document(cdb, "policy", b'{"profile": "border"}')
    with kiosk_store(tmp_path, enrolled) as store:
        assert sync_once(db_path=store.path, server_url=central.url,
                         token=enrolled["device_token"], validators=VALIDATORS).ok
        with central_db.connect(tmp_path / "central.db") as cdb:
            central_db.set_document(cdb, "policy", b'{"profile": "airport"}')
            central_db.set_document(cdb, "watchlist", b'{"version": 2, "entries": []}')
        result = sync_once(db_path=store.path, server_url=central.url,
                           token=enrolled["device_token"], validators=VALIDATORS)
        assert not result.ok and result.documents_changed == ["watchlist"]
        assert "policy" in result.error and "airport" in result.error
        assert "\n" not in result.error
        assert json.loads(result.as_json())["document_errors"]
        assert store.document("policy").body == b'{"profile": "border"}'  # last good one
        assert store.document("watchlist").body == b'{"version": 2, "entries": []}'
        with SyncWorker(db_path=store.path, server_url=central.url,
                        token=enrolled["device_token"], validators=VALIDATORS,
                        **FAST) as worker:
            assert wait_for(lambda: worker.status().document_errors, timeout=10)
            errors = worker.status().document_errors
        assert len(errors) == 1 and errors[0][0] == "policy"
        assert "airport" in errors[0][1] and "\n" not in errors[0][1]
        with Outbox(store.path) as outbox:
            assert outbox.document("policy").body == b'{"profile": "border"}'
