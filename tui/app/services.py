"""What the App owns and lends its screens: receivers, store, clock, the chat engine and the programs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tui.model.stats import StatsTracker
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers

if TYPE_CHECKING:
    from tui.chat.session import ChatSession
    from tui.programs import ProgramSet


class ChatEngine:
    """The Ollama chat session behind the chat pane, started on demand and closed with the App.

    Importing the client stack costs a third of a second, so the screen starts it after its first
    frame rather than at import.
    """

    def __init__(self, receivers: OtlpReceivers, host: str, model: str | None) -> None:
        self.receivers = receivers
        self.host = host
        self.model = model
        self.session: ChatSession | None = None

    def start(self) -> ChatSession:
        from tui.chat.session import ChatSession
        from tui.chat.tracing import chat_tracer_provider

        if self.session is None:
            self.session = ChatSession(self.host, chat_tracer_provider(self.receivers.ingest))
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


@dataclass(slots=True)
class Services:
    receivers: OtlpReceivers
    store: TraceStore
    #: The chat engine, or None with ``--no-chat``.
    chat: ChatEngine | None = None
    #: Wall clock for ages in the list (fixed in snapshots).
    clock: Callable[[], float] = field(default=time.time)
    #: The programs run under ollama-tui (``-- COMMAND``, ``--run``), already started; None without any.
    programs: ProgramSet | None = None
    #: The Stats screen's figures, kept up to date from the App's start (see :class:`StatsTracker`'s
    #: follow mode): the list's screen hands it every change set it applies and steps it in the background.
    stats: StatsTracker = field(init=False)

    def __post_init__(self) -> None:
        self.stats = StatsTracker(self.store, follow=True)
