"""Starting the real command in a child process, the same way whatever the test run inherited, and
ending it whatever the test's outcome.

A shell starts a script's background jobs with SIGINT ignored (``make test &``: the terminal's Ctrl+C is
meant for the foreground), children inherit that, and ollama-tui honours it as Python does
(``tui.console.run.stop_signals``). So every child here starts with SIGINT at its default, as a
terminal gives it; the one test of the ignored case asks for that explicitly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

COMMAND = [sys.executable, "-m", "tui"]


def sigint_default() -> None:
    """``preexec_fn``: SIGINT back to its default in the child, before it runs anything.

    (``preexec_fn`` is documented as unsafe in a process with threads because the child may need a lock
    another thread held at the fork; this one makes a single system call and takes no such lock.)
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sigint_ignored() -> None:
    """``preexec_fn``: SIGINT ignored in the child, as in a shell script's background job."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def started(args: Sequence[str], *, preexec_fn: Callable[[], None] = sigint_default,
            **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """``subprocess.Popen(args, **popen)``, killed if still running when the block ends, however it ends,
    then reaped with its pipes closed, so no test leaves a process listening behind it."""
    with subprocess.Popen(args, preexec_fn=preexec_fn, **popen) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


def run(args: Sequence[str], *, timeout: float = 30, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with SIGINT at its default; on timeout the child is killed (``subprocess.run``
    does that) and the test fails."""
    return subprocess.run(args, preexec_fn=sigint_default, timeout=timeout, **kwargs)
