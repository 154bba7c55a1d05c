"""Issue 12: a small power-cut herd against the central on PostgreSQL (bench/central_herd.py
in seconds): everything stored once, a busy central answers 503 + Retry-After, few resends."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.conftest import REPO


def load_bench():
    spec = importlib.util.spec_from_file_location("central_herd", REPO / "bench" /
                                                  "central_herd.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("central_herd", module)  # dataclasses look it up
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(180)
def test_a_small_herd_is_stored_exactly_once_with_few_resends(pg_url):
    run_herd = load_bench().run_herd

    # One application thread and a short queue: the central is "busy" at once.
    figures = run_herd(pg_url, kiosks=120, rows=50, window=0.3, threads=1, queue_limit=4,
                       max_seconds=120, print_=lambda *_: None)
    assert figures["kiosks_done"] == 120, figures
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["refused_503"] > 0 and figures["retry_after_max"] >= 1, figures
    assert figures["timeouts"] == 0, figures
    assert figures["resend_pct"] <= 5, figures


def test_busy_answer_says_when_to_come_back():
    from offline_queue.central.app import MAX_RETRY_AFTER, Admission

    waiting = [0]
    admission = Admission(lambda: waiting[0], limit=10)
    assert admission.retry_after() is None
    waiting[0] = 500
    waits = {admission.retry_after() for _ in range(200)}
    assert all(1 <= w <= MAX_RETRY_AFTER + 1 for w in waits)
    assert len(waits) > 5  # jittered: a herd comes back spread out
