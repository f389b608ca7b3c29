"""Start the receivers, then the Textual app, on one event loop."""

from __future__ import annotations

import asyncio

from tui.files_option import FileOptions
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig
from tui.receiver.files import RequestRecorder


def run_app(config: ReceiverConfig, *, max_spans: int, ollama_host: str | None, model: str | None,
            files: FileOptions | None = None) -> int:
    """``ollama_host`` None turns the chat pane off."""
    from tui.app.app import OllamaTuiApp

    files = files or FileOptions()

    async def main() -> int:
        receivers = OtlpReceivers(config)
        recorder = RequestRecorder(files.save) if files.save else None
        if recorder is not None:
            receivers.ingest.listeners.append(recorder.record)
        await receivers.start()  # before the UI takes the terminal, so a busy port is one clean line
        try:
            app = OllamaTuiApp(receivers, TraceStore(max_spans), chat_host=ollama_host, model=model,
                               load=files.sources)
            await app.run_async()
            return app.return_code or 0
        finally:
            await receivers.stop()
            if recorder is not None:
                recorder.close()

    return asyncio.run(main())
