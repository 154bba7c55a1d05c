"""Helpers for the central-server tests: enrol over real HTTP, build and post wire check-ins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from offline_queue.central import db as central_db


def enrol(server: Any, db_path: Path, checkpoint: str = "CP-1", **extra: Any) -> dict:
    """Enrol a new device at ``checkpoint`` through POST /v1/devices/enrol."""
    with central_db.connect(db_path) as cdb:
        token = central_db.create_enrolment_token(cdb, checkpoint_id=checkpoint, name=checkpoint)
    answer = requests.post(server.url + "/v1/devices/enrol",
                           json={"enrolment_token": token, **extra}, timeout=5)
    assert answer.status_code == 201, answer.text
    return answer.json()


def item(device: dict, **kw: Any) -> dict:
    """A valid wire check-in of ``device``; keyword arguments replace fields."""
    base = {
        "id": str(uuid.uuid4()), "device_id": device["device_id"],
        "checkpoint_id": device["checkpoint_id"], "direction": "in", "kind": "cccd",
        "person_key": "001085012345", "display": {"name": "N***"}, "decision": "pass",
        "reasons": [], "source": "scan", "override_of": None, "original_decision": None,
        "override_reason": None, "recorded_at": datetime.now(UTC).isoformat(),
        "monotonic_ns": 1, "boot_id": "b", "clock_synced": True, "corrected_at": None,
        "app_version": "0.1.0",
    }
    base.update(kw)
    return base


def post(server: Any, device: dict, items: list) -> requests.Response:
    return requests.post(server.url + "/v1/checkins", json={"checkins": items}, timeout=5,
                         headers={"Authorization": f"Bearer {device['device_token']}"})


def statuses(response: requests.Response) -> list[str]:
    return [r["status"] for r in response.json()["results"]]
