"""The one-line header, drawn from reactive state bound in by the screen."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.app.present.header import TONES, Counts, ViewState, header_parts


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

    def __init__(self, listening: list[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.listening = listening

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self._parts())

    def _parts(self) -> list[tuple[str, str]]:
        view = ViewState(self.filter_text, self.errors_only, self.paused, self.following, self.overloaded)
        return header_parts(self.listening, self.counts, view, self.size.width or None)

    def render(self) -> Text:
        return Text.assemble(*((text, self.get_component_rich_style(f"status-line--{tone}", partial=True))
                               if tone else text for text, tone in self._parts()))
