"""The Textual application: owns the services (receivers, store, ingest pump, chat engine) and lends
them to the traces screen, which owns everything on screen."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import App

from tui.app.services import ChatEngine, Services
from tui.app.traces_screen import TracesScreen
from tui.gc_policy import FullCollector
from tui.model.store import TraceStore
from tui.programs import ProgramSet
from tui.receiver import OtlpReceivers, pump

#: How often the full-collection policy looks at the ingest rate.
GC_POLL_SECONDS = 0.5


class OllamaTuiApp(App[int]):
    """A live OpenTelemetry span viewer."""

    TITLE = "ollama-tui"
    CSS_PATH = "app.tcss"

    def __init__(
        self,
        receivers: OtlpReceivers,
        store: TraceStore,
        *,
        chat_host: str | None = None,
        model: str | None = None,
        load: list[tuple[str, bytes]] | None = None,
        clock: Callable[[], float] = time.time,
        confirm_quit: bool = True,
        programs: ProgramSet | None = None,
    ) -> None:
        """``chat_host`` None turns the chat pane off; ``load`` is the ``--load`` files' (name, bytes);
        ``confirm_quit`` False makes ``q`` quit at once even while traces are held; ``programs`` are the
        started ``-- COMMAND`` / ``--run`` programs, shown in the Output pane (their owner stops them)."""
        super().__init__()
        chat = ChatEngine(receivers, chat_host, model) if chat_host is not None else None
        self.services = Services(receivers, store, chat, clock, programs)
        self.traces = TracesScreen(self.services, confirm_quit=confirm_quit)
        self._load = load or []
        self._collector = FullCollector()

    def get_default_screen(self) -> TracesScreen:
        return self.traces

    def on_mount(self) -> None:
        services = self.services
        self.run_worker(pump(services.receivers.queue, services.store), name="ingest", group="ingest",
                        exit_on_error=True)
        self.set_interval(GC_POLL_SECONDS, lambda: self._collector.poll(services.store.spans_added))
        if self._load:
            self.run_worker(self._load_files(), name="load", group="load", exit_on_error=False)

    async def _load_files(self) -> None:
        from tui.receiver.files import UnreadableFile, load_into

        try:
            result = await load_into(self.services.receivers.ingest, self._load)
        except UnreadableFile as exc:
            self.notify(str(exc), title="Cannot load", severity="error", timeout=10, markup=False)
            return
        self.notify(result.summary(), timeout=4, markup=False)
        for warning in result.warnings():
            self.notify(warning, title="Nothing to show", severity="warning", timeout=15, markup=False)

    async def on_unmount(self) -> None:
        if self.services.chat is not None:
            await self.services.chat.close()
