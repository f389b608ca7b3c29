"""The Textual application: wires the receivers' queue, the store and the widgets on one loop.

Store changes reach the screen as one coalesced update per tick (20 Hz), never one per span:
the pump only adds to the store; the tick drains the store's change set and applies it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Input, TextArea

from tui.app.empty_state import empty_state_lines
from tui.app.screens.confirm import ConfirmScreen
from tui.app.screens.help import HelpScreen
from tui.app.screens.telemetry import TelemetryScreen
from tui.app.screens.value import ValueScreen
from tui.app.widgets.chat import ChatInput, ChatPane
from tui.app.widgets.detail import DetailList, DetailPane
from tui.app.widgets.status_line import Status, StatusLine
from tui.app.widgets.trace_list import TraceList
from tui.gc_policy import FullCollector
from tui.model.otlp_json import request_json
from tui.model.span import Event, Span
from tui.model.store import StoreChanges, TraceStore
from tui.receiver import OtlpReceivers, pump

TICK_SECONDS = 0.05
STATUS_SECONDS = 0.5
#: While traces stream in, the detail of the (moving) selection is rebuilt at most this often:
#: rebuilding it on every tick cost more than everything else under load.
LIVE_DETAIL_SECONDS = 0.5
#: Under a flood (more than BUSY_SPANS_PER_TICK new spans a tick) the list is redrawn at most
#: every BUSY_REDRAW_SECONDS (5 Hz) instead of every tick, leaving the CPU to the receivers.
#: Counted in time, not ticks: under a flood the ticks themselves come late.
BUSY_SPANS_PER_TICK = 2_000
BUSY_REDRAW_SECONDS = 0.2
#: The header says "overloaded" for this long after the last back-pressure answer.
OVERLOAD_SECONDS = 3.0
#: The chat pane opens by itself when the terminal is at least this wide (else: "a" or F2).
CHAT_AUTO_WIDTH = 180


class OllamaTuiApp(App[int]):
    """A live OpenTelemetry span viewer."""

    TITLE = "ollama-tui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        # Priority: handled as the key arrives, so the keys typed right after "/" reach the filter.
        Binding("slash", "filter", "Filter", priority=True, id="app.filter"),
        Binding("enter", "filter_done", "In the filter: keep it, back to the list", show=False, priority=True, id="app.filter_done"),
        Binding("escape", "filter_clear", "In the filter: clear it", show=False, priority=True, id="app.filter_clear"),
        Binding("e", "toggle_errors", "Errors only", id="app.errors"),
        Binding("f", "toggle_follow", "Follow", id="app.follow"),
        Binding("p", "toggle_pause", "Pause", id="app.pause"),
        Binding("t", "next_tab", "Next tab", id="app.next_tab"),
        Binding("o", "open_value", "Open value", id="app.open"),
        Binding("y", "copy_value", "Copy", id="app.copy"),
        Binding("s", "save_trace", "Save trace", id="app.save_trace"),
        Binding("S", "save_matching", "Save all shown", show=False, id="app.save_matching"),
        Binding("c", "clear", "Clear", id="app.clear"),
        Binding("L", "telemetry", "Logs & metrics", show=False, id="app.telemetry"),
        Binding("a", "ask", "Ask (chat)", id="app.ask"),
        Binding("f2", "toggle_chat", "Chat pane", priority=True, id="app.chat"),
        Binding("tab", "switch_pane", "Next pane", show=False, priority=True, id="app.pane"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        receivers: OtlpReceivers,
        store: TraceStore,
        *,
        chat_host: str | None = None,
        model: str | None = None,
        load: list[tuple[str, bytes]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.receivers = receivers
        self.store = store
        self.clock = clock
        #: Set once the user opens or closes the chat pane; from then on the width no longer decides.
        self._chat_toggled = False
        # Held directly, not queried: timers may still fire while the screen is being torn down.
        self._status_line = StatusLine(id="status")
        self._trace_list = TraceList(store, empty_help=self._empty_help, clock=clock, id="traces")
        self._detail = DetailPane(logs=self._log_events, id="detail")
        self._filter = Input(placeholder="filter: service, span name, model, attribute values, prompt text  "
                                         "(Enter keeps it, Esc clears)", id="filter")
        self._chat_pane = ChatPane(chat_host, model=model, id="chat") if chat_host is not None else None
        self._chat_session = None
        self._load = load or []
        self.paused = False
        self._pending = StoreChanges()
        self._added_at_pause = 0
        self._rate_sample = (time.monotonic(), 0)
        self._detail_stale = False
        self._detail_shown_at = 0.0
        self._applied_at = 0.0
        self._applied_spans = 0
        self._refused_seen = 0
        self._refused_at = -OVERLOAD_SECONDS
        self._collector = FullCollector()
        self._spans_per_second = 0.0

    # --- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self._status_line
        with Horizontal(id="main"):
            yield self._trace_list
            yield self._detail
            if self._chat_pane is not None:
                yield self._chat_pane
        yield self._filter
        yield Footer()

    def _log_events(self, span: Span) -> tuple[Event, ...]:
        log_store = self.receivers.ingest.log_store
        return tuple(record.as_event() for record in log_store.for_span(span.trace_id, span.span_id))

    def _empty_help(self) -> list[str]:
        index = self.trace_list.index
        if len(self.store) and (index.filter_text or index.errors_only):
            what = f"matching {index.filter_text!r}" if index.filter_text else ""
            errors = "with errors" if index.errors_only else ""
            return [f"No traces {' and '.join(p for p in (what, errors) if p)} among {len(self.store):,} held.",
                    "", "Esc in the filter clears it; e shows all traces again."]
        return empty_state_lines(self.receivers.addresses, self.receivers.scheme)

    @property
    def trace_list(self) -> TraceList:
        return self._trace_list

    @property
    def detail(self) -> DetailPane:
        return self._detail

    def on_mount(self) -> None:
        self.run_worker(pump(self.receivers.queue, self.store), name="ingest", group="ingest", exit_on_error=True)
        self._every(TICK_SECONDS, self._tick)
        self._every(STATUS_SECONDS, self._update_status)
        self._every(1.0, self.trace_list.refresh)  # ages
        self.trace_list.focus()
        self._update_status()
        self.detail.show(None)
        self._auto_show_chat()
        if self._chat_pane is not None:
            self.call_after_refresh(self._start_chat)
        if self._load:
            self.run_worker(self._load_files(), name="load", group="load", exit_on_error=False)

    def _every(self, seconds: float, callback: Callable[[], object]) -> None:
        """Call back every `seconds` until shutdown starts. Textual skips an app's timers after `exit()`, but
        a shutdown without it (Pilot's, a crash's) keeps them firing while the screen's widgets are removed,
        and a tick then reached for widgets already gone."""

        def tick() -> None:
            if self.is_running:
                callback()

        self.set_interval(seconds, tick)

    async def _load_files(self) -> None:
        from tui.receiver.files import UnreadableFile, load_into

        names = ", ".join(name for name, _ in self._load)
        try:
            spans = await load_into(self.receivers.ingest, self._load)
        except UnreadableFile as exc:
            self.notify(str(exc), title="Cannot load", severity="error", timeout=10, markup=False)
            return
        self.notify(f"Loaded {spans:,} spans from {names}", timeout=4, markup=False)

    def _start_chat(self) -> None:
        """Import the Ollama client stack and connect, once the first frame is on screen."""
        from tui.chat.session import ChatSession
        from tui.chat.tracing import chat_tracer_provider

        assert self._chat_pane is not None
        self._chat_session = ChatSession(self._chat_pane.host, chat_tracer_provider(self.receivers.ingest))
        self._chat_pane.attach(self._chat_session)

    async def on_unmount(self) -> None:
        if self._chat_session is not None:
            await self._chat_session.close()

    def on_resize(self) -> None:
        self._auto_show_chat()

    def _auto_show_chat(self) -> None:
        if self._chat_pane is not None and not self._chat_toggled:
            self._chat_pane.display = self.size.width >= CHAT_AUTO_WIDTH

    # --- live updates ----------------------------------------------------------------------------

    def _tick(self) -> None:
        """Apply everything the store changed since the last tick, as one update."""
        if not self.trace_list.index.scan_done:
            self.trace_list.continue_filter()
            self._update_status()
        now = time.monotonic()
        arrived = self.store.spans_added - self._applied_spans
        if arrived > BUSY_SPANS_PER_TICK and now - self._applied_at < BUSY_REDRAW_SECONDS:
            return  # a flood: redraw at 5 Hz; the changes keep accumulating in the store meanwhile
        self._applied_spans = self.store.spans_added
        self._applied_at = now
        changes = self.store.drain_changes()
        if self.paused:
            self._pending.updated |= changes.updated
            self._pending.updated -= changes.evicted
            if changes.evicted:  # rows of evicted traces must go even while paused
                self._apply(StoreChanges(evicted=changes.evicted))
            return
        if self._pending:
            changes.updated |= self._pending.updated
            changes.updated -= changes.evicted
            self._pending = StoreChanges()
        if changes:
            self._apply(changes)
        if self._detail_stale and now - self._detail_shown_at >= LIVE_DETAIL_SECONDS:
            self._show_detail()

    def _apply(self, changes: StoreChanges) -> None:
        log_store = self.receivers.ingest.log_store
        for trace_id in changes.evicted:
            log_store.forget_trace(trace_id)
        if changes.cleared:
            log_store.clear()
        trace_list = self.trace_list
        trace_list.apply_changes(changes)
        selected = trace_list.selected
        if selected is not None and (selected[0] in changes.updated or changes.cleared):
            self._detail_stale = True

    def _show_detail(self) -> None:
        self._detail_stale = False
        self._detail_shown_at = time.monotonic()
        self.detail.show(self.trace_list.current)

    def _update_status(self) -> None:
        self._collector.poll(self.store.spans_added)
        stats = self.receivers.stats
        now = time.monotonic()
        then, accepted = self._rate_sample
        if now - then >= 0.25:
            self._spans_per_second = (stats.spans_accepted - accepted) / (now - then)
            self._rate_sample = (now, stats.spans_accepted)
        refused = stats.retries_asked
        if refused != self._refused_seen:
            self._refused_seen, self._refused_at = refused, now
        index = self.trace_list.index
        self._status_line.show(
            Status(
                listening=self.receivers.addresses,
                traces=len(self.store),
                spans=self.store.span_count,
                spans_per_second=self._spans_per_second,
                rejected=stats.total_spans_rejected,
                evicted=self.store.evicted_spans,
                following=self.trace_list.following,
                paused=self.paused,
                waiting=self.store.spans_added - self._added_at_pause if self.paused else 0,
                shown=index.trace_count,
                filter_text=index.filter_text,
                errors_only=index.errors_only,
                scanned=index.scan_progress,
                overloaded=now - self._refused_at < OVERLOAD_SECONDS,
                retries_asked=refused,
                forwarding=self._forwarding(),
            )
        )

    def _forwarding(self) -> tuple[int, int, str] | None:
        forwarders = self.receivers.forwarders
        if not forwarders:
            return None
        error = next((f.stats.last_error for f in forwarders if f.stats.last_error), "")
        return (sum(f.pending for f in forwarders), sum(sum(f.stats.lost.values()) for f in forwarders), error)

    # --- messages --------------------------------------------------------------------------------

    def on_trace_list_selection_changed(self, event: TraceList.SelectionChanged) -> None:
        if event.live:
            self._detail_stale = True  # shown by the tick, at most every LIVE_DETAIL_SECONDS
        else:
            self._show_detail()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.trace_list.refilter(text=event.value)
            self._update_status()


    # --- actions ---------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The filter keys are priority bindings, handled as each key arrives (so a burst of typing
        # lands where the user meant); they apply only where they make sense.
        if action == "filter":
            return not (isinstance(self.focused, (Input, TextArea)) or self.screen.is_modal)
        if action in ("filter_done", "filter_clear"):
            return self.focused is self._filter
        return True

    def action_filter(self) -> None:
        filter_input = self._filter
        filter_input.add_class("visible")
        # Focus now, not on the next loop turn (Widget.focus defers): "/chat" typed or pasted in one
        # burst must reach the input, not run "c" (clear) and "h" on the list.
        self.screen.set_focus(filter_input)

    def action_filter_done(self) -> None:
        """Enter: keep the filter and go back to the list (hide the input if it is empty)."""
        filter_input = self._filter
        if not filter_input.value:
            filter_input.remove_class("visible")
        self.screen.set_focus(self.trace_list)

    def action_filter_clear(self) -> None:
        filter_input = self._filter
        filter_input.value = ""
        self.trace_list.refilter(text="")
        filter_input.remove_class("visible")
        self.screen.set_focus(self.trace_list)

    def action_toggle_errors(self) -> None:
        index = self.trace_list.index
        self.trace_list.refilter(errors_only=not index.errors_only)
        self.notify("Showing only traces with errors" if index.errors_only else "Showing all traces", timeout=2)
        self._update_status()

    def action_toggle_follow(self) -> None:
        self.trace_list.follow(not self.trace_list.following)
        self._update_status()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            self._added_at_pause = self.store.spans_added
        else:
            self._tick()
        self._update_status()

    def action_next_tab(self) -> None:
        self.detail.cycle_tab()

    def action_switch_pane(self) -> None:
        """Tab cycles the trace list → the active detail tab → the chat input (when shown)."""
        order = [self.trace_list, self.detail.active_list]
        if self._chat_pane is not None and self._chat_pane.display:
            order.append(self._chat_pane.query_one(ChatInput))
        current = next((i for i, w in enumerate(order) if w.has_focus), -1)
        self.screen.set_focus(order[(current + 1) % len(order)])

    def action_ask(self) -> None:
        """Open the chat pane (if closed) and put the cursor in its prompt."""
        pane = self._chat_pane
        if pane is None:
            self.notify("The chat pane is off (--no-chat)", timeout=3)
            return
        if not pane.display:
            self._chat_toggled = True
            pane.display = True
        pane.focus_input()

    def action_toggle_chat(self) -> None:
        pane = self._chat_pane
        if pane is None:
            self.notify("The chat pane is off (--no-chat)", timeout=3)
            return
        self._chat_toggled = True
        pane.display = not pane.display
        if pane.display:
            pane.focus_input()
        else:
            self.screen.set_focus(self.trace_list)

    def on_chat_pane_show_trace(self, event: ChatPane.ShowTrace) -> None:
        """Ctrl+T in the chat: select that turn's trace in the list (Esc: just go back to the list)."""
        self.screen.set_focus(self.trace_list)
        if not event.trace_id:
            return
        if not self.paused:
            self._tick()  # the turn's spans may have arrived since the last tick
        if self.trace_list.select(event.trace_id):
            return
        index = self.trace_list.index
        if event.trace_id in self.store and (index.filter_text or index.errors_only):
            self.action_filter_clear()
            self.trace_list.refilter(errors_only=False)
            if self.trace_list.select(event.trace_id):
                return
        reason = "the display is paused (p)" if self.paused else "its spans have not arrived yet"
        self.notify(f"That turn's trace is not in the list: {reason}", timeout=3)

    def _current_item(self):  # -> Item | None
        focused = self.focused
        detail_list = focused if isinstance(focused, DetailList) else self.detail.active_list
        return detail_list.current

    def action_open_value(self) -> None:
        item = self._current_item()
        if item is not None:
            self.push_screen(ValueScreen(item.title, item.copy_text))

    def action_copy_value(self) -> None:
        item = self._current_item()
        if item is not None:
            self.copy_to_clipboard(item.copy_text)
            self.notify(f"Copied {item.title!r} ({len(item.copy_text):,} characters)", timeout=2, markup=False)

    def action_save_trace(self) -> None:
        """s: the selected trace, as OTLP JSON lines that --load reads back."""
        row = self.trace_list.current
        if row is None:
            self.notify("Nothing selected to save", timeout=2)
            return
        self._save([row.trace.trace_id], "trace")

    def action_save_matching(self) -> None:
        """S: every trace the list shows (all of them, or those matching the filter / errors only)."""
        index = self.trace_list.index
        if not index.scan_done:
            index.continue_scan(None)
        self._save(index.shown_trace_ids(), "traces")

    def _save(self, trace_ids: list[str], what: str) -> None:
        path = Path.cwd() / time.strftime(f"ollama-tui-{what}-%Y%m%d-%H%M%S.jsonl")
        traces = [t for t in (self.store.get(i) for i in trace_ids) if t is not None]
        self.run_worker(lambda: self._write_traces(path, traces), thread=True, group="save", exit_on_error=False)

    def _write_traces(self, path: Path, traces: list) -> None:  # noqa: ANN001 - list[Trace]
        try:
            with path.open("w", encoding="utf-8") as out:
                for trace in traces:
                    out.write(json.dumps(request_json(trace.spans.values()), separators=(",", ":")) + "\n")
        except OSError as exc:
            self.call_from_thread(self.notify, f"Cannot save {path}: {exc.strerror or exc}", severity="error",
                                  markup=False)
            return
        spans = sum(t.span_count for t in traces)
        self.call_from_thread(self.notify, f"Saved {len(traces):,} trace(s), {spans:,} spans, to {path}",
                              timeout=6, markup=False)

    def action_telemetry(self) -> None:
        """L: GenAI metrics per model and the log records that name no trace."""
        ingest = self.receivers.ingest
        self.push_screen(TelemetryScreen(ingest.log_store, ingest.metrics_summary, ingest.stats.log_records,
                                         ingest.stats.metric_points))

    def action_clear(self) -> None:
        def answer(yes: bool | None) -> None:
            if yes:
                self.store.clear()
                self._pending = StoreChanges()
                self._apply(self.store.drain_changes())
                self._show_detail()
                self._update_status()

        self.push_screen(ConfirmScreen(f"Clear all {len(self.store):,} traces from memory?"), answer)

    def action_help(self) -> None:
        intro = (
            "ollama-tui shows OpenTelemetry traces as they arrive. Select a trace or span on the left;"
            " its LLM prompt, completion and tokens, attributes, events and timeline are on the right.\n"
        )
        sections = [
            ("Trace list", list(TraceList.BINDINGS)),
            ("Anywhere", [b for b in self.BINDINGS if isinstance(b, Binding)]),
            ("Chat pane", [*ChatInput.BINDINGS, *ChatPane.BINDINGS]),
            ("Full-screen value", list(ValueScreen.BINDINGS)),
        ]
        self.push_screen(HelpScreen(sections, intro))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Filter traces", "Filter by service, span name, model, attributes, prompt text",
                            self.action_filter)
        yield SystemCommand("Errors only", "Show only traces with an error (toggle)", self.action_toggle_errors)
        yield SystemCommand("Follow newest", "Keep the cursor on the newest trace (toggle)", self.action_toggle_follow)
        yield SystemCommand("Pause display", "Freeze the list while spans keep arriving (toggle)",
                            self.action_toggle_pause)
        yield SystemCommand("Clear traces", "Forget every trace held in memory", self.action_clear)
        yield SystemCommand("Save trace", "Write the selected trace as OTLP JSON lines (--load reads it)",
                            self.action_save_trace)
        yield SystemCommand("Save all shown traces", "Write every trace the list shows as OTLP JSON lines",
                            self.action_save_matching)
        yield SystemCommand("Open value", "Show the selected value full screen", self.action_open_value)
        yield SystemCommand("Copy value", "Copy the selected value, prompt or completion", self.action_copy_value)
        yield SystemCommand("Help", "Every key binding", self.action_help)
        yield SystemCommand("Logs and metrics", "GenAI metrics per model, logs that name no trace",
                            self.action_telemetry)
        if self._chat_pane is not None:
            yield SystemCommand("Chat: ask", "Open the chat pane and type a prompt", self.action_ask)
            yield SystemCommand("Chat: show or hide the pane", "Toggle the chat pane", self.action_toggle_chat)
            yield SystemCommand("Chat: new conversation", "Forget the conversation so far",
                                self._chat_pane.action_new_conversation)
