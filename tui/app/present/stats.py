"""What the Stats screen says: a table row per service or model, the window's name, the line above the
tables, the sparklines' captions, and the filter a row's Enter puts in the filter bar. Plain data, no
Textual; service and model names come from the network, so they are made safe here.
"""

from __future__ import annotations

from rich.text import Text

from tui.model.stats import MODEL, SERVICE, Series, StatsRow
from tui.model.text import format_duration, format_tokens, safe_text

#: Columns after the name column (``row_cells`` fills them).
FIGURE_COLUMNS = ("spans", "errors", "p50", "p95", "p99", "tok in", "tok out", "tok/s", "TTFT p50", "TTFT p95")
#: The name column's width at most; longer names are cut with "…".
NAME_WIDTH = 32


def columns(kind: str) -> tuple[str, ...]:
    return (SERVICE if kind == SERVICE else MODEL, *FIGURE_COLUMNS)


def window_label(window_s: int | None) -> str:
    return "everything held" if window_s is None else f"last {window_s // 60} min"


def _seconds(value: float | None) -> str:
    return "–" if value is None else format_duration(round(value * 1e9))


def _cut(text: str, width: int = NAME_WIDTH) -> str:
    text = safe_text(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def error_rate(row: StatsRow) -> str:
    if not row.errors:
        return "0"
    rate = row.error_rate
    return f"{row.errors:,} ({rate:.0%})" if rate >= 0.01 else f"{row.errors:,} (<1%)"


def row_cells(row: StatsRow) -> tuple[Text, ...]:
    """One table row: the name, then :data:`FIGURE_COLUMNS`. Token figures are "–" for a group without
    LLM spans."""
    llm = bool(row.tokens_in or row.tokens_out or row.speed_p50 is not None or row.first_token_p50 is not None)
    cells = (f"{row.count:,}", error_rate(row), _seconds(row.duration_p50), _seconds(row.duration_p95),
             _seconds(row.duration_p99), format_tokens(row.tokens_in) if llm else "–",
             format_tokens(row.tokens_out) if llm else "–",
             "–" if row.speed_p50 is None else f"{row.speed_p50:,.0f}", _seconds(row.first_token_p50),
             _seconds(row.first_token_p95))
    return (Text(_cut(row.name)), *(Text(cell, justify="right") for cell in cells))


def filter_for(kind: str, name: str) -> str:
    """The filter query selecting a row's spans: ``service:NAME`` or ``model:NAME``, the name in double
    quotes (``\\`` and ``"`` escaped) when it has a space, a quote or a backslash."""
    prefix = "service" if kind == SERVICE else "model"
    if name and not any(c.isspace() or c in '"\\' for c in name):
        return f"{prefix}:{name}"
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'{prefix}:"{escaped}"'


def intro(spans: int, window_s: int | None, fraction: float, complete: bool) -> str:
    """The line above the tables: what they cover, and how far the first reading of the store has got."""
    text = (f"{spans:,} spans counted · {window_label(window_s)} · w or 1 2 3 4: last 1, 5, 15 min, all held · "
            "Tab: other table · Enter: filter the list")
    if not complete:
        text += f" · reading the store… {fraction:.0%}"
    return text


def series_caption(kind: str, name: str, series: Series) -> str:
    """Names the sparklines below the tables: whose figures, and over what."""
    what = f"{kind} {_cut(name)}"
    latest = series.rate[-1] if series.rate else 0.0
    return (f"{what}: spans/s (now {latest:,.1f}), p50 duration, p50 tokens/s — "
            f"one bar per {series.point_seconds:g}s")

