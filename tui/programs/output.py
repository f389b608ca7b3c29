"""A program's terminal output made safe to show: lines of styled text as plain data, in a bounded buffer.

The program writes to a pseudo-terminal, so it colours its output and may move the cursor, clear the
screen, set the window title or write to the clipboard (OSC 52). None of that may reach our terminal:
colour (SGR) is kept as data — text plus a style a UI can draw or a printer can re-emit — and every
other escape sequence is removed; stray control characters are shown as visible escapes, as in span text.
"""

from __future__ import annotations

import codecs
import functools
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from tui.model.text import safe_text

#: A palette index (0–255) or a 24-bit colour.
Color = int | tuple[int, int, int]

_NAMES = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")
_ATTRIBUTES = (("bold", "1"), ("dim", "2"), ("italic", "3"), ("underline", "4"), ("blink", "5"),
               ("reverse", "7"), ("strike", "9"))
#: SGR codes that switch an attribute on or off.
_SET = {1: {"bold": True}, 2: {"dim": True}, 3: {"italic": True}, 4: {"underline": True}, 5: {"blink": True},
        6: {"blink": True}, 7: {"reverse": True}, 9: {"strike": True}, 21: {"bold": False},
        22: {"bold": False, "dim": False}, 23: {"italic": False}, 24: {"underline": False}, 25: {"blink": False},
        27: {"reverse": False}, 29: {"strike": False}, 39: {"fg": None}, 49: {"bg": None}}


@dataclass(frozen=True, slots=True)
class TextStyle:
    """The SGR state a stretch of text was written in."""

    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    blink: bool = False
    reverse: bool = False
    strike: bool = False
    fg: Color | None = None
    bg: Color | None = None

    @property
    def name(self) -> str:
        """In Rich's style grammar (``bold red on color(236)``, ``#ff8700``); empty for plain text."""
        words = [attr for attr, _ in _ATTRIBUTES if getattr(self, attr)]
        if self.fg is not None:
            words.append(_color_name(self.fg))
        if self.bg is not None:
            words += ["on", _color_name(self.bg)]
        return " ".join(words)

    @property
    def sgr(self) -> str:
        """The SGR parameters that select this style (``1;31``), for a printer writing to a terminal."""
        codes = [code for attr, code in _ATTRIBUTES if getattr(self, attr)]
        for color, base in ((self.fg, 30), (self.bg, 40)):
            if isinstance(color, tuple):
                codes.append(f"{base + 8};2;{color[0]};{color[1]};{color[2]}")
            elif color is not None and color < 16:
                codes.append(str(base + color if color < 8 else base + 60 + color - 8))
            elif color is not None:
                codes.append(f"{base + 8};5;{color}")
        return ";".join(codes)

    def apply(self, params: str) -> TextStyle:
        """This style after ``ESC [ params m``."""
        style = self
        codes = iter(params.split(";"))
        for raw in codes:
            parts = raw.split(":")  # ITU T.416 form, one parameter: 38:5:N, 38:2:[colourspace]:R:G:B, 4:3
            if len(parts) > 1 and parts[0] in ("38", "48"):
                rgb = parts[-3:] if len(parts) >= 5 else parts[2:]
                style = style._extended(int(parts[0]), iter([parts[1], *rgb] if parts[1] == "2" else parts[1:]))
                continue
            code = int(parts[0]) if parts[0].isdigit() else 0
            if code == 0:
                style = TextStyle()
            elif code in _SET:
                style = replace(style, **_SET[code])  # type: ignore[arg-type]
            elif 30 <= code <= 37 or 90 <= code <= 97:
                style = replace(style, fg=code - 30 if code < 90 else code - 82)
            elif 40 <= code <= 47 or 100 <= code <= 107:
                style = replace(style, bg=code - 40 if code < 100 else code - 92)
            elif code in (38, 48):
                style = style._extended(code, codes)
        return style

    def _extended(self, code: int, args: Iterator[str]) -> TextStyle:
        """``38;5;N`` / ``38;2;R;G;B`` (48 for the background); a malformed one changes nothing."""
        try:
            kind = int(next(args))
            color: Color = int(next(args)) if kind == 5 else (int(next(args)), int(next(args)), int(next(args)))
        except (StopIteration, ValueError):
            return self
        if kind not in (2, 5) or not all(0 <= c <= 255 for c in (color if isinstance(color, tuple) else (color,))):
            return self
        return replace(self, fg=color) if code == 38 else replace(self, bg=color)


PLAIN = TextStyle()


def _color_name(color: Color) -> str:
    if isinstance(color, tuple):
        return "#{:02x}{:02x}{:02x}".format(*color)
    if color < 16:
        return _NAMES[color] if color < 8 else f"bright_{_NAMES[color - 8]}"
    return f"color({color})"


