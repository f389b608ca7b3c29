"""Formatting of untrusted span data for display, shared by the console printer and the app.

Everything in a span comes from whoever can reach the port. Control characters (ANSI escape
sequences, carriage returns, bells, OSC title changes) are turned into visible escapes here so
that no caller can forget: a terminal must never interpret span text.
"""

from __future__ import annotations

import json
import re

from tui.model.span import AttrValue

# C0 and C1 controls and DEL. Tab and newline are kept where a caller asks for multi-line text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\e"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def safe_text(text: str, *, multiline: bool = False) -> str:
    """Return ``text`` with every control character shown as a visible escape (``\\e``, ``\\x07``).

    With ``multiline`` newlines and tabs are kept (for prompt bodies and stack traces);
    otherwise they are escaped too, so one value stays on one row.
    """
    pattern = _CONTROL if multiline else _CONTROL_SINGLE_LINE
    return pattern.sub(_escape, text)


def format_duration(ns: int) -> str:
    """Human duration with three significant digits: ``812µs``, ``12.4ms``, ``1.24s``, ``3m05s``."""
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.3g}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.3g}ms"
    seconds = ns / 1_000_000_000
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_value(value: AttrValue, *, limit: int | None = None) -> str:
    """One attribute value as readable text: strings bare, arrays and maps as JSON, bytes as hex."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, bytes):
        text = "0x" + value.hex()
    elif value is None:
        text = "null"
    else:
        text = json.dumps(_jsonable(value), ensure_ascii=False)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def _jsonable(value: AttrValue) -> object:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def tree_guides(depths: list[int]) -> list[str]:
    """Box-drawing prefixes (``├─ ``, ``│  └─ ``) for rows given in depth-first order.

    Depth-0 rows hang from an implicit parent (the trace), so every row gets a branch. Linear in
    the number of rows; no recursion.
    """
    n = len(depths)
    is_last = [False] * n
    later_sibling: dict[int, bool] = {}
    for i in range(n - 1, -1, -1):
        d = depths[i]
        is_last[i] = not later_sibling.get(d, False)
        later_sibling[d] = True
        for deeper in [k for k in later_sibling if k > d]:
            del later_sibling[deeper]
    prefixes: list[str] = []
    open_levels: list[bool] = []  # open_levels[k]: the ancestor at depth k has siblings below it
    for i, d in enumerate(depths):
        del open_levels[d:]
        trunk = "".join("│  " if open_ else "   " for open_ in open_levels)
        prefixes.append(trunk + ("└─ " if is_last[i] else "├─ "))
        open_levels.append(not is_last[i])
    return prefixes


def format_tokens(count: int | None) -> str:
    """A token count in at most five cells: ``812``, ``9999``, ``12k``, ``1.2M``; ``–`` when unknown."""
    if count is None:
        return "–"
    if count < 10_000:
        return str(count)
    if count < 1_000_000:
        return f"{count / 1000:.0f}k"
    return f"{count / 1_000_000:.1f}M"


def format_age(seconds: float) -> str:
    """How long ago, in the largest whole unit: ``42s``, ``5m``, ``3h``, ``2d``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"


def bar_extent(start: int, end: int, range_start: int, range_end: int, width: int) -> tuple[int, int]:
    """Where [start, end] falls in a bar of ``width`` cells spanning [range_start, range_end], as
    (first cell, cell count). Always at least one cell, so an instant span is still visible."""
    total = range_end - range_start
    if total <= 0:
        return 0, width
    left = min(max(int((start - range_start) / total * width), 0), width - 1)
    right = min(max(int((end - range_start) / total * width + 0.999), left + 1), width)
    return left, right - left
