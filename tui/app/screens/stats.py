"""The Stats screen: per service and per model, count, errors, duration percentiles, tokens, tokens/s and
time to first token, over everything held or the last 1 / 5 / 15 minutes, with sparklines of the
highlighted row's rate, latency and tokens/s over time.

It opens at once, whatever the store holds, on the App's :class:`StatsTracker`, which has followed the
store since the App started (a few milliseconds a tick in the background): its figures are there, or
nearly. While the tracker catches up (a million spans loaded at once) the screen gives it a few
milliseconds a frame, and the line above the tables says how far it got; then it keeps the figures up
to date, evictions included, once a second. The tables are ``DataTable`` widgets,
which draw only the rows on screen, and hold the busiest :data:`SHOWN_ROWS` groups.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import DescendantFocus
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Sparkline, Static

from tui.app.present.stats import columns, filter_for, intro, row_cells, series_caption, window_label
from tui.model.stats import MODEL, SERVICE, WINDOWS, StatsTracker
from tui.model.store import TraceStore

#: The tracker works this long per frame (keys are answered within a frame or two; the list's screen,
#: underneath, leaves the tracker to this one while it is open).
STEP_SECONDS = 0.007
FRAME_SECONDS = 0.01
#: The tables are redrawn this often (while the first reading goes on, too, to show its progress).
REFRESH_SECONDS = 1.0
#: Rows each table holds, busiest first.
SHOWN_ROWS = 200


class StatsScreen(ModalScreen[str | None]):
    """Dismissed with the filter query of the row chosen with Enter (``service:NAME``, ``model:NAME``),
    or None."""

    BINDINGS = [
        Binding("escape,q,number_sign", "dismiss", "Close", id="stats.close"),
        Binding("w", "next_window", "Window", tooltip="Next window: last 1, 5, 15 minutes, everything held",
                id="stats.window"),
        Binding("1", "window(60)", "Last minute", show=False, id="stats.window_1"),
        Binding("2", "window(300)", "Last 5 minutes", show=False, id="stats.window_5"),
        Binding("3", "window(900)", "Last 15 minutes", show=False, id="stats.window_15"),
        Binding("4,a", "window(0)", "Everything held", show=False, id="stats.window_all"),
    ]
    DEFAULT_CSS = """
    StatsScreen { align: center middle; }
    StatsScreen > Vertical { width: 95%; height: 90%; background: $surface; border: thick $accent; padding: 0 1; }
    StatsScreen #stats-intro { height: auto; color: $text-muted; }
    StatsScreen .heading { text-style: bold; }
    StatsScreen DataTable { height: 1fr; }
    StatsScreen #stats-caption { height: 1; color: $text-muted; }
    StatsScreen Horizontal { height: 1; }
    StatsScreen Horizontal > Label { width: 12; color: $text-muted; }
    StatsScreen Sparkline { width: 1fr; }
    """

    def __init__(self, store: TraceStore, *, clock: Callable[[], float] = time.time,
                 tracker: StatsTracker | None = None) -> None:
        """``tracker``: the App's (following the store since it started: the figures are there at once);
        without one the screen reads the store itself."""
        super().__init__()
        self.tracker = tracker if tracker is not None and tracker.store is store else StatsTracker(store)
        self.clock = clock
        #: Seconds of the window shown, None for everything held.
        self.window: int | None = None
        #: The row whose sparklines are shown: (SERVICE or MODEL, name).
        self.chosen: tuple[str, str] | None = None
        self._drawn_at = float("-inf")
        self._passed_at = float("-inf")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="stats-intro", markup=False)
            yield Static("Per service", classes="heading")
            services: DataTable[object] = DataTable(id="stats-services", cursor_type="row", zebra_stripes=True)
            services.add_columns(*columns(SERVICE))
            yield services
            yield Static("Per model (LLM spans)", classes="heading")
            models: DataTable[object] = DataTable(id="stats-models", cursor_type="row", zebra_stripes=True)
            models.add_columns(*columns(MODEL))
            yield models
            yield Static(id="stats-caption", markup=False)
            for name, label in (("rate", "spans/s"), ("latency", "p50 latency"), ("speed", "p50 tokens/s")):
                with Horizontal():
                    yield Label(label)
                    yield Sparkline([], id=f"stats-{name}", summary_function=max)

    def on_mount(self) -> None:
        self.query_one("#stats-services", DataTable).focus()
        self.step()
        self.set_interval(FRAME_SECONDS, self.step)

    # --- reading the store ---------------------------------------------------------------------------

    def step(self) -> None:
        """One frame's share of the tracker's work; the tables redrawn when a pass ends (at most once a
        second) or, during the first reading, once a second to show its progress."""
        now = time.monotonic()
        tracker = self.tracker
        if tracker.complete and now - self._passed_at < REFRESH_SECONDS:
            return
        if tracker.step(STEP_SECONDS):
            self._passed_at = now
            self.redraw()
        elif now - self._drawn_at >= REFRESH_SECONDS:
            self.redraw()

    def redraw(self) -> None:
        self._drawn_at = time.monotonic()
        stats, now = self.tracker.stats, self.clock()
        self.query_one("#stats-intro", Static).update(
            intro(stats.spans, self.window, self.tracker.fraction, self.tracker.complete))
        for kind in (SERVICE, MODEL):
            table = self.query_one(f"#stats-{kind}s", DataTable)
            rows = stats.rows(kind, self.window, now)[:SHOWN_ROWS]
            keep = _row_name(table)
            table.clear()
            for row in rows:
                table.add_row(*row_cells(row), key=row.name)
            names = [row.name for row in rows]
            if keep in names:
                table.move_cursor(row=names.index(keep), scroll=False)
        if self.chosen is None:
            self._choose(self.query_one("#stats-services", DataTable), SERVICE)
        self._draw_series()

    def _draw_series(self) -> None:
        caption = self.query_one("#stats-caption", Static)
        if self.chosen is None:
            caption.update(f"Nothing in the {window_label(self.window)}")
            series_data: tuple[tuple[float, ...], ...] = ((), (), ())
        else:
            kind, name = self.chosen
            series = self.tracker.stats.series(kind, name, self.window, self.clock())
            caption.update(series_caption(kind, name, series))
            series_data = (series.rate, series.latency, series.speed)
        for name, data in zip(("rate", "latency", "speed"), series_data, strict=True):
            self.query_one(f"#stats-{name}", Sparkline).data = list(data)

    # --- keys ----------------------------------------------------------------------------------------

    def action_next_window(self) -> None:
        at = WINDOWS.index(self.window)
        self._set_window(WINDOWS[(at + 1) % len(WINDOWS)])

    def action_window(self, seconds: int) -> None:
        self._set_window(seconds or None)

    def _set_window(self, window: int | None) -> None:
        self.window = window
        self.notify(f"Stats over the {window_label(window)}", timeout=2)
        self.redraw()

    def _choose(self, table: DataTable[object], kind: str) -> None:
        name = _row_name(table)
        self.chosen = (kind, name) if name is not None else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.has_focus:
            self._choose(event.data_table, _kind(event.data_table))
            self._draw_series()

    @on(DescendantFocus)
    def _focused(self, event: DescendantFocus) -> None:
        if isinstance(event.widget, DataTable) and event.widget.row_count:
            self._choose(event.widget, _kind(event.widget))
            self._draw_series()

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        """Enter on a row: back to the list, filtered to that service's or model's spans."""
        name = event.row_key.value
        if name is not None:
            self.dismiss(filter_for(_kind(event.data_table), name))


def _kind(table: DataTable[object]) -> str:
    return MODEL if table.id == "stats-models" else SERVICE


def _row_name(table: DataTable[object]) -> str | None:
    if not table.row_count:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # noqa: BLE001 - a cursor past the rows (cleared): no row is highlighted
        return None
