"""Start the receivers, then the Textual app, on one event loop."""

from __future__ import annotations

import asyncio

from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig


def run_app(config: ReceiverConfig, *, max_spans: int, ollama_host: str | None, model: str | None,
            load: list[tuple[str, bytes]] | None = None, confirm_quit: bool = True) -> int:
    """``ollama_host`` None turns the chat pane off; ``load`` is the ``--load`` files' (name, bytes);
    ``confirm_quit`` False lets ``q`` quit without asking (``--no-confirm``)."""
    from tui.app.app import OllamaTuiApp

    async def main() -> int:
        receivers = OtlpReceivers(config)
        await receivers.start()  # before the UI takes the terminal, so a busy port is one clean line
        try:
            app = OllamaTuiApp(receivers, TraceStore(max_spans), chat_host=ollama_host, model=model,
                               load=load, confirm_quit=confirm_quit)
            await app.run_async()
            return app.return_code or 0
        finally:
            await receivers.stop()

    return asyncio.run(main())
