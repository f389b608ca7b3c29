"""Regenerate the SVG screenshots in this folder from real app states: `make screenshots`.

Each state is the real app, run headless with the deterministic demo store the snapshot tests use
(GenAI traces in every attribute convention, fixed ids and clock), driven by key presses.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from demo_store import CLOCK_NOW, demo_store  # noqa: E402
from tui.app.app import OllamaTuiApp  # noqa: E402
from tui.receiver import OtlpReceivers, ReceiverConfig  # noqa: E402

SIZE = (150, 40)
TO_LLM_SPAN = ["j", "j", "j", "j", "enter", "l", "j"]
STATES = {
    "llm-span.svg": TO_LLM_SPAN,
    "timeline.svg": [*TO_LLM_SPAN, "t", "t", "t"],
    "errors-and-exception.svg": ["e", "enter", "l", "j", "t"],
    "help.svg": ["question_mark"],
    "empty-state.svg": None,
}


async def shoot(name: str, keys: list[str] | None) -> None:
    store = demo_store()
    if keys is None:
        store.clear()
        store.drain_changes()
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store, clock=lambda: CLOCK_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for key in keys or []:
            await pilot.press(key)
        await pilot.pause(0.3)
        app.save_screenshot(name, str(HERE))
    print(f"wrote screenshots/{name}")


async def main() -> None:
    for name, keys in STATES.items():
        await shoot(name, keys)


if __name__ == "__main__":
    asyncio.run(main())
