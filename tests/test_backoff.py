"""offline_queue.backoff: the one capped exponential backoff (camera, decoder, sync)."""

from __future__ import annotations

import random

import pytest

from offline_queue.backoff import Backoff


def test_doubles_from_first_up_to_the_cap_and_stays_there():
    retry = Backoff(first=0.5, cap=30.0)
    assert retry.ceiling() == 0.0
    waits = [retry.failed() for _ in range(100)]
    assert waits[:8] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert set(waits[6:]) == {30.0} and retry.failures == 100


def test_reset_after_a_success_starts_again_from_first():
    retry = Backoff(first=0.5, cap=30.0)
    for _ in range(5):
        retry.failed()
    retry.reset()
    assert retry.failures == 0 and retry.failed() == 0.5 and retry.failed() == 1.0


def test_full_jitter_stays_below_each_ceiling_and_uses_the_range():
    retry = Backoff(first=4.0, cap=300.0, jitter=True, rng=random.Random(1))
    for failures in range(1, 200):
        wait = retry.failed()
        ceiling = min(300.0, 4.0 * 2 ** (failures - 1))
        assert retry.ceiling() == ceiling and 0.0 <= wait <= ceiling
    # At the cap the waits spread over the whole range, not bunched at the top.
    at_cap = [retry.failed() for _ in range(2000)]
    assert min(at_cap) < 30 and max(at_cap) > 270


def test_the_same_seed_gives_the_same_waits():
    a = Backoff(first=1.0, cap=60.0, jitter=True, rng=random.Random(7))
    b = Backoff(first=1.0, cap=60.0, jitter=True, rng=random.Random(7))
    assert [a.failed() for _ in range(20)] == [b.failed() for _ in range(20)]


def test_a_cap_below_first_caps_the_first_wait_too():
    """Found by test_notify_run: camera.retry_max_seconds = 0.1 under the 0.5 s first wait
    (allowed by the config) made the camera thread die instead of retrying."""
    retry = Backoff(first=0.5, cap=0.1)
    assert [retry.failed() for _ in range(3)] == [0.1, 0.1, 0.1]


@pytest.mark.parametrize(("first", "cap"), [(0, 10), (-1, 10), (1, 0)])
def test_a_wait_that_is_not_above_0_is_refused(first, cap):
    with pytest.raises(ValueError, match=f"backoff first={first!r}, cap={cap!r}"):
        Backoff(first=first, cap=cap)
