"""The one-line header's content: where we listen, what is held, how fast it arrives, what was lost.

Built as (text, tone) parts so it is tested as plain data; the header widget maps tones to its
theme's styles.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Every tone a header part may take.
TONES = ("strong", "note", "error", "warning", "overloaded", "paused", "following", "muted")
Part = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Counts:
    """The figures the header shows, sampled twice a second (and at once after a filter change)."""

    traces: int = 0
    spans: int = 0
    spans_per_second: float = 0.0
    rejected: int = 0
    evicted: int = 0
    #: Spans received since the pause (0 when not paused).
    waiting: int = 0
    #: Traces the list shows (fewer than ``traces`` under a filter).
    shown: int = 0
    #: Share of the store a new filter has scanned so far (1.0 when done).
    scanned: float = 1.0
    #: Exports answered with back-pressure since start (their spans stay with the exporter, to retry).
    retries_asked: int = 0
    #: ``--forward``: (requests waiting, requests lost, an error to show or "") — None without it.
    forwarding: tuple[int, int, str] | None = None


@dataclass(frozen=True, slots=True)
class ViewState:
    """What the user set or the app decided about the view, as the header shows it."""

    filter_text: str = ""
    errors_only: bool = False
    paused: bool = False
    following: bool = True
    #: Exporters were answered with back-pressure in the last few seconds.
    overloaded: bool = False


def header_parts(listening: list[tuple[str, str]], counts: Counts, view: ViewState) -> list[Part]:
    parts: list[Part] = [(" · ".join(f"{name} {address}" for name, address in listening) or "no receivers", "strong")]
    parts.append(("  │  ", ""))
    held = f"{counts.traces:,} traces · {counts.spans:,} spans"
    if view.filter_text or view.errors_only:
        held = f"{counts.shown:,}/{held}"
    parts.append((held, ""))
    if view.errors_only:
        parts.append((" · errors only", "error"))
    if view.filter_text:
        parts.append((f" · filter {view.filter_text!r}", "strong"))
    if counts.scanned < 1.0:
        parts.append((f" (searching… {counts.scanned:.0%})", "note"))
    parts.append((f"  │  {counts.spans_per_second:,.0f} spans/s  │  ", ""))
    parts.append((f"rejected {counts.rejected:,}", "error" if counts.rejected else ""))
    parts.append((" · ", ""))
    parts.append((f"evicted {counts.evicted:,}", "warning" if counts.evicted else ""))
    if counts.retries_asked:
        parts += [(" · ", ""), (f"asked to retry {counts.retries_asked:,}", "warning")]
    parts.append(("  │  ", ""))
    if counts.forwarding is not None:
        waiting, lost, error = counts.forwarding
        parts.append((f"→ forward: {waiting:,} waiting" + (f", {lost:,} lost" if lost else ""),
                      "error" if lost or error else ""))
        if error:
            parts.append((f" ({error[:60]})", "error"))
        parts.append(("  │  ", ""))
    if view.overloaded:
        parts += [("OVERLOADED", "overloaded"), ("  ", "")]  # one word: the retry count says the rest
    if view.paused:
        plural = "" if counts.waiting == 1 else "s"
        parts.append((f"PAUSED · {counts.waiting:,} span{plural} waiting", "paused"))
    elif view.following:
        parts.append(("following", "following"))
    else:
        parts.append(("holding selection", "muted"))
    return parts
