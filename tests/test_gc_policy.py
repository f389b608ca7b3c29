"""When collections run, and that an idle one gives a flood's memory back to the operating system."""

from __future__ import annotations

import os

import pytest

from support.host import rss_bytes
from tui import gc_policy
from tui.gc_policy import IDLE_SECONDS, MAX_INTERVAL_SECONDS, FullCollector, release_free_memory


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_full_collection_waits_for_a_pause_or_two_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    released: list[float] = []
    clock = Clock()
    monkeypatch.setattr(gc_policy, "release_free_memory", lambda: released.append(clock.now))
    collector = FullCollector(clock)
    spans = 0
    for _ in range(int(MAX_INTERVAL_SECONDS) - 1):  # a flood: new spans every second
        clock.now += 1
        spans += 1000
        assert not collector.poll(spans)
    clock.now += 1
    spans += 1000
    assert collector.poll(spans)  # overdue: collected even though spans keep arriving
    assert released == []  # but memory is kept for the flood to reuse
    clock.now += 1
    spans += 1000
    assert not collector.poll(spans)  # the flood's last batch
    clock.now += IDLE_SECONDS - 0.5
    assert not collector.poll(spans)
    clock.now += 1
    assert collector.poll(spans)  # the flood stopped: collect, and give its memory back
    assert released == [clock.now]
    clock.now += 60
    assert not collector.poll(spans)  # still idle: nothing new to collect


@pytest.mark.skipif(gc_policy._MALLOC_TRIM is None, reason="malloc_trim is glibc's; elsewhere pages are reused")
def test_released_memory_leaves_the_process() -> None:
    blobs = [os.urandom(2000) for _ in range(50_000)]  # ~100 MB of payload-sized allocations
    kept = blobs[::50]  # a few survivors pin the heap, as old spans do after eviction
    del blobs
    before = rss_bytes()
    assert release_free_memory()
    assert before - rss_bytes() > 50 * 2**20
    assert len(kept) == 1000
