"""The Conversation tab: an agent run as one item per step, with the totals first.

Each step (agent heading, LLM call, tool execution) is one item, so ``↑`` ``↓`` move step by step,
Enter jumps to the step's span (:attr:`Item.span_id`), ``o`` opens the whole step and ``y`` copies
it. Inline, each message is cut to :data:`~tui.model.conversation.INLINE_CHARS`; the full text is
the item's body. The lines come from :mod:`tui.model.conversation`, the shape ``--print`` prints.
"""

from __future__ import annotations

from rich.text import Text

from tui.app.present.detail import Item, Palette, plain_palette
from tui.model.conversation import (
    HEADING,
    LLM,
    TOOL,
    Conversation,
    Line,
    conversation,
    has_llm_descendants,
    step_lines,
    step_title,
    totals_line,
)
from tui.model.text import safe_text
from tui.model.trace_list import ListRow, LogEvents, no_logs

_TONES = {HEADING: "heading", LLM: "title", TOOL: "tool"}
#: Indentation per level of agents within agents, and the deepest drawn.
INDENT = "  "
MAX_INDENT = 6


def has_conversation(row: ListRow) -> bool:
    """Whether the Conversation tab is offered: a trace with an LLM span, or a span with one below it."""
    return has_llm_descendants(row.trace, row.span_id)


def row_conversation(row: ListRow, logs: LogEvents = no_logs) -> Conversation:
    return conversation(row.trace, row.span_id, logs)


def conversation_items(row: ListRow, logs: LogEvents = no_logs,
                       palette: Palette = plain_palette) -> tuple[list[Item], list[Text]]:
    """The tab's items and what each shows (the totals, then one item per step)."""
    conv = row_conversation(row, logs)
    totals = "Conversation · " + totals_line(conv.totals)
    items = [Item(totals, tone="note")]
    prompts = [Text(safe_text(totals), style=palette("note"))]
    if not conv.steps:
        note = "No LLM call or tool execution below this span"
        items.append(Item(note, tone="note"))
        prompts.append(Text(note, style=palette("note")))
    for step in conv.steps:
        full = "\n".join(text for _, text in step_lines(step, limit=None))
        items.append(Item(step_title(step), full, tone=_TONES[step.kind], span_id=step.span_id))
        prompts.append(render_lines(step_lines(step), min(step.depth, MAX_INDENT), palette))
    return items, prompts


def render_lines(lines: list[Line], depth: int, palette: Palette = plain_palette) -> Text:
    """A step's lines as one Text, each line styled by its tone and indented by ``depth``."""
    text = Text()
    indent = INDENT * depth
    for i, (tone, line) in enumerate(lines):
        if i:
            text.append("\n")
        text.append(indent + safe_text(line, multiline=True).replace("\n", " "),
                    style=palette(tone) if tone else "")
    return text
