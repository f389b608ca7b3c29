"""What the compare screen shows of a :class:`~tui.model.compare.Comparison`: a title, the notes, a table of
figures side by side, and the two completions with their word differences marked.

Rich only (no Textual), so it is unit-tested without an app. Span text is untrusted: every piece passes
through :func:`safe_text` and becomes plain ``Text``, never markup. Styles come from a palette of tones
(:data:`TONES`) that the screen maps to its theme's component classes; no colour is named here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.style import Style
from rich.table import Table
from rich.text import Text

from tui.app.present.detail import Palette, plain_palette
from tui.model.compare import DELETE, EQUAL, INSERT, REPLACE, UNCOMPARED, Comparison, Side
from tui.model.text import format_duration, safe_text

#: Every tone used here: words only on the left, only on the right, figures that differ, text not compared.
TONES = ("heading", "label", "note", "error", "removed", "added", "differs", "uncompared", "muted")
#: Characters of each completion drawn; the rest is counted (the whole text stays in the span).
CHARACTERS_SHOWN = 50_000
#: Rows whose values are compared and marked when they differ (timings and counts always differ a little).
_MARKED_ROWS = frozenset({"model", "provider", "parameters", "finish", "tool calls"})
#: Rows shown even when neither side has a value.
_ALWAYS_SHOWN = frozenset({"model", "tokens in", "tokens out", "latency"})
_NONE = "–"


def title(c: Comparison) -> str:
    left, right = c.names
    return safe_text(f"Compare  {left}: {_named(c.left)}  ↔  {right}: {_named(c.right)}  ·  {diff_summary(c)}")


def _named(side: Side) -> str:
    """The span's name, and its model when the name does not say it."""
    return f"{side.label} ({side.model})" if side.model and side.model not in side.label else side.label


def diff_summary(c: Comparison) -> str:
    """How much the completions differ, in words."""
    if c.same_completion:
        return "same completion"
    removed = sum(len(op.left.split()) for op in c.diff if op.kind in (DELETE, REPLACE))
    added = sum(len(op.right.split()) for op in c.diff if op.kind in (INSERT, REPLACE))
    left, right = c.names
    summary = f"{_words(removed)} only in the {left}, {_words(added)} only in the {right}"
    if any(op.kind == UNCOMPARED for op in c.diff):
        summary += ", part not compared"
    return summary


def _words(n: int) -> str:
    return f"{n:,} word{'' if n == 1 else 's'}"


def notes_text(c: Comparison, palette: Palette = plain_palette) -> Text:
    """The notes, one a line."""
    return Text("\n").join(Text(safe_text(f"• {note}"), style=palette("note")) for note in c.notes)


def side_heading(c: Comparison, which: int) -> str:
    """A completion pane's heading: the side's name (0 left, 1 right), its span and its model."""
    return safe_text(f"{c.names[which]}: {_named((c.left, c.right)[which])}")


# --- figures -------------------------------------------------------------------------------------------

def figure_rows(c: Comparison) -> list[tuple[str, str, str]]:
    """(figure, left value, right value) for each row, ``–`` for a value not recorded; rows neither side
    has are left out, but for the model, the token counts and the latency."""
    rows = [
        ("model", _model(c.left), _model(c.right)),
        ("provider", _provider(c.left), _provider(c.right)),
        ("parameters", _options(c.left.options), _options(c.right.options)),
        ("tokens in", _count(c.left.input_tokens), _count(c.right.input_tokens)),
        ("tokens out", _count(c.left.output_tokens), _count(c.right.output_tokens)),
        ("latency", _seconds(c.left.duration_s), _seconds(c.right.duration_s)),
        ("first token", _seconds(c.left.time_to_first_token_s), _seconds(c.right.time_to_first_token_s)),
        ("tokens/s", _rate(c.left.tokens_per_second), _rate(c.right.tokens_per_second)),
        ("finish", ", ".join(c.left.finish_reasons) or _NONE, ", ".join(c.right.finish_reasons) or _NONE),
        ("tool calls", "\n".join(c.left.tool_calls) or _NONE, "\n".join(c.right.tool_calls) or _NONE),
    ]
    if c.left.is_error or c.right.is_error:
        rows.append(("status", _status(c.left), _status(c.right)))
    return [row for row in rows if row[0] in _ALWAYS_SHOWN or row[1] != _NONE or row[2] != _NONE]


