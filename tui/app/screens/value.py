"""A full-screen, scrollable, read-only view of one value (a prompt, a completion, an attribute)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, TextArea

from tui.model.text import safe_text

#: A 10 MB attribute should open, not freeze the terminal: beyond this the view says what it left out.
MAX_CHARACTERS = 2_000_000


class ValueScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,q,o", "dismiss", "Close", id="value.close"),
        Binding("y", "copy", "Copy", id="value.copy"),
    ]
    DEFAULT_CSS = """
    ValueScreen { align: center middle; }
    ValueScreen > Vertical { width: 100%; height: 100%; background: $surface; border: thick $accent; }
    ValueScreen Label { padding: 0 1; text-style: bold; width: 100%; background: $accent 30%; }
    ValueScreen TextArea { height: 1fr; border: none; }
    """

    def __init__(self, title: str, value: str) -> None:
        super().__init__()
        self.title_text = title
        self.value = value

    def compose(self) -> ComposeResult:
        shown = self.value
        if len(shown) > MAX_CHARACTERS:
            shown = shown[:MAX_CHARACTERS] + f"\n… {len(self.value) - MAX_CHARACTERS:,} more characters not shown"
        with Vertical():
            yield Label(safe_text(self.title_text), markup=False)
            yield TextArea(safe_text(shown, multiline=True), read_only=True, soft_wrap=True, id="value-text")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.value)
        self.notify("Copied to the clipboard")
