"""The one-line header: where we listen, what is held, how fast it arrives, what was lost."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget


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
    #: Share of the store a new filter has scanned so far (1.0 when done).
    scanned: float = 1.0
    #: Exporters were answered with back-pressure in the last few seconds.
    overloaded: bool = False
    #: Exports answered with back-pressure since start (their spans stay with the exporter, to retry).
    retries_asked: int = 0
    #: ``--forward``: (requests waiting, requests lost, an error to show or "") — None without it.
    forwarding: tuple[int, int, str] | None = None


def _count(n: int) -> str:
    return f"{n:,}"


class StatusLine(Widget):
    """One fixed line, repainted in place: ``Static.update`` would re-lay out the whole screen twice a
    second, which under a span flood costs real ingest throughput."""

    DEFAULT_CSS = """
    StatusLine { height: 1; background: $primary-background; color: $text; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = Text()

    def render(self) -> Text:
        return self._text

    @property
    def text(self) -> str:
        return self._text.plain

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
        if status.scanned < 1.0:
            text.append(f" (searching… {status.scanned:.0%})", style="italic")
        text.append(f"  │  {status.spans_per_second:,.0f} spans/s")
        text.append("  │  ")
        text.append(f"rejected {_count(status.rejected)}", style="bold red" if status.rejected else "")
        text.append(" · ")
        text.append(f"evicted {_count(status.evicted)}", style="bold yellow" if status.evicted else "")
        if status.retries_asked:
            text.append(" · ")
            text.append(f"asked to retry {_count(status.retries_asked)}", style="bold yellow")
        text.append("  │  ")
        if status.forwarding is not None:
            waiting, lost, error = status.forwarding
            trouble = bool(lost or error)
            text.append(f"→ forward: {waiting:,} waiting" + (f", {lost:,} lost" if lost else ""),
                        style="bold red" if trouble else "")
            if error:
                text.append(f" ({error[:60]})", style="red")
            text.append("  │  ")
        if status.overloaded:
            text.append("OVERLOADED", style="bold white on red")  # the retry count says the rest
            text.append("  ")
        if status.paused:
            plural = "" if status.waiting == 1 else "s"
            text.append(f"PAUSED · {_count(status.waiting)} span{plural} waiting", style="bold black on yellow")
        elif status.following:
            text.append("following", style="bold green")
        else:
            text.append("holding selection", style="dim")
        if text != self._text:
            self._text = text
            self.refresh()