def figures_table(c: Comparison, palette: Palette = plain_palette) -> Table:
    """The figures as a table that wraps its values to the width it is drawn at; values that differ in the
    rows where a difference means something (model, provider, parameters, finish, tool calls) are marked, and
    a failed call's status."""
    table = Table(box=None, pad_edge=False, expand=True, header_style=palette("heading"))
    table.add_column("", style=palette("label"), no_wrap=True)
    left, right = c.names
    table.add_column(left, ratio=1, overflow="fold")
    table.add_column(right, ratio=1, overflow="fold")
    for name, a, b in figure_rows(c):
        differs = name in _MARKED_ROWS and a != b
        table.add_row(name, *(Text(safe_text(value, multiline=True), style=_figure_style(name, side, differs, palette))
                              for value, side in ((a, c.left), (b, c.right))))
    return table


def _figure_style(name: str, side: Side, differs: bool, palette: Palette) -> Style:
    if name == "status" and side.is_error:
        return palette("error")
    return palette("differs") if differs else Style()


def _model(side: Side) -> str:
    """The model asked for, and the one that answered when it names another (``gpt-4o → gpt-4o-2024-08-06``)."""
    request, response = side.request_model, side.response_model
    if request and response and request != response:
        return f"{request} → {response}"
    return side.model or _NONE


def _provider(side: Side) -> str:
    where = " (local)" if side.local else " (remote)" if side.remote else ""
    return f"{side.provider or ('ollama' if side.local else _NONE)}{where}"


def _options(options: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {_option(value)}" for name, value in options.items()) or _NONE


def _option(value: Any) -> str:
    if isinstance(value, (int, float)):
        return f"{value:g}"
    return json.dumps(value, ensure_ascii=False)


def _count(n: int | None) -> str:
    return _NONE if n is None else f"{n:,}"


def _seconds(s: float | None) -> str:
    return _NONE if s is None else format_duration(round(s * 1e9))


def _rate(r: float | None) -> str:
    return _NONE if r is None else f"{r:.1f}"


def _status(side: Side) -> str:
    return f"failed: {side.status}" if side.is_error else "ok"


# --- the completions -----------------------------------------------------------------------------------

def completion_texts(c: Comparison, palette: Palette = plain_palette,
                     limit: int = CHARACTERS_SHOWN) -> tuple[Text, Text]:
    """Each completion with the words only on its side marked (struck on the left, highlighted on the right),
    text beyond the diff's limits in the "uncompared" tone, cut after ``limit`` characters."""
    return _completion_text(c, True, palette, limit), _completion_text(c, False, palette, limit)


def _completion_text(c: Comparison, on_left: bool, palette: Palette, limit: int) -> Text:
    side = c.left if on_left else c.right
    text = Text()
    if side.is_error:
        text.append(safe_text(f"failed: {side.status}") + "\n", style=palette("error"))
    if not side.completion:
        empty = "\n".join(f"→ tool call: {call}" for call in side.tool_calls) or "(no completion recorded)"
        text.append(safe_text(empty, multiline=True), style=palette("muted"))
        return text
    changed = palette("removed" if on_left else "added")
    uncompared = palette("uncompared")
    room = limit
    for op in c.diff:  # a deletion has no right piece, an insertion no left one
        piece = (op.left if on_left else op.right)[:room]
        if not piece:
            continue
        room -= len(piece)
        shown = safe_text(piece, multiline=True)
        if op.kind == EQUAL:
            text.append(shown)
        else:
            _append_marked(text, shown, uncompared if op.kind == UNCOMPARED else changed)
    if len(side.completion) > limit:
        text.append(f"\n… {len(side.completion) - limit:,} more characters not shown", style=palette("note"))
    return text


def _append_marked(text: Text, piece: str, style: Style) -> None:
    """A piece with its style on the words only: the whitespace and line breaks around them stay unmarked, so
    a highlight does not run on to the end of the line."""
    words = piece.strip()
    before = len(piece) - len(piece.lstrip())
    text.append(piece[:before])
    text.append(words, style=style)
    text.append(piece[before + len(words):])
