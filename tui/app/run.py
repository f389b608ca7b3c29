"""Start the receivers, then the Textual app, on one event loop."""

from __future__ import annotations

import asyncio

from tui.chat.session import ChatSession
from tui.chat.tracing import chat_tracer_provider
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig


def run_app(config: ReceiverConfig, *, max_spans: int, ollama_host: str | None, model: str | None) -> int:
    """``ollama_host`` None turns the chat pane off."""
    from tui.app.app import OllamaTuiApp

    async def main() -> int:
        receivers = OtlpReceivers(config)
        await receivers.start()  # before the UI takes the terminal, so a busy port is one clean line
        chat = ChatSession(ollama_host, chat_tracer_provider(receivers.ingest)) if ollama_host else None
        try:
            app = OllamaTuiApp(receivers, TraceStore(max_spans), chat=chat, model=model)
            await app.run_async()
            return app.return_code or 0
        finally:
            if chat is not None:
                await chat.close()
            await receivers.stop()

    return asyncio.run(main())
