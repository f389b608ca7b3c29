"""The Sources screen: every exporter that has sent something, and why some of them fail.

It answers "why don't my spans show up" from the receiver's side: a row per exporter with what it
sent and what was refused, and under it the connection doctor's diagnoses, each naming its fix.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.app.present.sources import COLUMNS, diagnosis_line, source_cells, sources_intro
from tui.receiver.doctor import Doctor
from tui.receiver.sources import Source, SourceTable

REFRESH_SECONDS = 1.0


class SourcesScreen(ModalScreen[str | None]):
    """Dismissed with the chosen row's ``service.name`` (Enter), for the list's filter, or None."""

    BINDINGS = [Binding("escape,q,x", "dismiss", "Close", id="sources.close")]
    DEFAULT_CSS = """
    SourcesScreen { align: center middle; }
    SourcesScreen > Vertical { width: 95%; height: 90%; background: $surface; border: thick $accent; padding: 0 1; }
    SourcesScreen #sources-intro { height: auto; color: $text-muted; }
    SourcesScreen DataTable { height: 1fr; }
    SourcesScreen #sources-problems { height: auto; max-height: 50%; color: $text-warning; }
    """

    def __init__(self, sources: SourceTable, doctor: Doctor) -> None:
        super().__init__()
        self.sources = sources
        self.doctor = doctor
        #: The table's rows, in order, for Enter to find the chosen one's service.
        self._rows: list[Source] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="sources-intro", markup=False)
            table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
            table.add_columns(*COLUMNS)
            yield table
            yield Static(id="sources-problems", markup=False)

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(REFRESH_SECONDS, self.refresh_rows)
        self.query_one(DataTable).focus()

    def refresh_rows(self) -> None:
        """Redrawn whole once a second: the ages move on, and the table holds at most ``MAX_SOURCES`` rows."""
        rows, problems = self.sources.rows(), self.doctor.problems()
        self._rows = rows
        now = time.time()
        self.query_one("#sources-intro", Static).update(sources_intro(rows, problems, self.sources.dropped))
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for source in rows:
            table.add_row(*source_cells(source, now))
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))
        lines = [diagnosis_line(diagnosis, now) for diagnosis in problems]
        if self.doctor.dropped:
            lines.append(f"({self.doctor.dropped:,} older problems dropped)")
        self.query_one("#sources-problems", Static).update("\n".join(lines))
        self.query_one("#sources-problems", Static).display = bool(lines)

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        """Enter on a row: back to the list, filtered to that service's traces."""
        service = self._rows[event.cursor_row].service if event.cursor_row < len(self._rows) else ""
        self.dismiss(service or None)
