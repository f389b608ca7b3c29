"""The one-line header's content: where we listen, what is held, how fast it arrives, what was lost.

Built as (text, tone) parts so it is tested as plain data; the header widget maps tones to its
theme's styles.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
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
    #: Spans lost for good (invalid ids...); not those asked to be retried, which the exporter sends again.
    rejected: int = 0
    evicted: int = 0
    #: Spans left out of traces that reached the per-trace cap (each such trace's row says how many).
    capped: int = 0
    #: Spans received since the pause (0 when not paused).
    waiting: int = 0
    #: Traces the list shows (fewer than ``traces`` under a filter).
    shown: int = 0
    #: Share of the store a new filter has scanned so far (1.0 when done).
    scanned: float = 1.0
    #: Share of the traces a new sort has its keys for (1.0 when done).
    sorted: float = 1.0
    #: Exports answered with back-pressure since start (their spans stay with the exporter, to retry).
    retries_asked: int = 0
    #: Spans received again after they were taken (an exporter retrying), acknowledged and not stored twice.
    duplicates: int = 0
    #: ``--forward``: (requests waiting, requests lost, an error to show or "") — None without it.
    forwarding: tuple[int, int, str] | None = None
    #: ``--save``: why writing stopped and how many spans were not saved ("" while it works).
    save_error: str = ""


@dataclass(frozen=True, slots=True)
class ViewState:
    """What the user set or the app decided about the view, as the header shows it."""

    filter_text: str = ""
    errors_only: bool = False
    paused: bool = False
    following: bool = True
    #: Exporters were answered with back-pressure in the last few seconds.
    overloaded: bool = False
    #: How the list is sorted, as the header says it ("longest first"); "" for the default, newest first.
    sort: str = ""


#: A section of the header: its parts, and how much it matters (the least is dropped first when narrow).
Section = tuple[int, list[Part]]
SEPARATOR: Part = ("  │  ", "")


def header_parts(listening: list[tuple[str, str]], counts: Counts, view: ViewState,
                 width: int | None = None, rates: Sequence[float] = ()) -> list[Part]:
    """The header as (text, tone) parts. Given a ``width``, the least important sections are left out
    until it fits; the paused / following state is never left out. ``rates``, the latest spans/s
    samples, oldest first, draw a sparkline after spans/s: the first thing left out when narrow."""
    sections = _sections(listening, counts, view)
    spark = sparkline(rates)
    if spark:
        with_spark = [(rank, [*parts, (f" {spark}", "muted")] if parts and parts[0][0].endswith(" spans/s") else parts)
                      for rank, parts in sections]
        if width is None or _length(with_spark) <= width:
            sections = with_spark
    while width is not None and len(sections) > 1 and _length(sections) > width:
        sections.remove(min(sections[:-1], key=lambda section: section[0]))
    parts: list[Part] = []
    for i, (_, section) in enumerate(sections):
        parts += ([SEPARATOR] if i else []) + section
    return parts


#: Samples the header's sparkline shows at most, and its characters, lowest first.
SPARK_SAMPLES = 20
SPARK_BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], samples: int = SPARK_SAMPLES) -> str:
    """The last ``samples`` values as block characters scaled to their own maximum; "" when there are
    none or all are 0 (nothing has arrived lately: a flat line would say nothing)."""
    shown = list(values)[-samples:] if samples > 0 else []
    top = max(shown, default=0.0)
    if top <= 0:
        return ""
    last = len(SPARK_BLOCKS) - 1
    return "".join(SPARK_BLOCKS[max(0, min(last, round(v / top * last)))] for v in shown)


def exposed(listening: list[tuple[str, str]]) -> bool:
    """Whether a receiver listens beyond this machine (anything but a loopback address): never let that
    scroll out of sight, as a warning printed before the screen took over would."""
    for _, address in listening:
        host = address.rsplit(":", 1)[0].strip("[]")
        if host == "localhost":
            continue
        try:
            if ipaddress.ip_address(host).is_loopback:
                continue
        except ValueError:
            pass  # a host name: it resolves to a real interface
        return True
    return False


def _length(sections: list[Section]) -> int:
    return sum(len(text) for _, section in sections for text, _ in section) + len(SEPARATOR[0]) * (len(sections) - 1)


def _sections(listening: list[tuple[str, str]], counts: Counts, view: ViewState) -> list[Section]:
    """In display order; the last one (the view's state) always stays."""
    sections: list[Section] = [
        (2, [(" · ".join(f"{name} {address}" for name, address in listening) or "no receivers", "strong")])]
    held = f"{counts.traces:,} traces · {counts.spans:,} spans"
    if view.filter_text or view.errors_only:
        held = f"{counts.shown:,}/{held}"
    parts: list[Part] = [(held, "")]
    if view.errors_only:
        parts.append((" · errors only", "error"))
    if view.filter_text:
        parts.append((f" · filter {view.filter_text!r}", "strong"))
    if counts.scanned < 1.0:
        parts.append((f" (searching… {counts.scanned:.0%})", "note"))
    if view.sort:
        parts.append((f" · {view.sort}", "strong"))
    if counts.sorted < 1.0:
        parts.append((f" (sorting… {counts.sorted:.0%})", "note"))
    sections.append((7, parts))
    sections.append((3, [(f"{counts.spans_per_second:,.0f} spans/s", "")]))
    losses: list[Part] = [(f"rejected {counts.rejected:,}", "error" if counts.rejected else ""), (" · ", ""),
                          (f"evicted {counts.evicted:,}", "warning" if counts.evicted else "")]
    if counts.capped:
        losses += [(" · ", ""), (f"over trace cap {counts.capped:,}", "warning")]
    if counts.retries_asked:
        losses += [(" · ", ""), (f"asked to retry {counts.retries_asked:,}", "warning")]
    if counts.duplicates:
        losses += [(" · ", ""), (f"duplicates ignored {counts.duplicates:,}", "note")]
    sections.append((5 if counts.rejected or counts.evicted or counts.capped or counts.retries_asked else 1, losses))
    if counts.forwarding is not None:
        waiting, lost, error = counts.forwarding
        forward: list[Part] = [(f"→ forward: {waiting:,} waiting" + (f", {lost:,} lost" if lost else ""),
                                "error" if lost or error else "")]
        if error:
            forward.append((f" ({error[:60]})", "error"))
        sections.append((6 if lost or error else 4, forward))
    if counts.save_error:
        sections.append((6, [(counts.save_error, "error")]))
    state: list[Part] = [("OPEN TO THE NETWORK", "overloaded"), ("  ", "")] if exposed(listening) else []
    if view.overloaded:
        state += [("OVERLOADED", "overloaded"), ("  ", "")]
    if view.paused:
        plural = "" if counts.waiting == 1 else "s"
        state.append((f"PAUSED · {counts.waiting:,} span{plural} waiting", "paused"))
    elif view.following:
        state.append(("following", "following"))
    else:
        state.append(("holding selection", "muted"))
    sections.append((99, state))
    return sections
