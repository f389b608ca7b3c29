"""Start the receivers, then the Textual app, on one event loop."""

from __future__ import annotations

import asyncio
import signal
import sys

from tui.console.run import stop_signals
from tui.model.store import TraceStore
from tui.programs import ProgramSet
from tui.receiver import OtlpReceivers, ReceiverConfig


def run_app(config: ReceiverConfig, *, max_spans: int, ollama_host: str | None, model: str | None,
            load: list[tuple[str, bytes]] | None = None, confirm_quit: bool = True,
            commands: list[list[str]] | None = None, chat_follows_ollama_serve: bool = False) -> int:
    """``ollama_host`` None turns the chat pane off; ``load`` is the ``--load`` files' (name, bytes);
    ``confirm_quit`` False lets ``q`` quit without asking (``--no-confirm``); ``commands`` are run with their
    exporters pointed at the receivers, started before the UI (so one that cannot start is one clean line)
    and stopped before the receivers (so the spans they flush on the way out arrive). With
    ``chat_follows_ollama_serve`` (no ``--ollama-host``), an ``ollama serve`` among them is the chat pane's Ollama.

    SIGTERM, SIGHUP (the terminal closed) and SIGINT end the app as ``q`` does, so Textual gives the
    terminal back as it found it; then, whatever signal comes, the receivers stop and ``--save`` writes
    everything they acknowledged (bounded) before the process exits.
    """
    from tui.app.app import OllamaTuiApp

    async def main() -> int:
        receivers = OtlpReceivers(config)
        await receivers.start()  # before the UI takes the terminal, so a busy port is one clean line
        loop, signals = asyncio.get_running_loop(), stop_signals()
        programs = (ProgramSet.for_receivers(commands, receivers.addresses, token=config.security.auth_token,
                                             ca_file=config.security.tls_cert) if commands else None)
        try:
            if programs is not None:
                await programs.start_all()
            app = OllamaTuiApp(receivers, TraceStore(max_spans), model=model,
                               chat_host=_chat_host(ollama_host, programs, chat_follows_ollama_serve),
                               load=load, confirm_quit=confirm_quit, programs=programs)
            for sig in signals:
                loop.add_signal_handler(sig, app.exit)
            await app.run_async()
            return app.return_code or 0
        finally:
            for sig in signals:  # the app is gone: nothing is left to end but the drain, which is not cut short
                loop.add_signal_handler(sig, lambda: None)
            if programs is not None:
                await programs.stop_all()
            await receivers.stop()
            if receivers.recorder is not None and receivers.recorder.error:  # the header showed it; so does the shell
                print(f"ollama-tui: {receivers.recorder.error}", file=sys.stderr)
            for sig in signals:  # all is written; what remains is the interpreter's exit, a Ctrl+C cannot help it
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)

    return asyncio.run(main())


def _chat_host(ollama_host: str | None, programs: ProgramSet | None, follow: bool) -> str | None:
    """Where the chat pane talks: the ``ollama serve`` run under us when ``follow``, else ``ollama_host``
    (None: no chat pane)."""
    serve = programs.ollama_serve() if programs is not None and follow else None
    return serve[1] if serve is not None and ollama_host is not None else ollama_host
