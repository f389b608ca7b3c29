"""A yes/no question. Only "y" says yes, so a stray Enter can never confirm a destructive action."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 60; max-width: 100%; height: auto; padding: 1 2; background: $surface;
                               border: thick $warning; }
    ConfirmScreen Label { width: 1fr; }
    """

    #: The keys, as the dialog names them.
    HINT = "y  yes    n  no"

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            yield Label(self.HINT, markup=False, classes="hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class ConfirmQuit(ConfirmScreen):
    """Quitting drops what is held: a second ``q`` confirms, as ``y`` does."""

    BINDINGS = [Binding("y,q", "answer(True)", "Quit", id="confirm.quit")]
    HINT = "q or y  quit    n or Esc  stay"
