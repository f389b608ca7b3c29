"""Regenerate the SVG screenshots in this folder from real app states: `make screenshots`.

Each state is the real app, run headless with the deterministic demo store the snapshot tests use
(GenAI traces in every attribute convention, fixed ids and clock), driven by key presses. The chat
screenshot talks to the tests' fake Ollama over loopback, so its turn is a real traced request.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support.demo_store import CLOCK_NOW, demo_store  # noqa: E402
from support.fake_ollama import FakeOllama  # noqa: E402
from tui.app.app import OllamaTuiApp  # noqa: E402
from tui.app.widgets.chat import ChatTurn  # noqa: E402
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


async def shoot_chat(name: str = "chat.svg") -> None:
    """The chat pane beside the trace of the turn it just made, its LLM tab open."""
    fake = await FakeOllama(answer=[w + " " for w in (
        "Rayleigh scattering: air molecules scatter **short** (blue) wavelengths of sunlight far more than "
        "long (red) ones, so blue light reaches your eyes from every direction.").split()]).start()
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(), chat_host=fake.url)
    try:
        async with app.run_test(size=(200, 45)) as pilot:
            while app.query_one("#chat").model is None:
                await pilot.pause(0.05)
            await pilot.press("a", *[("space" if c == " " else c) for c in "Why is the sky blue?"], "enter")
            while not (app.query(ChatTurn) and "tokens" in str(app.query_one(".turn-status").content)):
                await pilot.pause(0.05)
            await pilot.press("ctrl+t", "enter", "l")
            await pilot.pause(0.3)
            app.save_screenshot(name, str(HERE))
    finally:
        await fake.stop()
    print(f"wrote screenshots/{name}")


async def main() -> None:
    for name, keys in STATES.items():
        await shoot(name, keys)
    await shoot_chat()


if __name__ == "__main__":
    asyncio.run(main())
