"""The help screen: every key, generated from the bindings themselves so it can never go stale."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {"pageup": "PgUp", "pagedown": "PgDn", "question_mark": "?", "slash": "/", "escape": "Esc",
             "enter": "Enter", "tab": "Tab", "up": "↑", "down": "↓", "left": "←", "right": "→",
             "home": "Home", "end": "End", "ctrl+c": "Ctrl+C", "ctrl+p": "Ctrl+P"}


def key_label(keys: str) -> str:
    return " ".join(KEY_NAMES.get(k, k) for k in keys.split(","))


def bindings_table(sections: Iterable[tuple[str, Iterable[BindingType]]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for title, bindings in sections:
        table.add_row("", "")
        table.add_row(f"[b]{title}[/b]", "")
        for binding in bindings:
            if isinstance(binding, Binding):
                table.add_row(key_label(binding.key), binding.tooltip or binding.description)
    return table


INTRO = (
    "ollama-tui shows OpenTelemetry traces as they arrive. Select a trace or span on the left;"
    " its LLM prompt, completion and tokens, attributes, events and timeline are on the right.\n"
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; height: 90%; background: $surface; border: thick $accent;
                                  padding: 0 2; }
    """

    def __init__(self, sections: list[tuple[str, Sequence[BindingType]]], intro: str = INTRO) -> None:
        super().__init__()
        self.sections = sections
        self.intro = intro

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.intro, markup=False)
            yield Static(bindings_table(self.sections))
