"""The filter bar: hidden until opened, owns its Enter and Esc, and says what happened by message.

What is typed is a query (see :mod:`tui.model.query`); while it does not parse, the bar turns to the
theme's error colour and its lower border says where and why, and the filter stays as it was.
"""

from __future__ import annotations

from textual import on
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input

from tui.model.query import QueryError, parse


class FilterBar(Input):
    """Typing filters at once (``Input.Changed``); Enter keeps the filter, Esc clears it.

    Either way the bar posts :class:`Closed`, and the screen decides where focus goes.
    """

    BINDINGS = [
        Binding("enter", "keep", "Keep the filter, back to the list", id="filter.keep"),
        Binding("escape", "clear", "Clear the filter, back to the list", id="filter.clear"),
    ]
    DEFAULT_CSS = """
    FilterBar { dock: bottom; margin-bottom: 1; display: none; border: tall $accent; }  /* above the footer */
    FilterBar.-open { display: block; }
    FilterBar.-invalid { border: tall $error; border-subtitle-color: $text-error; }
    """

    class Closed(Message):
        """The user is done with the bar (``cleared``: with Esc, having emptied it)."""

        def __init__(self, cleared: bool) -> None:
            super().__init__()
            self.cleared = cleared

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="filter: text, service:NAME model:NAME status:error dur>1s tokens>1000 "
                                     "key=value -term, OR  (? help; Enter keeps it, Esc clears)", id=id)
        #: Why what is typed does not parse (None: it does, and is the filter).
        self.error: QueryError | None = None

    @on(Input.Changed)
    def _check(self, event: Input.Changed) -> None:
        """Runs before the screen sees the change (the message reaches the bar first)."""
        parsed = parse(event.value)
        self.error = parsed if isinstance(parsed, QueryError) else None
        self.set_class(self.error is not None, "-invalid")
        self.border_subtitle = f"✖ {self.error} (the filter stays as it was)" if self.error else ""

    def open(self) -> None:
        self.add_class("-open")

    def action_keep(self) -> None:
        if not self.value:
            self.remove_class("-open")
        self.post_message(self.Closed(cleared=False))

    def reset(self) -> None:
        """Empty and hide the bar (the screen cleared the filter some other way)."""
        self.value = ""
        self.error = None
        self.border_subtitle = ""
        self.remove_class("-open", "-invalid")

    def action_clear(self) -> None:
        self.reset()
        self.post_message(self.Closed(cleared=True))

