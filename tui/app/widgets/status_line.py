"""The one-line header, drawn from reactive state bound in by the screen."""

from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.app.present.header import SPARK_SAMPLES, TONES, Counts, ViewState, header_parts

#: The sparkline takes a new spans/s sample at most this often (the screen samples twice a second, and
#: again on each change the user makes).
SPARK_SECONDS = 0.45


class StatusLine(Widget):
    """Repaints itself when any of its reactives changes (a repaint, never a re-layout: a layout
    pass twice a second costs real ingest throughput under a span flood)."""

    COMPONENT_CLASSES = {f"status-line--{tone}" for tone in TONES}
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $primary-background; color: $foreground; padding: 0 1; }
    StatusLine > .status-line--strong { text-style: bold; }
    StatusLine > .status-line--note { text-style: italic; }
    StatusLine > .status-line--error { color: $text-error; text-style: bold; }
    StatusLine > .status-line--warning { color: $text-warning; text-style: bold; }
    StatusLine > .status-line--overloaded { color: auto 90%; background: $error; text-style: bold; }
    StatusLine > .status-line--paused { color: auto 90%; background: $warning; text-style: bold; }
    StatusLine > .status-line--following { color: $text-success; text-style: bold; }
    StatusLine > .status-line--muted { color: $text-muted; }
    """

    counts: reactive[Counts] = reactive(Counts)
    filter_text = reactive("")
    errors_only = reactive(False)
    paused = reactive(False)
    following = reactive(True)
    overloaded = reactive(False)
    #: The list's sort as the header says it ("" for the default, newest first).
    sort = reactive("")

    def __init__(self, listening: list[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.listening = listening
        #: The latest spans/s samples, oldest first, for the sparkline after spans/s.
        self.rates: deque[float] = deque(maxlen=SPARK_SAMPLES)
        self._rated_at = float("-inf")

    def watch_counts(self, counts: Counts) -> None:
        now = time.monotonic()
        if now - self._rated_at >= SPARK_SECONDS:
            self._rated_at = now
            self.rates.append(counts.spans_per_second)

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self._parts())

    def _parts(self) -> list[tuple[str, str]]:
        view = ViewState(self.filter_text, self.errors_only, self.paused, self.following, self.overloaded, self.sort)
        return header_parts(self.listening, self.counts, view, self.size.width or None, self.rates)

    def render(self) -> Text:
        return Text.assemble(*((text, self.get_component_rich_style(f"status-line--{tone}", partial=True))
                               if tone else text for text, tone in self._parts()))