@dataclass(frozen=True, slots=True)
class OutputLine:
    """One line of a program's output: its text in styled stretches, and which run of the program wrote it
    (a restart starts run 2, so a view can draw a separator where the run changes)."""

    segments: tuple[tuple[str, TextStyle], ...]
    run: int = 1

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.segments)

    def ansi(self) -> str:
        """The line re-coloured for a terminal, with only the SGR codes we parsed: safe to print."""
        return "".join(f"\x1b[{style.sgr}m{text}\x1b[0m" if style.sgr else text for text, style in self.segments)


# Everything a terminal would interpret, in one pass: CSI (7- and 8-bit); OSC, DCS, SOS, PM and APC strings
# up to their terminator (BEL or ST) or the end of the line; and the remaining two- or three-byte escapes.
_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)(?P<params>[0-?]*)(?P<inter>[ -/]*)(?P<final>[@-~])"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[ -/]*[0-~]"
)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
TAB_WIDTH = 8


class LineParser:
    """Bytes from the terminal in, finished lines out. The colour state carries over from line to line, as
    on a terminal, and so do a UTF-8 character or an escape sequence split across reads."""

    def __init__(self, max_line_chars: int) -> None:
        self.max_line_chars = max_line_chars
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self.style = PLAIN

    def feed(self, data: bytes, run: int) -> list[OutputLine]:
        text = self._pending + self._decoder.decode(data)
        *lines, self._pending = text.split("\n")
        while len(self._pending) > self.max_line_chars:  # no newline for too long: cut it, keep everything
            lines.append(self._pending[: self.max_line_chars])
            self._pending = self._pending[self.max_line_chars:]
        return [self._line(line, run) for line in lines]

    def flush(self, run: int) -> list[OutputLine]:
        """The unfinished last line, at the end of the output."""
        rest, self._pending = self._pending + self._decoder.decode(b"", final=True), ""
        return [self._line(rest, run)] if rest else []

    def _line(self, raw: str, run: int) -> OutputLine:
        # A carriage return sends the cursor back: what follows it replaces the line (a progress bar's last
        # state is what the terminal shows), though colour changes before it still hold; a trailing one (the
        # terminal's CR LF) changes nothing.
        overwritten, carriage, raw = raw.rstrip("\r").rpartition("\r")
        if carriage:
            for earlier in _ESCAPE.finditer(overwritten):
                self._obey(earlier)
        if not _CONTROLS.search(raw):  # the common case: nothing to parse
            return OutputLine(((raw, self.style),) if raw else (), run)
        segments: list[tuple[str, TextStyle]] = []
        column = position = 0
        for match in [*_ESCAPE.finditer(raw), None]:
            end = match.start() if match else len(raw)
            if end > position:
                text = _expand_tabs(raw[position:end], column)
                column += len(text)
                segments.append((safe_text(text), self.style))
            if match is None:
                break
            position = match.end()
            self._obey(match)
        return OutputLine(tuple(_merged(segments)) if len(segments) > 1 else tuple(segments), run)

    def _obey(self, match: re.Match[str]) -> None:
        """Take the colour from an escape sequence; every other one is dropped."""
        if match.group("final") == "m" and not match.group("inter"):
            self.style = _applied(self.style, match.group("params"))


@functools.lru_cache(maxsize=1024)
def _applied(style: TextStyle, params: str) -> TextStyle:
    """A program uses a handful of colours over and over: each change is worked out once."""
    return style.apply(params)


def _expand_tabs(text: str, column: int) -> str:
    return text if "\t" not in text else (" " * column + text).expandtabs(TAB_WIDTH)[column:]


def _merged(segments: list[tuple[str, TextStyle]]) -> Iterator[tuple[str, TextStyle]]:
    """Adjacent stretches in one style as one (a reset between two plain words leaves one)."""
    last: tuple[str, TextStyle] | None = None
    for segment in segments:
        if last is not None and last[1] == segment[1]:
            last = (last[0] + segment[0], last[1])
            continue
        if last is not None:
            yield last
        last = segment
    if last is not None:
        yield last


@dataclass(slots=True)
class OutputBuffer:
    """The lines kept for a view, bounded by the bytes of their text; the oldest go first, and are counted."""

    max_bytes: int
    lines: deque[OutputLine] = field(default_factory=deque)
    size: int = 0
    total_lines: int = 0
    dropped_lines: int = 0
    dropped_bytes: int = 0
    _sizes: deque[int] = field(default_factory=deque)

    def append(self, line: OutputLine) -> None:
        text = line.text
        cost = (len(text) if text.isascii() else len(text.encode("utf-8", "replace"))) + 1
        self.lines.append(line)
        self._sizes.append(cost)
        self.size += cost
        self.total_lines += 1
        while self.size > self.max_bytes and len(self.lines) > 1:
            self.lines.popleft()
            dropped = self._sizes.popleft()
            self.size -= dropped
            self.dropped_lines += 1
            self.dropped_bytes += dropped
