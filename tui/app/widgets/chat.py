"""The chat pane: ask a local model something and see the trace of that request beside it.

The conversation engine (:mod:`tui.chat.session`) knows nothing of Textual; this pane renders its
events. Streams run in a Textual worker (exclusive, group "chat"), so Textual owns their lifecycle:
Escape cancels the worker, which closes the HTTP stream and ends the turn's span as cancelled.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Markdown, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from tui.app.widgets.replay_form import ReplayForm
from tui.chat.events import Delta, TurnEvent, TurnFailed, TurnFinished, TurnStarted, TurnStats
from tui.model.compare import Run, describe_spread, spread
from tui.model.text import safe_text

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tui.chat.replay import ReplayRequest
    from tui.chat.session import ChatSession

#: Seconds between tries while Ollama is unreachable, and between model-list refreshes otherwise.
RETRY_SECONDS = 3.0
REFRESH_SECONDS = 30.0
#: With no token after this long, the turn says it is still waiting (a model loading, a slow machine).
SLOW_SECONDS = 2.0


class ChatInput(TextArea):
    """Multi-line prompt: Enter sends, Ctrl+J (or Alt+Enter) inserts a newline."""

    BINDINGS = [
        Binding("enter", "send", "Send", priority=True, id="chat.send"),
        Binding("ctrl+j,alt+enter", "newline", "Newline", id="chat.newline"),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def action_send(self) -> None:
        self.post_message(self.Submitted(self.text))

    def action_newline(self) -> None:
        self.insert("\n")


class ChatTurn(Vertical):
    """One exchange: the prompt, the streamed answer (Markdown) and a status line under it."""

    DEFAULT_CSS = """
    ChatTurn { height: auto; margin: 0 0 1 0; }
    ChatTurn .prompt { color: $text-primary; text-style: bold; }
    ChatTurn Markdown { margin: 0; padding: 0; }
    ChatTurn .turn-status { color: $text-muted; }
    ChatTurn .turn-status.error { color: $text-error; }
    """

    def __init__(self, prompt: str, *, label: str = "") -> None:
        super().__init__()
        #: What Esc puts back in the input; ``label`` (a replay's) is shown instead when given.
        self.prompt = prompt
        self.label = label
        self.trace_id: str | None = None
        self.answer = ""

    def compose(self) -> ComposeResult:
        shown = self.label or "› " + self.prompt
        yield Static(Text(safe_text(shown, multiline=True)), classes="prompt")
        yield Markdown("")
        yield Static("", classes="turn-status")

    def set_status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one(".turn-status", Static)
        status.update(Text(text))
        status.set_class(error, "error")


def describe_stats(stats: TurnStats, tool_calls: tuple[str, ...] = ()) -> str:
    """``26 → 5 tokens · 10.0 tok/s · first token 0.21s · stop · Ctrl+T shows the trace``."""
    parts = [f"called {', '.join(tool_calls)}"] if tool_calls else []
    parts.append(f"{_n(stats.input_tokens)} → {_n(stats.output_tokens)} tokens")
    if stats.tokens_per_second is not None:
        parts.append(f"{stats.tokens_per_second:.1f} tok/s")
    if stats.time_to_first_token_s is not None:
        parts.append(f"first token {stats.time_to_first_token_s:.2f}s")
    if stats.done_reason:
        parts.append(stats.done_reason)
    parts.append("Ctrl+T shows the trace")
    return " · ".join(parts)


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


class ChatPane(Vertical):
    """Model picker, conversation, and prompt; every turn is a trace in the list."""

    BINDINGS = [
        Binding("escape", "stop", "Stop / back", id="chat.stop"),
        Binding("ctrl+n", "new_conversation", "New chat", id="chat.new"),
        Binding("ctrl+t", "show_trace", "Show trace", id="chat.trace"),
    ]

    DEFAULT_CSS = """
    ChatPane { border-left: vkey $panel; }
    ChatPane:focus-within { border-left: vkey $accent; }
    ChatPane #chat-header { height: 3; }
    ChatPane #chat-model { width: 1fr; }
    ChatPane #chat-connection { height: auto; width: 1fr; padding: 0 1; color: $text-muted; }
    ChatPane #chat-connection.error { color: $text-error; }
    ChatPane #chat-turns { height: 1fr; padding: 0 1; }
    ChatPane ChatInput { height: 5; }
    ChatPane .spread { color: $text-accent; margin: 0 0 1 0; }
    """

    class Leave(Message):
        """The user is done with the pane for now (Esc with no answer in flight)."""

    class ShowTrace(Message):
        """The user asked to see a chat turn's trace in the list."""

        def __init__(self, trace_id: str) -> None:
            super().__init__()
            self.trace_id = trace_id

    def __init__(self, host: str, *, model: str | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.host = host
        #: Attached after the first frame (see :meth:`attach`): importing the client stack costs
        #: a third of a second that start-up should not wait for.
        self.session: ChatSession | None = None
        self.preferred_model = model
        self._current: ChatTurn | None = None
        self._models_shown: list[str] = []
        #: The installed models, once Ollama has listed them.
        self._installed: list[str] | None = None
        #: The replay being run (the request as sent, and what it replays), while its runs go on.
        self._replaying: tuple[ReplayRequest, str] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="chat-header"):
            yield Select[str]([], prompt="model", id="chat-model")
        yield Label("", id="chat-connection", markup=False)
        yield VerticalScroll(id="chat-turns")
        yield ChatInput(id="chat-input", soft_wrap=True, show_line_numbers=False, placeholder=(
            "Ask the model… (Enter sends, Ctrl+J newline, Esc stops, Ctrl+N new chat, Ctrl+T shows the trace)"))

    def on_mount(self) -> None:
        self._set_connection(f"connecting to Ollama at {self.host}…")

    def attach(self, session: ChatSession) -> None:
        self.session = session
        self.watch_ollama()

    @property
    def model(self) -> str | None:
        value = self.query_one("#chat-model", Select).value
        return value if isinstance(value, str) else None

    # --- connection --------------------------------------------------------------------------------

    def _set_connection(self, text: str, *, error: bool = False) -> None:
        label = self.query_one("#chat-connection", Label)
        label.update(text)
        label.set_class(error, "error")

    @work(group="ollama-watch", exclusive=True, exit_on_error=False)
    async def watch_ollama(self) -> None:
        """Keep the model list fresh; while Ollama is down, retry every few seconds and say so."""
        from tui.chat.session import OllamaUnavailable

        assert self.session is not None
        while True:
            try:
                models = await self.session.models()
            except OllamaUnavailable as exc:
                self._set_connection(str(exc), error=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self._show_models(models)
            await asyncio.sleep(REFRESH_SECONDS)

    def _show_models(self, models: list[str]) -> None:
        self._installed = models
        select = self.query_one("#chat-model", Select)
        current = self.model
        choice = current if current in models else None
        if choice is None and self.preferred_model:
            choice = next((m for m in models if m in (self.preferred_model, f"{self.preferred_model}:latest")),
                          self.preferred_model)
        if choice is None and models:
            choice = models[0]
        options = list(models)
        if choice and choice not in options:
            options.append(choice)  # asked for but not installed: the turn will say how to get it
        if options != self._models_shown:
            select.set_options([(m, m) for m in options])
            self._models_shown = options
        if choice:
            select.value = choice
        where = f"Ollama at {self.host}"
        self._set_connection(f"{where} · {len(models)} model{'s' if len(models) != 1 else ''} installed"
                             if models else f"{where} has no models yet: ollama pull llama3.2", error=not models)

    # --- turns -------------------------------------------------------------------------------------

    async def on_chat_input_submitted(self, event: ChatInput.Submitted) -> None:
        await self._submit(event.text)

    @on(Input.Submitted, "#replay-options, #replay-runs")
    async def _form_submitted(self) -> None:
        """Enter in the replay form's fields sends, as in the input (the form's title says so)."""
        await self._submit(self.query_one(ChatInput).text)

    async def _submit(self, text: str) -> None:
        prompt = text.strip()
        form = self._replay_form
        if not prompt and form is None:
            return
        if self._answering:
            self.notify("Still answering: Esc stops it first", severity="warning", timeout=3)
            return
        model = self.model
        if self.session is None:
            self.notify("Still connecting to Ollama…", timeout=2)
            return
        if not model:
            self.notify("No model to ask: pick one, or pull one with `ollama pull llama3.2`", severity="warning",
                        markup=False)
            return
        if form is not None:
            await self._send_replay(form, model, text)
            return
        self.query_one(ChatInput).clear()
        turn = ChatTurn(prompt)
        await self.query_one("#chat-turns", VerticalScroll).mount(turn)
        turn.set_status(f"asking {model}…")
        self.run_turn(turn, model, prompt)

    @property
    def _answering(self) -> bool:
        """A turn or a replay's runs are under way (between two runs too, when no turn is streaming)."""
        return any(worker.node is self and worker.group == "chat" and not worker.is_cancelled
                   and worker.state in (WorkerState.PENDING, WorkerState.RUNNING) for worker in self.workers)

    @work(group="chat", exclusive=True, exit_on_error=False)
    async def run_turn(self, turn: ChatTurn, model: str, prompt: str) -> None:
        assert self.session is not None
        await self._stream(turn, model, self.session.turn(model, prompt))

    async def _stream(self, turn: ChatTurn, model: str, events: AsyncIterator[TurnEvent]) -> TurnEvent | None:
        """Show one turn's events as they come; the last event (finished or failed) is returned."""
        self._current = turn
        scroll = self.query_one("#chat-turns", VerticalScroll)
        markdown = turn.query_one(Markdown)
        stream = Markdown.get_stream(markdown)
        slow = turn.set_timer(SLOW_SECONDS, lambda: turn.set_status(  # the turn's timer goes with it
            f"waiting for {model} (loading the model can take a while)… Esc stops"))
        last: TurnEvent | None = None
        try:
            async for event in events:
                last = event
                if isinstance(event, TurnStarted):
                    turn.trace_id = event.trace_id
                elif isinstance(event, Delta):
                    slow.stop()
                    turn.answer += event.text
                    await stream.write(safe_text(event.text, multiline=True))
                    if scroll.is_vertical_scroll_end or scroll.max_scroll_y - scroll.scroll_y < 3:
                        scroll.scroll_end(animate=False)
                elif isinstance(event, TurnFinished):
                    turn.set_status(describe_stats(event.stats, event.tool_calls))
                elif isinstance(event, TurnFailed):
                    turn.set_status(event.message + "  (Ctrl+T shows the trace)", error=True)
        finally:
            slow.stop()
            await stream.stop()
            self._current = None
            scroll.scroll_end(animate=False)
        return last

    # --- replays -----------------------------------------------------------------------------------

    @property
    def _replay_form(self) -> ReplayForm | None:
        forms = self.query(ReplayForm)
        return forms.first() if forms else None

    async def load_replay(self, request: ReplayRequest, source: str, *, remote: bool) -> None:
        """Show ``request`` as a replay to edit and send: the form above the turns, its last user message in
        the input, and the recorded model picked when Ollama has it (else the form says so)."""
        self._cancel()
        await self._show_form(request, source, self._pick_replay_model(request.model, remote=remote))

    async def _show_form(self, request: ReplayRequest, source: str, note: str) -> None:
        if (old := self._replay_form) is not None:
            await old.remove()
        await self.mount(ReplayForm(request, source, note), before=self.query_one("#chat-turns"))
        chat_input = self.query_one(ChatInput)
        chat_input.text = request.last_user_text
        chat_input.move_cursor(chat_input.document.end)
        self.focus_input()

    def _pick_replay_model(self, model: str, *, remote: bool) -> str:
        """Select the recorded model if Ollama has it; otherwise a sentence saying what will run instead."""
        installed = self._installed
        if installed is None:
            return f"Ollama has not listed its models yet: pick one above once it does (the span used {model or '?'})"
        match = next((m for m in installed if model and m in (model, f"{model}:latest")), None)
        if match is not None:
            self.query_one("#chat-model", Select).value = match
            return ""
        where = "a remote model" if remote else f"not installed on Ollama at {self.host}"
        if not installed:
            return f"{model or 'The recorded model'} is {where}, and no model is installed: ollama pull llama3.2"
        return (f"{model or 'The recorded model'} is {where}: this replay runs on {self.model or installed[0]} "
                f"(pick another above: {', '.join(installed[:6])}{'…' if len(installed) > 6 else ''})")

    async def _send_replay(self, form: ReplayForm, model: str, text: str) -> None:
        """Enter with the form shown: the edited request, sent as many times as asked."""
        from tui.chat.replay import parse_options

        options = parse_options(form.options_text)
        runs = form.runs
        problem = options if isinstance(options, str) else runs if isinstance(runs, str) else ""
        recorded = form.request
        if not problem and not text.strip() and recorded.last_user_text:
            problem = "The last user message is empty: type one below, or Esc cancels the replay"
        if problem:
            self.notify(problem, title="Cannot replay", severity="error", timeout=6, markup=False)
            return
        assert isinstance(options, dict) and isinstance(runs, int)
        unedited = text.strip() == recorded.last_user_text.strip()  # sent as recorded, whitespace and all
        request = recorded.edited(model=model, system=form.system, options=options,
                                  last_user=recorded.last_user_text if unedited else text.strip())
        if not request.messages:
            self.notify("Nothing to send: the replay has no message; type one below", severity="warning", timeout=4)
            return
        assert self.session is not None
        self.session.new_conversation()
        self.query_one("#chat-turns", VerticalScroll).remove_children()
        await form.remove()
        self.query_one(ChatInput).clear()
        self.run_replay(request, runs, form.source)

    @work(group="chat", exclusive=True, exit_on_error=False)
    async def run_replay(self, request: ReplayRequest, runs: int, source: str) -> None:
        """Send the replay ``runs`` times, one after another; after several, the spread of what came back."""
        assert self.session is not None
        scroll = self.query_one("#chat-turns", VerticalScroll)
        said = request.last_user_text or "(the recorded messages, as they were)"
        done: list[Run] = []
        self._replaying = mine = (request, source)
        try:
            for i in range(runs):
                count = f" {i + 1}/{runs}" if runs > 1 else ""
                turn = ChatTurn(request.last_user_text,
                                label=f"↻ replay{count} of {source} on {request.model}\n› {said}")
                await scroll.mount(turn)
                turn.set_status(f"asking {request.model}…")
                last = await self._stream(turn, request.model, self.session.replay(request))
                if not isinstance(last, TurnFinished):
                    break
                done.append(Run(last.content, last.stats.output_tokens, last.stats.duration_s))
        finally:
            if self._replaying is mine:  # not a newer replay's
                self._replaying = None
        if runs > 1 and done:
            await scroll.mount(Static(Text(describe_spread(spread(done))), classes="spread"))
            scroll.scroll_end(animate=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place turns worker failures into visible text, never a traceback (as harlequin does)."""
        if event.worker.group == "chat" and event.state is WorkerState.ERROR:
            self._current = None
            self.notify(f"Chat failed: {event.worker.error}", severity="error", markup=False)
        if event.worker.group == "ollama-watch" and event.state is WorkerState.ERROR:
            self._set_connection(f"Lost track of Ollama: {event.worker.error}", error=True)

    # --- actions -----------------------------------------------------------------------------------

    def action_stop(self) -> None:
        """Esc: stop the answer in flight — its prompt, or the replay as it was sent, comes back to send again;
        with none, cancel a replay not yet sent; otherwise leave the pane."""
        if self._answering:
            turn, replay = self._cancel()
            if turn is not None:
                turn.set_status("stopped" + (" · Ctrl+T shows the trace" if turn.trace_id else ""), error=True)
            if replay is not None:
                self.call_later(self._show_form, *replay, "Stopped: Enter sends it again, Esc cancels")
            elif turn is not None:
                chat_input = self.query_one(ChatInput)
                chat_input.text = turn.prompt
                chat_input.move_cursor(chat_input.document.end)
            return
        if (form := self._replay_form) is not None:
            form.remove()
            self.query_one(ChatInput).clear()
            self.notify("Replay cancelled", timeout=2)
            return
        self.post_message(self.Leave())

    def _cancel(self) -> tuple[ChatTurn | None, tuple[ReplayRequest, str] | None]:
        """Cancel what is under way; the turn that was streaming, and the replay being run, if any."""
        turn, replay = self._current, self._replaying
        self.workers.cancel_group(self, "chat")
        self._current, self._replaying = None, None
        return turn, replay

    def action_new_conversation(self) -> None:
        self._cancel()
        if self.session is not None:
            self.session.new_conversation()
        if (form := self._replay_form) is not None:
            form.remove()
        self.query_one(ChatInput).clear()
        self.query_one("#chat-turns", VerticalScroll).remove_children()
        self.notify("New conversation", timeout=2)

    def action_show_trace(self) -> None:
        trace_ids = [turn.trace_id for turn in self.query(ChatTurn) if turn.trace_id]
        if not trace_ids:
            self.notify("No chat turn has a trace yet", timeout=2)
            return
        self.post_message(self.ShowTrace(trace_ids[-1]))

    def focus_input(self) -> None:
        self.screen.set_focus(self.query_one(ChatInput))
