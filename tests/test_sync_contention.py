"""Issue 9 #6: a check-in never fails because the sync worker is writing the same file."""

from __future__ import annotations

import threading
import time

from offline_queue.outbox import Outbox
from offline_queue.records import CheckIn
from offline_queue.store import Store


def entry(i: int, **kw) -> CheckIn:
    base = dict(direction="in", kind="cccd", person_key=f"0010850{i:05d}",
                display={"name": f"N*** {i}"}, decision="pass", reasons=("ok",))
    base.update(kw)
    return CheckIn(**base)


# Complexity over 10 on purpose: the two racing threads, side by side, are the test.
def test_recording_never_fails_while_sync_claims_and_marks(tmp_path):  # noqa: C901
    """Scan loop (FULL, overrides read then write) against the worker's claim/mark loop."""
    path = tmp_path / "kiosk.db"
    failures: list[BaseException] = []
    sync_failures: list[BaseException] = []
    stop = threading.Event()
    recorded = [0]

    with Store(path, device_id="d", checkpoint_id="c") as store:
        for i in range(50):
            store.record(entry(i))

        def scan_loop() -> None:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    first = store.record(entry(i, decision="stop"))
                    # An officer override reads the overridden row, then inserts.
                    store.record(entry(i, decision="pass", override_of=first,
                                       original_decision="stop", override_reason="paper",
                                       source="manual"))
                    recorded[0] += 2
                except Exception as e:  # noqa: BLE001 - counted below
                    failures.append(e)

        def sync_loop() -> None:
            with Outbox(path) as outbox:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        items = outbox.claim(20)
                        ids = [i["id"] for i in items]
                        if n % 2:
                            outbox.mark_results({i: ("sent", None) for i in ids},
                                                store.clock.now())
                        else:
                            outbox.release(ids, "retry")
                        outbox.set_meta(last_error=None)
                    except Exception as e:  # noqa: BLE001 - counted below
                        sync_failures.append(e)

        threads = [threading.Thread(target=scan_loop), threading.Thread(target=sync_loop)]
        for t in threads:
            t.start()
        time.sleep(4.0)
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert recorded[0] > 100, recorded
    assert failures == [], f"{len(failures)} of {recorded[0]} records failed: {failures[:3]!r}"
    assert sync_failures == [], f"{len(sync_failures)} sync writes failed: {sync_failures[:3]!r}"
