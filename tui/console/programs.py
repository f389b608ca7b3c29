"""``--print -- COMMAND``: the programs' output in the log, the doctor's findings on stderr, and the wait
for a program's last spans once it has ended.

A program's SDK exports what it still holds as it exits (its ``atexit`` shutdown), so those spans arrive
just before or just after the process ends; ``--print`` waits for the receivers to go quiet before it
prints its last trees and exits with the program's status, as a CI step needs.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tui.programs import OutputLine, Program, ProgramSet, State, Status
from tui.programs.program import Listener
from tui.receiver.doctor import Doctor
from tui.receiver.ingest import ReceiverStats

POLL_SECONDS = 0.1
#: Once every program has ended: how long nothing may arrive before the last trees are printed...
QUIET_SECONDS = 0.5
#: ...and the longest that wait may be, whatever keeps arriving.
LAST_SPANS_SECONDS = 5.0


def print_output(out: TextIO, *, several: bool, closed: Callable[[], None]) -> Listener:
    """A program listener writing each output line to ``out`` (coloured on a terminal, plain in a file; named
    when several programs run) and how each run ended, on stderr beside the other ``ollama-tui:`` lines.
    Once ``out`` is closed under us (``| head``), it writes no more and calls ``closed``."""
    colour = out.isatty()
    gone = False

    def listener(program: Program, event: OutputLine | Status) -> None:
        nonlocal gone
        if isinstance(event, OutputLine):
            if gone:
                return
            prefix = f"[{program.name}] " if several else ""
            try:
                out.write(f"{prefix}{event.ansi() if colour else event.text}\n")
                out.flush()
            except BrokenPipeError:
                gone = True
                closed()
        elif event.state in (State.EXITED, State.KILLED):  # one that cannot start is the command's error
            print(f"ollama-tui: {' '.join(program.argv)} {event.describe()}", file=sys.stderr, flush=True)

    return listener


def print_problems(doctor: Doctor, out: TextIO) -> None:
    """Each (exporter, problem) diagnosed since the last call, once, with its fix."""
    for diagnosis in doctor.take_new():
        print(f"ollama-tui: {diagnosis.text}", file=out, flush=True)


async def tell_problems(doctor: Doctor, out: TextIO) -> None:
    """:func:`print_problems` as they come, until cancelled."""
    while True:
        print_problems(doctor, out)
        await asyncio.sleep(POLL_SECONDS)


async def until_programs_end(programs: ProgramSet, stats: ReceiverStats, stop: asyncio.Event,
                             main: Program | None = None) -> None:
    """Return once every program (or ``main``, when given) has ended and the receivers have been quiet for a
    moment, or at once when ``stop`` is set (Ctrl+C, SIGTERM)."""
    ended = asyncio.ensure_future(main.wait() if main is not None else programs.wait_all())
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([ended, stopping], return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            return
        deadline = time.monotonic() + LAST_SPANS_SECONDS
        seen, quiet_since = _received(stats), time.monotonic()
        while not stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            now_seen = _received(stats)
            if now_seen != seen:
                seen, quiet_since = now_seen, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                return
    finally:
        ended.cancel()
        stopping.cancel()


def _received(stats: ReceiverStats) -> tuple[int, int, int]:
    return stats.spans_accepted, stats.log_records, stats.metric_points
