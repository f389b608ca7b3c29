"""Shared fixtures: real receivers on loopback port 0. Helpers that are not fixtures live in ``support``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

# Before the first import of support: its asserts (an export that must succeed, say) get pytest's
# introspection in failure messages, as they had when they lived here and in the test modules.
pytest.register_assert_rewrite("support")

from support.receivers import Running, running_receivers  # noqa: E402


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
