"""Shared fixtures: real receivers on loopback port 0. Helpers that are not fixtures live in ``support``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

# Before the first import of support: its asserts (an export that must succeed, say) get pytest's
# introspection in failure messages, as they had when they lived here and in the test modules.
pytest.register_assert_rewrite("support")

import textual.constants  # noqa: E402

from support.fake_ollama import FakeOllama  # noqa: E402
from support.receivers import Running, running_receivers  # noqa: E402


@pytest.fixture(autouse=True)
def no_animations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps made in tests skip animations (what TEXTUAL_ANIMATIONS=none does), so Pilot does not wait for
    a tab's underline to glide after each key; every state a test reads or snapshots is the final one."""
    monkeypatch.setattr(textual.constants, "TEXTUAL_ANIMATIONS", "none")


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    """Receivers pumping into their store on this loop, for tests that feed the receivers directly."""
    async with running_receivers() as r:
        yield r


@pytest.fixture
async def app_receivers() -> AsyncIterator[Running]:
    """Receivers that nothing pumps yet: the app under test runs its own pump from their queue."""
    async with running_receivers(pumping=False) as r:
        yield r


@pytest.fixture
async def fake() -> AsyncIterator[FakeOllama]:
    """A fake Ollama on a loopback port, in Ollama's real wire format (tests may set its faults and delays)."""
    server = await FakeOllama().start()
    yield server
    await server.stop()
