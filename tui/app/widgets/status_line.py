"""The one-line header: where we listen, what is held, how fast it arrives, what was lost."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static


@dataclass(slots=True)
class Status:
    listening: list[tuple[str, str]]
    traces: int
    spans: int
    spans_per_second: float
    rejected: int
    evicted: int
    following: bool
    paused: bool
    waiting: int
    shown: int
    filter_text: str
    errors_only: bool


def _count(n: int) -> str:
    return f"{n:,}"


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    """

    def show(self, status: Status) -> None:
        text = Text()
        text.append(" · ".join(f"{name} {address}" for name, address in status.listening) or "no receivers",
                    style="bold")
        text.append("  │  ")
        held = f"{_count(status.traces)} traces · {_count(status.spans)} spans"
        if status.filter_text or status.errors_only:
            held = f"{_count(status.shown)}/{held}"
        text.append(held)
        if status.errors_only:
            text.append(" · errors only", style="bold red")
        if status.filter_text:
            text.append(f" · filter {status.filter_text!r}", style="bold")
        text.append(f"  │  {status.spans_per_second:,.0f} spans/s")
        text.append("  │  ")
        text.append(f"rejected {_count(status.rejected)}", style="bold red" if status.rejected else "")
        text.append(" · ")
        text.append(f"evicted {_count(status.evicted)}", style="bold yellow" if status.evicted else "")
        text.append("  │  ")
        if status.paused:
            plural = "" if status.waiting == 1 else "s"
            text.append(f"PAUSED · {_count(status.waiting)} span{plural} waiting", style="bold black on yellow")
        elif status.following:
            text.append("following", style="bold green")
        else:
            text.append("holding selection", style="dim")
        self.update(text)
