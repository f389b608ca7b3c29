"""The Output pane: what the programs run under ollama-tui print, one tab each, beside their traces.

The pane pulls: each :meth:`OutputPane.flush` (on the screen's tick) takes the lines a program added
since the last one from its bounded buffer, so a program printing as fast as it can costs one batch
of writes per frame, never one message per line. Lines arrive already sanitised
(:mod:`tui.programs.output`): their colours are kept as styles, every other escape is gone, and they
are written as Rich ``Text``, never parsed as markup.
"""

from __future__ import annotations

import functools
import os
import time
from itertools import islice

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import RichLog, Static, TabbedContent, TabPane

from tui.model.text import format_age
from tui.programs import OutputLine, Program, TextStyle, service_name_for

#: Lines a program's log keeps on screen (its buffer keeps more, by bytes).
SHOWN_LINES = 2000
#: Most lines written in one flush: past this a burst shows its newest lines, and says how many it skipped.
FLUSH_LINES = 400


@functools.lru_cache(maxsize=512)
def _style(style: TextStyle) -> Style:
    """A program uses a handful of styles over and over: each is parsed once."""
    return Style.parse(style.name) if style.name else Style()


def line_text(line: OutputLine) -> Text:
    return Text.assemble(*((text, _style(style)) for text, style in line.segments), end="")


def status_text(program: Program, now: float) -> str:
    """``python app.py · pid 4242 · running 12s`` (or ``exited 1``), then the variables it overrode."""
    status = program.status
    parts = [" ".join([os.path.basename(program.argv[0]), *program.argv[1:]])]
    if status.pid is not None:
        parts.append(f"pid {status.pid}")
    state = status.describe()
    if status.alive and status.started_at is not None:
        state += f" {format_age(now - status.started_at)}"
    parts.append(state)
    if status.run > 1:
        parts.append(f"run {status.run}")
    text = " · ".join(parts) + " · R restarts"
    if program.overridden:
        text += "\nollama-tui set its exporter here, over your " + ", ".join(program.overridden)
    return text


def tab_label(program: Program) -> Content:
    """``app ● running``: the name its spans carry (``service.name``), and its state; plain text, since a
    script's name may hold brackets that Textual would read as markup."""
    state = f"{'●' if program.status.alive else '○'} {program.status.describe()}"
    return Content(f"{service_name_for(program.argv)} {state}")


class ProgramOutput(Vertical):
    """One program's status line and its output, followed from its buffer."""

    DEFAULT_CSS = """
    ProgramOutput > .program-status { height: auto; max-height: 2; color: $text-muted; }
    ProgramOutput > RichLog { height: 1fr; background: $surface; }
    """

    def __init__(self, program: Program) -> None:
        super().__init__()
        self.program = program
        #: ``program.output.total_lines`` when last flushed.
        self._seen = 0
        self._run = 0
        self._status = ""

    def compose(self) -> ComposeResult:
        yield Static(status_text(self.program, time.time()), classes="program-status", markup=False)
        yield RichLog(max_lines=SHOWN_LINES, wrap=True, markup=False, highlight=False)

    def flush(self, now: float) -> None:
        """Write what arrived since the last flush, and the program's current state."""
        status = status_text(self.program, now)
        if status != self._status:  # its age moves once a second; its height is fixed, so no new layout
            self._status = status
            self.query_one(".program-status", Static).update(status, layout=False)
        output = self.program.output
        new = output.total_lines - self._seen
        if not new:
            return
        self._seen = output.total_lines
        kept = min(new, len(output.lines))
        log = self.query_one(RichLog)
        if kept > FLUSH_LINES or kept < new:
            skipped = new - min(kept, FLUSH_LINES)
            log.write(Text(f"… {skipped:,} lines not shown (printed faster than they can be read)", style="dim"))
            kept = min(kept, FLUSH_LINES)
        for line in islice(output.lines, len(output.lines) - kept, None):
            if line.run != self._run:
                if self._run:
                    log.write(Text(f"── restarted: run {line.run} ──", style="dim"))
                self._run = line.run
            log.write(line_text(line))


class OutputPane(Vertical):
    """A tab per program (``-- COMMAND`` and each ``--run``); the tab's label carries its state."""

    DEFAULT_CSS = """
    OutputPane TabbedContent, OutputPane TabPane { height: 1fr; }
    OutputPane TabPane { padding: 0; }
    OutputPane.-single Tabs { display: none; }
    """

    def __init__(self, programs: list[Program], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.programs = programs
        # One program needs no tabs: its status line names it, and the log keeps the two lines.
        self.set_class(len(programs) == 1, "-single")

    def compose(self) -> ComposeResult:
        with TabbedContent():
            for number, program in enumerate(self.programs):
                with TabPane(tab_label(program), id=f"program-{number}"):
                    yield ProgramOutput(program)

    @property
    def shown(self) -> Program:
        """The program whose tab is active (``R`` restarts it)."""
        active = self.query_one(TabbedContent).active or "program-0"
        return self.programs[int(active.rpartition("-")[2])]

    @property
    def focus_target(self) -> RichLog:
        """Where Tab puts the focus: the shown program's log (arrow keys and PgUp/PgDn scroll it)."""
        pane = self.query_one(TabbedContent).active_pane
        return (pane or self).query_one(RichLog)

    def flush(self) -> None:
        now = time.time()
        tabs = self.query_one(TabbedContent)
        for number, view in enumerate(self.query(ProgramOutput)):
            view.flush(now)
            label = tab_label(view.program)
            tab = tabs.get_tab(f"program-{number}")
            if tab.label.plain != label.plain:
                tab.label = label
