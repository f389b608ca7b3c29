"""The filter bar: hidden until opened, owns its Enter and Esc, and says what happened by message."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """Typing filters at once (``Input.Changed``); Enter keeps the filter, Esc clears it.

    Either way the bar posts :class:`Closed`, and the screen decides where focus goes.
    """

    BINDINGS = [
        Binding("enter", "keep", "Keep the filter, back to the list", id="filter.keep"),
        Binding("escape", "clear", "Clear the filter, back to the list", id="filter.clear"),
    ]
    DEFAULT_CSS = """
    FilterBar { dock: bottom; display: none; border: tall $accent; }
    FilterBar.-open { display: block; }
    """

    class Closed(Message):
        """The user is done with the bar (``cleared``: with Esc, having emptied it)."""

        def __init__(self, cleared: bool) -> None:
            super().__init__()
            self.cleared = cleared

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="filter: service, span name, model, attribute values, prompt text  "
                                     "(Enter keeps it, Esc clears)", id=id)

    def open(self) -> None:
        self.add_class("-open")

    def action_keep(self) -> None:
        if not self.value:
            self.remove_class("-open")
        self.post_message(self.Closed(cleared=False))

    def reset(self) -> None:
        """Empty and hide the bar (the screen cleared the filter some other way)."""
        self.value = ""
        self.remove_class("-open")

    def action_clear(self) -> None:
        self.reset()
        self.post_message(self.Closed(cleared=True))

