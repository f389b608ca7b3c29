"""The replay form atop the chat pane: what a replay will send, every part editable before Enter sends it.

The last user message is edited in the chat input below (where Enter sends); the model in the pane's
model picker; the system prompt, the sampling options and the number of runs here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static, TextArea

from tui.model.text import safe_text

if TYPE_CHECKING:
    from tui.chat.replay import ReplayRequest

#: The most runs one replay may ask for (each is a whole generation on the local model).
MAX_RUNS = 20
#: Messages named in the one-line summary of what comes before the edited one (the latest).
EARLIER_SHOWN = 8


class ReplayForm(Vertical):
    """The request being replayed: a summary, the system prompt, the options and how many runs."""

    DEFAULT_CSS = """
    ReplayForm { height: auto; max-height: 50%; padding: 0 1; border-bottom: hkey $panel; }
    ReplayForm #replay-title { color: $text-accent; text-style: bold; }
    ReplayForm #replay-note { color: $text-warning; }
    ReplayForm #replay-earlier { color: $text-muted; }
    ReplayForm .replay-label { width: 9; color: $text-muted; }
    ReplayForm Horizontal { height: auto; }
    ReplayForm #replay-system { height: auto; max-height: 4; width: 1fr; }
    ReplayForm #replay-options { width: 1fr; }
    ReplayForm #replay-runs { width: 6; }
    """

    def __init__(self, request: ReplayRequest, source: str, note: str) -> None:
        super().__init__(id="replay-form")
        self.request = request
        self.source = source
        self.note = note

    def compose(self) -> ComposeResult:
        from tui.chat.replay import format_options

        request = self.request
        tools = f" · {len(request.tools)} tool{'s' if len(request.tools) != 1 else ''}" if request.tools else ""
        yield Static(Text(f"↻ Replay of {safe_text(self.source)} · {len(request.messages)} messages{tools}"
                          " · Enter sends · Esc cancels"), id="replay-title")
        note = Static(Text(safe_text(self.note)), id="replay-note")
        note.display = bool(self.note)
        yield note
        yield Static(Text(safe_text(_earlier(request), multiline=False)), id="replay-earlier")
        with Horizontal():
            yield Label("system", classes="replay-label")
            yield TextArea(request.system_text, id="replay-system", compact=True, soft_wrap=True,
                           show_line_numbers=False, placeholder="(no system prompt)")
        with Horizontal():
            yield Label("options", classes="replay-label")
            yield Input(format_options(request.options), id="replay-options", compact=True,
                        placeholder="none recorded (e.g. temperature=0.7 seed=1)")
            yield Label(" runs", classes="replay-label")
            yield Input("1", id="replay-runs", compact=True, type="integer", max_length=2)

    @property
    def system(self) -> str:
        return self.query_one("#replay-system", TextArea).text

    @property
    def options_text(self) -> str:
        return self.query_one("#replay-options", Input).value

    @property
    def runs(self) -> int | str:
        """How many times to send it, or why the field is not a count."""
        text = self.query_one("#replay-runs", Input).value.strip() or "1"
        runs = int(text) if text.isdigit() else 0
        return runs if 1 <= runs <= MAX_RUNS else f"Runs must be a whole number from 1 to {MAX_RUNS}, not {text!r}"


def _earlier(request: ReplayRequest) -> str:
    """The conversation before the message being edited, one word a message: ``user · assistant→get_weather · tool``."""
    messages = request.messages
    if messages and messages[-1].get("role") == "user":
        messages = messages[:-1]
    shown = []
    for message in messages:
        role = str(message.get("role", "?"))
        if role == "system":
            continue
        calls = [str(c.get("function", {}).get("name", "?")) for c in message.get("tool_calls") or []]
        shown.append(f"{role}→{','.join(calls)}" if calls else role)
    if len(shown) > EARLIER_SHOWN:
        shown = [f"{len(shown) - EARLIER_SHOWN} more", *shown[-EARLIER_SHOWN:]]
    return "before it: " + (" · ".join(shown) if shown else "nothing (the message below is the whole prompt)")
