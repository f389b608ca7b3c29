"""Logs and metrics received beside the traces: GenAI usage per model, and logs that name no trace.

The screen opens at once whatever arrived. Both lists are ``DataTable`` widgets, which draw only
the rows on screen, and each holds a fixed number of rows (the busiest models, the latest records)
and says how many more there are. It was one Rich table and text in a ``Static``, laid out whole
and every long line wrapped on each frame, which froze the app while it opened.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from tui.model.telemetry import OTHER, LogRecord, LogStore, MetricsSummary, ModelUsage, cut_note, readable_body
from tui.model.text import safe_text

SHOWN_LOGS = 200
SHOWN_MODELS = 100
SHOWN_METRIC_NAMES = 30
#: Of each log record's body, what a row shows.
LOG_BODY_CHARS = 240
LOG_COLUMNS = ("severity", "service", "event", "body")
MODEL_COLUMNS = ("model", "operations", "mean duration", "input tokens", "output tokens", "mean first token")


def _busiest_first(item: tuple[str, ModelUsage]) -> tuple[bool, float, float, str]:
    model, usage = item
    return model == OTHER, -usage.operations, -(usage.input_tokens + usage.output_tokens), model


def shown_models(summary: MetricsSummary) -> tuple[list[tuple[str, ModelUsage]], int]:
    """The busiest :data:`SHOWN_MODELS` models, the "(other)" row always last, and how many are left out."""
    rows = sorted(summary.by_model.items(), key=_busiest_first)
    shown = rows[:SHOWN_MODELS]
    if rows and rows[-1][0] == OTHER and shown[-1][0] != OTHER:
        shown[-1] = rows[-1]
    return shown, len(rows) - len(shown)


def model_row(model: str, usage: ModelUsage) -> tuple[Text, ...]:
    duration = usage.mean_duration_s
    first = usage.mean_time_to_first_token_s
    cells = (f"{usage.operations:,}", "–" if duration is None else f"{duration:.3f}s", f"{usage.input_tokens:,.0f}",
             f"{usage.output_tokens:,.0f}", "–" if first is None else f"{first:.3f}s")
    return (Text(safe_text(model)), *(Text(cell, justify="right") for cell in cells))


def log_row(record: LogRecord) -> tuple[Text, ...]:
    """severity · service · event name (``event_name`` field or ``event.name`` attribute) · the body made
    readable (a GenAI message as ``role: text``), all as plain text."""
    readable = readable_body(record)
    if len(readable) > LOG_BODY_CHARS:
        readable = readable[:LOG_BODY_CHARS] + "…"
    body = Text(safe_text(readable))
    if record.cut_bytes:
        body.append(f"  ({cut_note(record.cut_bytes)})", style="italic")
    return (Text(str(record.severity_text or record.severity_number or "-"), style="bold"),
            Text(safe_text(record.resource.service_name)), Text(safe_text(record.event or "-")), body)


def other_metrics(summary: MetricsSummary) -> str:
    names = sorted(summary.other_points.items())
    listed = ", ".join(f"{name} ({n:,})" for name, n in names[:SHOWN_METRIC_NAMES])
    more = len(names) - SHOWN_METRIC_NAMES
    return listed + (f", and {more:,} more" if more > 0 else "")


class TelemetryScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,L", "dismiss", "Close", id="telemetry.close")]
    DEFAULT_CSS = """
    TelemetryScreen { align: center middle; }
    TelemetryScreen > Vertical { width: 95%; height: 90%; background: $surface; border: thick $accent;
                                 padding: 0 1; }
    TelemetryScreen Static { height: auto; }
    TelemetryScreen .heading { text-style: bold; margin-top: 1; }
    TelemetryScreen DataTable { height: 1fr; }
    """

    def __init__(self, logs: LogStore, summary: MetricsSummary, log_records: int, metric_points: int) -> None:
        super().__init__()
        self.logs = logs
        self.summary = summary
        self.counts = (log_records, metric_points)

    def compose(self) -> ComposeResult:
        log_records, metric_points = self.counts
        other = other_metrics(self.summary)
        losses = "".join(f"\n{safe_text(phrase)}." for phrase in self.logs.losses() + self.summary.losses())
        self._models, more = shown_models(self.summary)
        with Vertical():
            yield Static(Text(
                f"{log_records:,} log records received: {self.logs.received - self.logs.unattached_total:,} name a "
                f"span (see that span's Events tab), {self.logs.unattached_total:,} do not (latest {SHOWN_LOGS} below, "
                f"newest first). {metric_points:,} metric data points received."
                + (f"\nOther metrics, counted: {safe_text(other)}" if other else "") + losses))
            yield Static("GenAI client metrics, per model (busiest first)", classes="heading")
            yield DataTable(id="models", cursor_type="row")
            if more:
                yield Static(Text(f"… and {more:,} more models", style="italic"), id="more-models")
            yield Static("Logs without a trace", classes="heading")
            yield DataTable(id="logs", cursor_type="row")

    def on_mount(self) -> None:
        models = self.query_one("#models", DataTable)
        models.add_columns(*MODEL_COLUMNS)
        models.add_rows(model_row(model, usage) for model, usage in self._models)
        logs = self.query_one("#logs", DataTable)
        logs.add_columns(*LOG_COLUMNS)
        logs.add_rows(log_row(record) for record in self.logs.latest_unattached(SHOWN_LOGS))
