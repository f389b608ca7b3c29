"""Logs and metrics received beside the traces: GenAI usage per model, and logs that name no trace."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.model.telemetry import LogStore, MetricsSummary
from tui.model.text import format_value, safe_text

SHOWN_LOGS = 500


def metrics_table(summary: MetricsSummary) -> Table:
    table = Table(title="GenAI client metrics, per model", title_justify="left", expand=True)
    for column in ("model", "operations", "mean duration", "input tokens", "output tokens", "mean first token"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for model, usage in sorted(summary.by_model.items()):
        duration = usage.mean_duration_s
        first = usage.mean_time_to_first_token_s
        table.add_row(Text(safe_text(model)), f"{usage.operations:,}", "–" if duration is None else f"{duration:.3f}s",
                      f"{usage.input_tokens:,.0f}", f"{usage.output_tokens:,.0f}",
                      "–" if first is None else f"{first:.3f}s")
    return table


def log_lines(logs: LogStore) -> Text:
    text = Text()
    records = list(logs.unattached)[-SHOWN_LOGS:]
    for record in reversed(records):
        text.append(f"{record.severity_text or record.severity_number or '-':>6} ", style="bold")
        text.append(f"{safe_text(record.resource.service_name)}  ", style="cyan")
        text.append(safe_text(format_value(record.body, limit=300)))
        text.append("\n")
    return text


class TelemetryScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,L", "dismiss", "Close", id="telemetry.close")]
    DEFAULT_CSS = """
    TelemetryScreen { align: center middle; }
    TelemetryScreen > VerticalScroll { width: 95%; height: 90%; background: $surface; border: thick $accent;
                                       padding: 0 1; }
    """

    def __init__(self, logs: LogStore, summary: MetricsSummary, log_records: int, metric_points: int) -> None:
        super().__init__()
        self.logs = logs
        self.summary = summary
        self.counts = (log_records, metric_points)

    def compose(self) -> ComposeResult:
        log_records, metric_points = self.counts
        other = ", ".join(f"{name} ({n:,})" for name, n in sorted(self.summary.other_points.items())[:30])
        intro = Text(
            f"{log_records:,} log records received: {self.logs.received - self.logs.unattached_total:,} name a span "
            f"(see that span's Events tab), {self.logs.unattached_total:,} do not (latest {SHOWN_LOGS} below, newest "
            f"first). {metric_points:,} metric data points received.\n"
            + (f"Other metrics, counted: {safe_text(other)}\n" if other else "")
        )
        with VerticalScroll():
            yield Static(Group(intro, metrics_table(self.summary), Text("\nLogs without a trace", style="bold"),
                               log_lines(self.logs)))
