"""The command palette's entries for the traces screen (Ctrl+P), as a Textual ``Provider``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True, slots=True)
class PaletteCommand:
    title: str
    help: str
    #: The screen action it runs.
    action: str
    #: Offered only when the chat pane exists.
    chat: bool = False


COMMANDS = (
    PaletteCommand("Filter traces", "Filter by service, span name, model, prompt text, trace or span id, key=value",
                   "filter"),
    PaletteCommand("Errors only", "Show only traces with an error (toggle)", "toggle_errors"),
    PaletteCommand("Follow newest", "Keep the cursor on the newest trace (toggle)", "toggle_follow"),
    PaletteCommand("Pause display", "Freeze the list while spans keep arriving (toggle)", "toggle_pause"),
    PaletteCommand("Clear traces", "Forget every trace held in memory", "clear"),
    PaletteCommand("Save trace", "Write the selected trace as OTLP JSON lines (--load reads it)", "save_trace"),
    PaletteCommand("Save all shown traces", "Write every trace the list shows as OTLP JSON lines", "save_shown"),
    PaletteCommand("Open value", "Show the selected value full screen", "open_value"),
    PaletteCommand("Copy value", "Copy the selected value, prompt or completion", "copy_value"),
    PaletteCommand("Save value to a file", "Write the selected value to a text file", "save_value"),
    PaletteCommand("Zoom pane", "Give the focused pane the whole screen (again: back)", "zoom"),
    PaletteCommand("Hide or show the detail pane", "Give the list the detail pane's room", "toggle_detail"),
    PaletteCommand("Help", "Every key binding", "help"),
    PaletteCommand("Logs and metrics", "GenAI metrics per model, logs that name no trace", "telemetry"),
    PaletteCommand("Chat: ask", "Open the chat pane and type a prompt", "ask", chat=True),
    PaletteCommand("Chat: show or hide the pane", "Toggle the chat pane", "toggle_chat", chat=True),
    PaletteCommand("Chat: new conversation", "Forget the conversation so far", "new_chat", chat=True),
    PaletteCommand("Replay LLM call", "Open the selected LLM call in the chat pane, editable, to run on a local model",
                   "replay", chat=True),
    PaletteCommand("Mark LLM call", "Mark the selected LLM call to compare (toggle)", "mark"),
    PaletteCommand("Compare LLM calls", "The two marked calls side by side, or a replay and its original",
                   "compare"),
)


def available_commands(with_chat: bool) -> list[PaletteCommand]:
    return [command for command in COMMANDS if with_chat or not command.chat]


class TraceCommands(Provider):
    """Runs the traces screen's own actions, so the palette and the keys can never disagree."""

    def _commands(self) -> list[PaletteCommand]:
        return available_commands(with_chat=bool(self.screen.query("ChatPane")))

    async def discover(self) -> Hits:
        for command in self._commands():
            yield DiscoveryHit(command.title, partial(self.screen.run_action, command.action), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), partial(self.screen.run_action, command.action),
                          help=command.help)
