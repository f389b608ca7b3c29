"""The main screen: the live trace list, the detail pane and the chat pane, and every key between them.

The screen owns the layout, the timers and the handlers; the App lends it the services. What the
header shows is reactive state here, bound into the header (and the list) with ``data_bind``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, TextArea

from tui.app.commands import TraceCommands
from tui.app.present.clipboard import copy_report
from tui.app.present.detail import Item
from tui.app.present.empty_state import empty_state_lines, no_match_lines
from tui.app.present.header import Counts
from tui.app.screens.compare import CompareScreen
from tui.app.screens.confirm import ConfirmQuit, ConfirmScreen
from tui.app.screens.help import HelpScreen
from tui.app.screens.sources import SourcesScreen
from tui.app.screens.stats import StatsScreen
from tui.app.screens.telemetry import TelemetryScreen
from tui.app.screens.value import ValueScreen
from tui.app.services import Services
from tui.app.widgets.chat import ChatInput, ChatPane
from tui.app.widgets.detail import DetailList, DetailPane
from tui.app.widgets.filter_bar import FilterBar
from tui.app.widgets.output import OutputPane
from tui.app.widgets.status_line import StatusLine
from tui.app.widgets.trace_list import TraceList
from tui.model.genai import GenAIView, is_model_call
from tui.model.hosting import runs_remotely
from tui.model.live import IngestRates, RefreshPolicy
from tui.model.query import QueryError, parse
from tui.model.replays import ReplayLinks, SpanRef, replay_links
from tui.model.span import Span
from tui.model.store import StoreChanges, Trace
from tui.model.trace_list import SORTS, trace_call
from tui.programs import Program, ProgramStartError

TICK_SECONDS = 0.05
#: The Stats figures' share of a tick while they catch up with the store (see :class:`StatsTracker`).
STATS_STEP_SECONDS = 0.003
SAMPLE_SECONDS = 0.5
#: The chat pane opens by itself when the terminal is at least this wide (else: "a" or F2).
CHAT_AUTO_WIDTH = 180
#: Below this width the panes stack (list above, detail or chat below), so the list keeps every column.
STACK_WIDTH = 120
#: What ``z`` can give the whole screen to.
ZOOMABLE = ("list", "detail", "chat", "output")


class TracesScreen(Screen[None]):
    """Traces as they arrive; the selected one's LLM view, attributes, events and timeline beside them."""

    COMMANDS = {TraceCommands}
    BINDINGS = [
        # Priority: handled as the key arrives, so keys typed right after "/" reach the bar, not the list.
        Binding("slash", "filter", "Filter", priority=True, id="traces.filter"),
        Binding("e", "toggle_errors", "Errors", tooltip="Errors only: traces with an error (toggle)",
                id="traces.errors"),
        Binding("f", "toggle_follow", "Follow", tooltip="Follow the newest trace (toggle)", id="traces.follow"),
        Binding("greater_than_sign", "cycle_sort", "Sort", tooltip="Sort the list: newest, oldest, longest, most "
                "tokens, slowest first token, errors first (cycles)", show=False, id="traces.sort"),
        Binding("p", "toggle_pause", "Pause", tooltip="Pause: freeze the list while spans keep arriving (toggle)",
                id="traces.pause"),
        Binding("t", "next_tab", "Next tab", show=False, id="traces.next_tab"),
        Binding("z", "zoom", "Zoom", tooltip="Give the focused pane the whole screen (again: back)",
                id="traces.zoom"),
        Binding("d", "toggle_detail", "Detail pane", tooltip="Hide or show the detail pane", show=False,
                id="traces.detail"),
        Binding("o", "open_value", "Open value", show=False, id="traces.open"),
        Binding("y", "copy_value", "Copy", show=False, id="traces.copy"),
        Binding("Y", "save_value", "Save value", tooltip="Save the selected value to a file", show=False,
                id="traces.save_value"),
        Binding("s", "save_trace", "Save trace", show=False, id="traces.save_trace"),
        Binding("S", "save_shown", "Save all shown", show=False, id="traces.save_shown"),
        Binding("c", "clear", "Clear", show=False, id="traces.clear"),
        Binding("L", "telemetry", "Logs & metrics", show=False, id="traces.telemetry"),
        Binding("number_sign", "stats", "Stats", tooltip="Stats per service and per model: rates, errors, "
                "latency percentiles, tokens, over a window", show=False, id="traces.stats"),
        Binding("x", "sources", "Sources", tooltip="Sources: every exporter, what it sent, and why exports fail",
                show=False, id="traces.sources"),
        Binding("r", "replay", "Replay", tooltip="Replay the selected LLM call on a local model: it opens in the chat "
                "pane, every part editable before Enter sends it", show=False, id="traces.replay"),
        Binding("m", "mark", "Mark", tooltip="Mark the selected LLM call to compare (the last two marked count)",
                show=False, id="traces.mark"),
        Binding("C", "compare", "Compare", tooltip="Compare two LLM calls side by side: the two marked, the marked "
                "one and the selected, or a replay and its original", show=False, id="traces.compare"),
        Binding("b", "to_original", "Replayed span", tooltip="On a replay: go to the span it replays",
                show=False, id="traces.original"),
        Binding("n", "to_replay", "Next replay", tooltip="On a replayed span: go to its replays, one after another",
                show=False, id="traces.next_replay"),
        Binding("a", "ask", "Ask (chat)", show=False, id="traces.ask"),
        Binding("f2", "toggle_chat", "Chat pane", show=False, id="traces.chat"),
        Binding("O", "toggle_output", "Output pane", tooltip="Hide or show the Output pane of the programs run "
                "under ollama-tui", show=False, id="traces.output"),
        Binding("R", "restart_program", "Restart program", tooltip="Restart the program shown in the Output pane",
                show=False, id="traces.restart"),
        Binding("tab", "switch_pane", "Next pane", show=False, id="traces.pane"),
        Binding("question_mark", "help", "Help", id="traces.help"),
        Binding("q", "quit", "Quit", id="traces.quit"),
    ]

    #: The header's figures, sampled twice a second and at once after a change the user made.
    counts: var[Counts] = var(Counts, init=False)
    #: Free text the list is filtered by ("" for none).
    filter_text = var("", init=False)
    #: How the list is sorted (a key of ``SORTS``), and that as the header says it ("" for newest first).
    sort = var("newest", init=False)
    sort_label = var("", init=False)
    #: Only traces with an error are listed.
    errors_only = var(False, init=False)
    #: The list is frozen while spans keep arriving.
    paused = var(False, init=False)
    #: The cursor stays on the newest trace (mirrors the list's own state, which its keys change).
    following = var(True, init=False)
    #: Exporters were told to back off in the last few seconds.
    overloaded = var(False, init=False)
    #: The chat pane is shown.
    chat_open = var(False, init=False)
    #: The detail pane is shown (``d`` hides it, to give the list the room).
    detail_open = var(True, init=False)
    #: The pane given the whole screen ("" for none).
    zoomed = var("", init=False)
    #: The Output pane is shown (only with programs run under ollama-tui).
    output_open = var(True, init=False)
    #: LLM calls marked to compare (``m``), as (trace id, span id), oldest first: at most two.
    marked: var[tuple[tuple[str, str], ...]] = var((), init=False)

    def __init__(self, services: Services, *, confirm_quit: bool = True) -> None:
        super().__init__()
        self.services = services
        #: ``q`` asks first while traces are held (``--no-confirm`` turns it off).
        self.confirm_quit = confirm_quit
        self.policy = RefreshPolicy(services.store)
        self.rates = IngestRates()
        #: Set once the user opens or closes the chat pane; from then on the width no longer decides.
        self._chat_toggled = False
        self._replays_seen = services.store.replays_noted

    # --- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        receivers = self.services.receivers
        yield StatusLine(receivers.addresses, id="status").data_bind(
            TracesScreen.counts, TracesScreen.filter_text, TracesScreen.errors_only, TracesScreen.paused,
            TracesScreen.following, TracesScreen.overloaded, sort=TracesScreen.sort_label)
        with Horizontal(id="main"):
            yield TraceList(self.services.store, clock=self.services.clock, id="traces")
            yield DetailPane(logs=receivers.ingest.log_store.events_for, links=self._links, id="detail")
            chat = self.services.chat
            if chat is not None:
                pane = ChatPane(chat.host, model=chat.model, id="chat")
                pane.display = self.chat_open  # opened on mount when the terminal is wide enough
                yield pane
        programs = self.services.programs
        if programs is not None:
            yield OutputPane(programs.programs, id="output")
        yield FilterBar(id="filter")
        yield Footer()

    @property
    def trace_list(self) -> TraceList:
        return self.query_one(TraceList)

    @property
    def detail(self) -> DetailPane:
        return self.query_one(DetailPane)

    @property
    def chat_pane(self) -> ChatPane | None:
        return self.query_one(ChatPane) if self.services.chat is not None else None

    @property
    def output_pane(self) -> OutputPane | None:
        return self.query_one(OutputPane) if self.services.programs is not None else None

    def on_mount(self) -> None:
        self.set_interval(TICK_SECONDS, self.tick)
        self.set_interval(SAMPLE_SECONDS, self.sample)
        self.set_interval(1.0, self.trace_list.refresh)  # ages
        self.watch(self.trace_list, "following", self._list_following)
        self.trace_list.focus()
        self.sample()
        self.detail.show(None)
        self._open_chat_if_wide()
        if self.services.chat is not None:
            self.call_after_refresh(self._start_chat)

    def _start_chat(self) -> None:
        pane, chat = self.chat_pane, self.services.chat
        if pane is not None and chat is not None:
            pane.attach(chat.start())

    def on_resize(self) -> None:
        self.set_class(self.size.width < STACK_WIDTH, "-stacked")
        self._open_chat_if_wide()

    def _open_chat_if_wide(self) -> None:
        if self.services.chat is not None and not self._chat_toggled:
            self.chat_open = self.size.width >= CHAT_AUTO_WIDTH

    # --- live updates ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Apply everything the store changed since the last tick, as one update."""
        trace_list = self.trace_list
        if not (trace_list.index.scan_done and trace_list.index.sort_done):
            trace_list.continue_filter()
            self.sample()
        now = time.monotonic()
        changes = self.policy.take(now)
        if changes:
            self._apply(changes)
        if not self.paused:  # a paused list shows no span that arrived since, even in a trace being rebuilt
            trace_list.continue_rebuild()
        if self.policy.detail_due(now):
            self._show_detail()
        output = self.output_pane
        if output is not None and self.output_open:
            output.flush()
        stats = self.services.stats
        if not stats.idle and self.app.screen is self:  # the Stats screen steps it itself
            stats.step(STATS_STEP_SECONDS)

    def _apply(self, changes: StoreChanges) -> None:
        self.services.stats.note(changes)
        if self.marked and (changes.cleared or changes.evicted):  # a mark names a held call, or nothing
            self.marked = tuple(key for key in self.marked
                                if not changes.cleared and key[0] not in changes.evicted)
        log_store = self.services.receivers.ingest.log_store
        for trace_id in changes.evicted:
            log_store.forget_trace(trace_id)
        if changes.cleared:
            log_store.clear()
        trace_list = self.trace_list
        trace_list.apply_changes(changes)
        self._show_emptiness()
        selected = trace_list.selected
        replays = self.services.store.replays_noted
        new_replay = replays != self._replays_seen  # changes its original's "replayed N times"
        self._replays_seen = replays
        if selected is not None and (selected[0] in changes.updated or changes.cleared or new_replay):
            self.policy.detail_changed()

    def _show_detail(self) -> None:
        self.policy.detail_shown(time.monotonic())
        if self.detail_open:
            self.detail.show(self.trace_list.current)

    def sample(self) -> None:
        """Measure what the header and the empty list say."""
        store, receivers = self.services.store, self.services.receivers
        stats = receivers.stats
        now = time.monotonic()
        self.rates.sample(stats.spans_accepted, stats.retries_asked, now)
        index = self.trace_list.index
        self.counts = Counts(
            traces=len(store), spans=store.span_count, spans_per_second=self.rates.spans_per_second,
            rejected=stats.total_spans_rejected, evicted=store.evicted_spans, capped=store.capped_spans,
            waiting=self.policy.waiting,
            shown=index.trace_count, scanned=index.scan_progress, sorted=index.sort_progress,
            retries_asked=stats.retries_asked,
            duplicates=stats.duplicate_spans, forwarding=self._forwarding(),
            save_error=recorder.error if (recorder := receivers.recorder) else "")
        self.overloaded = self.rates.overloaded(now)
        self._show_emptiness()
        self._tell_new_problems()

    def _show_emptiness(self) -> None:
        """With no row to show: what the list says instead, and no room spent on an empty detail pane."""
        empty = not len(self.trace_list.index)
        self.set_class(empty, "-empty")
        if not empty:
            return
        held = len(self.services.store)
        if held and (self.filter_text or self.errors_only):
            lines = no_match_lines(held, self.filter_text, self.errors_only)
        else:
            receivers = self.services.receivers
            problems = [diagnosis.text for diagnosis in receivers.doctor.problems()]
            lines = empty_state_lines(receivers.addresses, receivers.scheme, problems)
        self.trace_list.empty_lines = tuple(lines)

    def _tell_new_problems(self) -> None:
        """Each new (exporter, problem) once, as a notification naming the fix; the Sources screen keeps them."""
        for diagnosis in self.services.receivers.doctor.take_new():
            self.notify(diagnosis.text, title="An export failed", severity="warning", timeout=12, markup=False)

    def _forwarding(self) -> tuple[int, int, str] | None:
        forwarders = self.services.receivers.forwarders
        if not forwarders:
            return None
        error = next((f.stats.last_error for f in forwarders if f.stats.last_error), "")
        return (sum(f.pending for f in forwarders), sum(sum(f.stats.lost.values()) for f in forwarders), error)

    # --- reactive state ----------------------------------------------------------------------------

    def watch_filter_text(self, text: str) -> None:
        self.trace_list.refilter(text=text)
        self.sample()

    def watch_errors_only(self, errors_only: bool) -> None:
        self.trace_list.refilter(errors_only=errors_only)
        self.notify("Showing only traces with errors" if errors_only else "Showing all traces", timeout=2)
        self.sample()

    def watch_paused(self, paused: bool) -> None:
        if paused:
            self.policy.pause()
        else:
            self.policy.resume()
            self.tick()
        self.sample()

    def _list_following(self, following: bool) -> None:
        self.following = following

    def watch_chat_open(self, chat_open: bool) -> None:
        pane = self.chat_pane
        if pane is not None:
            pane.display = chat_open
        self.set_class(chat_open, "-chat-open")
        if not chat_open and self.zoomed == "chat":
            self.zoomed = ""

    def watch_detail_open(self, detail_open: bool) -> None:
        self.set_class(not detail_open, "-detail-closed")
        if detail_open:
            self._show_detail()  # not kept up to date while hidden

    def watch_marked(self, marked: tuple[tuple[str, str], ...]) -> None:
        self.trace_list.marked = frozenset(span_id for _, span_id in marked)
        self.trace_list.refresh()

    def watch_zoomed(self, old: str, new: str) -> None:
        for pane in ZOOMABLE:
            self.set_class(new == pane, f"-zoom-{pane}")

    # --- messages ----------------------------------------------------------------------------------

    @on(TraceList.SelectionChanged)
    def _selection_changed(self, event: TraceList.SelectionChanged) -> None:
        if event.live:
            self.policy.detail_changed()  # shown by the tick, at most every LIVE_DETAIL_SECONDS
        else:
            self._show_detail()

    @on(Input.Changed, "FilterBar")
    def _filter_typed(self, event: Input.Changed) -> None:
        if not isinstance(parse(event.value), QueryError):  # else the bar says why; the filter stays
            self.filter_text = event.value

    @on(FilterBar.Closed)
    def _filter_closed(self) -> None:
        self.set_focus(self.trace_list)

    @on(ChatPane.Leave)
    def _chat_left(self) -> None:
        self.set_focus(self.trace_list)

    @on(ChatPane.ShowTrace)
    def _show_chat_trace(self, event: ChatPane.ShowTrace) -> None:
        """Ctrl+T in the chat: select that turn's trace in the list, clearing a filter that hides it."""
        self.set_focus(self.trace_list)
        if not self.paused:
            self.tick()  # the turn's spans may have arrived since the last tick
        if self.trace_list.select(event.trace_id):
            return
        if event.trace_id in self.services.store and (self.filter_text or self.errors_only):
            self.query_one(FilterBar).reset()
            self.filter_text = ""
            self.errors_only = False
            if self.trace_list.select(event.trace_id):
                return
        reason = "the display is paused (p)" if self.paused else "its spans have not arrived yet"
        self.notify(f"That turn's trace is not in the list: {reason}", timeout=3)

    @on(DetailPane.ShowSpan)
    def _show_step_span(self, event: DetailPane.ShowSpan) -> None:
        """Enter on a Conversation step: select its span in the list (expanding its trace)."""
        if self.trace_list.select(event.trace_id, event.span_id):
            self.set_focus(self.trace_list)
        else:
            self.notify("That span is not in the list (filtered out, or the display is paused)", timeout=3)

    # --- actions -----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # "/" is a priority binding: it must not steal the key from a text field.
        return action != "filter" or not isinstance(self.focused, (Input, TextArea))

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        bar.open()
        # Focus now, not on the next loop turn (Widget.focus defers): "/chat" typed or pasted in one
        # burst must reach the bar, not run "c" (clear) and "h" on the list.
        self.set_focus(bar)

    def action_toggle_errors(self) -> None:
        self.errors_only = not self.errors_only

    def action_toggle_follow(self) -> None:
        self.trace_list.follow(not self.trace_list.following)

    def action_cycle_sort(self) -> None:
        """>: the next sort order; the selection stays on its trace."""
        orders = list(SORTS)
        self.sort = orders[(orders.index(self.sort) + 1) % len(orders)]

    def watch_sort(self, sort: str) -> None:
        self.trace_list.set_sort(sort)
        self.sort_label = "" if sort == "newest" else SORTS[sort]
        self.notify(f"Sorted {SORTS[sort]}", timeout=2)
        self.sample()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused

    def action_next_tab(self) -> None:
        self.detail.cycle_tab()

    def action_switch_pane(self) -> None:
        """Tab cycles the trace list → the active detail tab → the chat input (when shown)."""
        order = [self.trace_list, self.detail.active_list]
        pane = self.chat_pane
        if pane is not None and pane.display:
            order.append(pane.query_one(ChatInput))
        output = self.output_pane
        if output is not None and self.output_open:
            order.append(output.focus_target)
        current = next((i for i, w in enumerate(order) if w.has_focus), -1)
        self.set_focus(order[(current + 1) % len(order)])

    def action_ask(self) -> None:
        """Open the chat pane (if closed) and put the cursor in its prompt."""
        self._show_chat(True)

    def action_toggle_chat(self) -> None:
        self._show_chat(not self.chat_open)

    def _show_chat(self, shown: bool) -> None:
        """Open the pane with the cursor in its prompt, or close it and go back to the list. Once the user
        has chosen, the terminal's width no longer decides."""
        pane = self.chat_pane
        if pane is None:
            self.notify("The chat pane is off (--no-chat)", timeout=3)
            return
        self._chat_toggled = True
        self.chat_open = shown
        if shown:
            pane.focus_input()
        else:
            self.set_focus(self.trace_list)

    # --- replay and compare ------------------------------------------------------------------------

    def _links(self, span: Span) -> ReplayLinks:
        return replay_links(self.services.store, span)

    def _llm_call(self) -> Span | str:
        """The model call ``r``, ``m`` and ``C`` act on: the Conversation step highlighted while that tab has the
        focus, else the selected span, else a trace's one call (a chat turn's own span wraps its client's);
        otherwise a sentence saying what to select."""
        row = self.trace_list.current
        if row is None:
            return "Select an LLM call first"
        focused = self.focused
        span: Span | None = None
        if isinstance(focused, DetailList) and focused.id == "detail-conversation":
            item = focused.current
            span = row.trace.spans.get(item.span_id) if item is not None and item.span_id else None
        if span is None and row.span_row is not None:
            span = row.span_row.span
        logs = self.services.receivers.ingest.log_store.events_for
        if span is None:
            span, calls = trace_call(row.trace, logs)
            if span is None:
                return ("This trace has no LLM call" if not calls else
                        f"This trace has {calls} LLM calls: expand it (→) and select one, or pick a step in its "
                        "Conversation tab")
        if not is_model_call(span, logs(span)):
            return f"{span.name!r} is not an LLM call (select one whose LLM tab shows a prompt and a completion)"
        return span

    async def action_replay(self) -> None:
        """r: the selected LLM call in the chat pane as a replay, ready to edit and send."""
        from tui.chat.replay import replay_request

        pane = self.chat_pane
        if pane is None:
            self.notify("The chat pane is off (--no-chat): replays run there", timeout=4)
            return
        span = self._llm_call()
        if isinstance(span, str):
            self.notify(span, timeout=4, markup=False)
            return
        logs = self.services.receivers.ingest.log_store.events_for(span)
        request = replay_request(span, logs)
        view = GenAIView.from_span(span, logs)
        if request is None or view is None:
            self.notify(f"{span.name!r} has nothing to replay", timeout=4, markup=False)
            return
        if not request.messages:
            self.notify(f"{span.name!r} recorded no messages (content capture was off), so there is nothing to "
                        "replay", severity="warning", timeout=6, markup=False)
            return
        self._show_chat(True)
        if self.size.width < CHAT_AUTO_WIDTH:
            self.zoomed = "chat"  # the form and the answer need more room than the pane has here
        await pane.load_replay(request, span.name, remote=runs_remotely(span, view))

    def action_mark(self) -> None:
        """m: mark (or unmark) the selected LLM call for C."""
        span = self._llm_call()
        if isinstance(span, str):
            self.notify(span, timeout=4, markup=False)
            return
        key = (span.trace_id, span.span_id)
        if key in self.marked:
            self.marked = tuple(k for k in self.marked if k != key)
            self.notify(f"Unmarked {span.name}", timeout=3, markup=False)
            return
        self.marked = (*self.marked[-1:], key)
        hint = "C compares the two marked" if len(self.marked) == 2 else "mark another with m, then C compares them"
        self.notify(f"Marked {span.name} ({len(self.marked)} of 2): {hint}", timeout=4, markup=False)

    def action_compare(self) -> None:
        """C: the two marked calls; or the marked one and the selected; or a replay and its original."""
        from tui.model.compare import comparison

        pair = self._pair_to_compare()
        if isinstance(pair, str):
            self.notify(pair, timeout=5, markup=False)
            return
        logs = self.services.receivers.ingest.log_store.events_for
        result = comparison(pair[0], pair[1], logs(pair[0]), logs(pair[1]))
        if isinstance(result, str):
            self.notify(result, timeout=5, markup=False)
            return
        self.app.push_screen(CompareScreen(result))

    def _pair_to_compare(self) -> tuple[Span, Span] | str:
        store = self.services.store
        marked = [span for trace_id, span_id in self.marked
                  if (trace := store.get(trace_id)) is not None and (span := trace.spans.get(span_id)) is not None]
        self.marked = tuple((s.trace_id, s.span_id) for s in marked)  # forget those evicted
        selected = self._llm_call()
        if len(marked) == 2:
            return marked[0], marked[1]
        if len(marked) == 1 and isinstance(selected, Span) and selected.span_id != marked[0].span_id:
            return marked[0], selected
        if isinstance(selected, Span):
            links = self._links(selected)
            original = self._held(links.original) if links.original is not None else None
            if original is not None:
                return original, selected
            latest = self._held(links.replays[-1]) if links.replays else None
            if latest is not None:
                return selected, latest
        return "Mark two LLM calls with m (or select a replay) and C compares them"

    def _held(self, ref: SpanRef) -> Span | None:
        trace = self.services.store.get(ref.trace_id)
        return trace.spans.get(ref.span_id) if trace is not None else None

    def action_to_original(self) -> None:
        """b: from a replay to the span it replays."""
        span = self._llm_call()
        original = self._links(span).original if isinstance(span, Span) else None
        if original is None:
            self.notify("Not a replay: b goes from a replay to the span it replays", timeout=3)
            return
        self._go_to(original)

    def action_to_replay(self) -> None:
        """n: from a replayed span to its first replay; from a replay to the next replay of the same span."""
        span = self._llm_call()
        links = self._links(span) if isinstance(span, Span) else ReplayLinks()
        replays = links.replays
        current = -1
        if isinstance(span, Span) and not replays and links.original is not None:  # a replay: its siblings
            held = self._held(links.original)
            replays = self._links(held).replays if held is not None else ()
            current = next((i for i, ref in enumerate(replays) if ref.span_id == span.span_id), -1)
        if not replays:
            self.notify("No replay of this span: r replays an LLM call", timeout=3)
            return
        self._go_to(replays[(current + 1) % len(replays)])

    def _go_to(self, ref: SpanRef) -> None:
        if not self.paused:
            self.tick()  # a replay's spans may have arrived since the last tick
        if not self.trace_list.select(ref.trace_id, ref.span_id):
            held = ref.trace_id in self.services.store
            why = "filtered out, or the display is paused" if held else "no longer held"
            self.notify(f"That span is not in the list ({why})", timeout=3)
            return
        self.set_focus(self.trace_list)

    def action_zoom(self) -> None:
        """z: give the focused pane (list, detail or chat) the whole screen; z again gives the others back."""
        if self.zoomed:
            self.zoomed = ""
            return
        self.zoomed = self._pane_of(self.focused) or "list"

    def _pane_of(self, widget: Widget | None) -> str:
        """Which of :data:`ZOOMABLE` holds ``widget`` ("" for none: the filter bar, nothing focused)."""
        around = widget.ancestors_with_self if widget is not None else []
        panes = {"list": self.trace_list, "detail": self.detail, "chat": self.chat_pane, "output": self.output_pane}
        return next((name for name, pane in panes.items() if pane is not None and pane in around), "")

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        """The focus went to a pane the zoom hides (Ctrl+T or Esc from the chat, b / n, Enter on a step):
        give every pane its room back, or the focused one would be invisible."""
        pane = self._pane_of(event.widget)
        if self.zoomed and pane and pane != self.zoomed:
            self.zoomed = ""

    def action_toggle_output(self) -> None:
        """O: hide the Output pane (the traces take its room) or show it again."""
        if self.output_pane is None:
            self.notify("No program runs under ollama-tui: start one with ollama-tui -- COMMAND, or --run",
                        timeout=4)
            return
        self.output_open = not self.output_open

    def watch_output_open(self, shown: bool) -> None:
        output = self.output_pane
        if output is None:
            return
        self.set_class(not shown, "-output-closed")
        if self.zoomed == "output" and not shown:
            self.zoomed = ""
        focused = self.focused
        if not shown and focused is not None and output in focused.ancestors_with_self:
            self.set_focus(self.trace_list)

    def action_restart_program(self) -> None:
        """R: stop the program shown in the Output pane (SIGTERM, then SIGKILL after a grace) and start it again,
        in a worker: a program slow to stop must not hold up the keys meanwhile."""
        output = self.output_pane
        if output is None:
            self.notify("No program runs under ollama-tui", timeout=3)
            return
        self.output_open = True
        if any(worker.group == "restart" and worker.is_running for worker in self.workers):
            self.notify("A program is restarting; one at a time", timeout=3)
            return
        self._restart(output.shown)

    @work(group="restart", exit_on_error=False)
    async def _restart(self, program: Program) -> None:
        try:
            await program.restart()
        except ProgramStartError as exc:
            self.notify(str(exc), title="Cannot restart", severity="error", timeout=8, markup=False)

    def action_toggle_detail(self) -> None:
        """d: hide the detail pane (the list takes its room) or show it again."""
        self.detail_open = not self.detail_open
        if self.zoomed == "detail":
            self.zoomed = ""
        focused = self.focused
        if not self.detail_open and focused is not None and self.detail in focused.ancestors_with_self:
            self.set_focus(self.trace_list)

    def action_quit(self) -> None:
        """q: quit, asking first while traces are held (they live only in memory)."""
        held = len(self.services.store)
        if not self.confirm_quit or not held:
            self.app.exit()
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.app.exit()

        self.app.push_screen(ConfirmQuit(f"Quit and drop the {held:,} traces held in memory? (S saves them first)"),
                             answer)

    def action_new_chat(self) -> None:
        pane = self.chat_pane
        if pane is not None:
            pane.action_new_conversation()

    def _current_item(self) -> Item | None:
        focused = self.focused
        detail_list = focused if isinstance(focused, DetailList) else self.detail.active_list
        return detail_list.current

    def action_open_value(self) -> None:
        item = self._current_item()
        if item is not None:
            self.app.push_screen(ValueScreen(item.title, item.copy_text))

    def action_copy_value(self) -> None:
        item = self._current_item()
        if item is not None:
            self.app.copy_to_clipboard(item.copy_text)
            self.notify(copy_report(item.title, len(item.copy_text), os.environ), timeout=6, markup=False)

    def action_save_value(self) -> None:
        """Y: the selected value to a file, for when the clipboard cannot be reached."""
        item = self._current_item()
        if item is not None:
            self._write_value(Path.cwd() / time.strftime("ollama-tui-value-%Y%m%d-%H%M%S.txt"), item.copy_text)

    @work(thread=True, group="save", exit_on_error=False)
    def _write_value(self, path: Path, text: str) -> None:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"Cannot save {path}: {exc.strerror or exc}", severity="error",
                                      markup=False)
            return
        self.app.call_from_thread(self.notify, f"Saved {len(text):,} characters to {path}", timeout=6, markup=False)

    def action_save_trace(self) -> None:
        """s: the selected trace, as OTLP JSON lines that --load reads back."""
        row = self.trace_list.current
        if row is None:
            self.notify("Nothing selected to save", timeout=2)
            return
        self._save([row.trace.trace_id], "trace")

    def action_save_shown(self) -> None:
        """S: every trace the list shows (all of them, or those matching the filter / errors only)."""
        index = self.trace_list.index
        if not index.scan_done:
            index.continue_scan(None)
        self._save(index.shown_trace_ids(), "traces")

    def _save(self, trace_ids: list[str], what: str) -> None:
        path = Path.cwd() / time.strftime(f"ollama-tui-{what}-%Y%m%d-%H%M%S.jsonl")
        store = self.services.store
        self._write_traces(path, [t for t in (store.get(i) for i in trace_ids) if t is not None])

    @work(thread=True, group="save", exit_on_error=False)
    def _write_traces(self, path: Path, traces: list[Trace]) -> None:
        from tui.receiver.files import save_traces

        try:
            written, spans = save_traces(path, traces)
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"Cannot save {path}: {exc.strerror or exc}", severity="error",
                                      markup=False)
            return
        self.app.call_from_thread(self.notify, f"Saved {written:,} trace(s), {spans:,} spans, to {path}",
                                  timeout=6, markup=False)

    def action_sources(self) -> None:
        """x: every exporter that sent something, and the connection doctor's diagnoses."""
        receivers = self.services.receivers
        self.app.push_screen(SourcesScreen(receivers.sources, receivers.doctor), self._filter_service)

    def _filter_service(self, service: str | None) -> None:
        """The Sources screen's Enter: the list filtered to that service's traces."""
        if service:
            bar = self.query_one(FilterBar)
            plain = not any(c.isspace() or c in '"\\' for c in service)
            escaped = service.replace("\\", "\\\\").replace('"', '\\"')
            bar.value = f"service.name={service}" if plain else f'service.name="{escaped}"'  # one term, quoted
            bar.open()
            self.set_focus(self.trace_list)

    def action_stats(self) -> None:
        """#: figures per service and per model; Enter on a row filters the list to it."""
        self.app.push_screen(StatsScreen(self.services.store, clock=self.services.clock, tracker=self.services.stats),
                             self._filter_query)

    def _filter_query(self, query: str | None) -> None:
        """The Stats screen's Enter: its query (``service:NAME``, ``model:NAME``) in the filter bar."""
        if query:
            bar = self.query_one(FilterBar)
            bar.value = query
            bar.open()
            self.set_focus(self.trace_list)

    def action_telemetry(self) -> None:
        """L: GenAI metrics per model and the log records that name no trace."""
        ingest = self.services.receivers.ingest
        self.app.push_screen(TelemetryScreen(ingest.log_store, ingest.metrics_summary, ingest.stats.log_records,
                                             ingest.stats.metric_points))

    def action_clear(self) -> None:
        store = self.services.store

        def answer(yes: bool | None) -> None:
            if yes:
                store.clear()
                self.policy.discard_held()
                self._apply(store.drain_changes())
                self._show_detail()
                self.sample()

        self.app.push_screen(ConfirmScreen(f"Clear all {len(store):,} traces from memory?"), answer)

    def action_help(self) -> None:
        sections: list[tuple[str, Sequence[BindingType]]] = [
            ("Trace list", TraceList.BINDINGS),
            ("Anywhere", TracesScreen.BINDINGS),
            ("Filter bar", FilterBar.BINDINGS),
            ("Chat pane", [*ChatInput.BINDINGS, *ChatPane.BINDINGS]),
            ("Compare screen", CompareScreen.BINDINGS),
            ("Full-screen value", ValueScreen.BINDINGS),
        ]
        self.app.push_screen(HelpScreen(sections))
