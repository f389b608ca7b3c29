"""One program run under a pseudo-terminal, its output followed line by line, stopped as a process group.

A pseudo-terminal, not pipes: a program writing to a terminal keeps its output line-buffered and coloured,
as it would in the user's shell, and stdout and stderr arrive interleaved in the order they were written.
The program gets a session (and so a process group) of its own, so that stopping it reaches whatever it
started too, and so that the terminal's Ctrl+C meant for ollama-tui does not reach it behind our back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import pty
import signal
import struct
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from tui.programs.output import LineParser, OutputBuffer, OutputLine

#: Seconds between SIGTERM and SIGKILL: the OpenTelemetry SDKs flush their batches on shutdown, and an
#: exporter that cannot connect gives up on a batch within its own timeout (10 s by default).
DEFAULT_GRACE = 10.0
#: Output kept per program for a view; older lines are dropped, and counted.
DEFAULT_OUTPUT_BYTES = 4 * 1024 * 1024
#: A line with no newline for this long is cut into several lines.
MAX_LINE_CHARS = 16 * 1024
#: How long output may still arrive after the program exits before its end is reported (a child it started
#: may still hold the terminal open; its output is still read, after the report).
DRAIN_SECONDS = 1.0
_READ_BYTES = 64 * 1024
#: Reads at most when draining the terminal on close, so a process that never stops writing cannot hold us.
_DRAIN_READS = 64
#: Seconds between checks that every process of a stopped program's group has gone.
_GROUP_POLL = 0.05


class State(Enum):
    NEW = "not started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    EXITED = "exited"
    KILLED = "killed"
    FAILED = "failed to start"


@dataclass(frozen=True, slots=True)
class Status:
    """Where a program is: what a header shows, and what ``--print`` exits with."""

    state: State
    run: int = 0
    pid: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    error: str | None = None

    @property
    def alive(self) -> bool:
        return self.state in (State.STARTING, State.RUNNING, State.STOPPING)

    @property
    def returncode(self) -> int | None:
        """The status a shell would report: the exit code, 128 + the signal's number, 127 for a command not
        found and 126 for one that could not be run; None while it runs."""
        if self.signal is not None:
            return 128 + self.signal
        return self.exit_code

    def describe(self) -> str:
        """``running``, ``exited 0``, ``killed by SIGTERM``, ``failed to start: command not found``."""
        if self.state is State.EXITED:
            return f"exited {self.exit_code}"
        if self.state is State.KILLED and self.signal is not None:
            return f"killed by {_signal_name(self.signal)}"
        if self.state is State.FAILED:
            return f"failed to start: {self.error}"
        return self.state.value


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class ProgramStartError(Exception):
    """A command that cannot be started, as one line naming it: ``cannot start 'pytset': command not found``."""

    def __init__(self, command: str, reason: str, returncode: int = 126) -> None:
        super().__init__(f"cannot start {command!r}: {reason}")
        self.command = command
        self.reason = reason
        self.returncode = returncode

    @classmethod
    def from_os_error(cls, command: str, error: OSError) -> ProgramStartError:
        if isinstance(error, FileNotFoundError):
            return cls(command, "command not found", 127)
        if isinstance(error, PermissionError):
            return cls(command, "permission denied (is it an executable file?)")
        if error.errno == errno.ENOEXEC:
            return cls(command, "not a program (a script needs a #! line)")
        return cls(command, error.strerror or str(error))


#: Called with each new output line and each status change, on the event loop; it must not block.
Listener = Callable[["Program", "OutputLine | Status"], None]


class Program:
    """One command: started, followed, stopped and restarted on the running event loop."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 overridden: Sequence[str] = (), max_output_bytes: int = DEFAULT_OUTPUT_BYTES,
                 columns: int = 120, rows: int = 40) -> None:
        if not argv or not argv[0]:
            raise ProgramStartError("", "empty command")
        self.argv = list(argv)
        #: None: ollama-tui's own environment.
        self.env = dict(env) if env is not None else None
        #: The variables of the user's environment that ``env`` changed, for the view to name.
        self.overridden = tuple(overridden)
        self.output = OutputBuffer(max_output_bytes)
        self.status = Status(State.NEW)
        self.listeners: list[Listener] = []
        self._size = struct.pack("HHHH", rows, columns, 0, 0)
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._master: int | None = None
        self._parser = LineParser(MAX_LINE_CHARS)
        self._eof = asyncio.Event()
        self._ended = asyncio.Event()

    @property
    def name(self) -> str:
        return os.path.basename(self.argv[0])

    async def start(self) -> None:
        """Start the command (again, once it has ended); :class:`ProgramStartError` if it cannot be."""
        if self.status.alive:
            return
        self._close_terminal()  # a child of the last run may still hold it
        run = self.status.run + 1
        self._ended = asyncio.Event()
        self._set(Status(State.STARTING, run))
        master, slave = pty.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, self._size)
            process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=slave, stderr=slave, env=self.env,
                start_new_session=True)
        except OSError as exc:
            os.close(master)
            error = ProgramStartError.from_os_error(self.argv[0], exc)
            self._set(Status(State.FAILED, run, exit_code=error.returncode, error=error.reason))
            self._ended.set()
            raise error from None
        finally:
            os.close(slave)  # the child has its own copies: the terminal ends when every process holding it has
        self._process = process
        self._master = master
        self._parser = LineParser(MAX_LINE_CHARS)
        self._eof = asyncio.Event()
        os.set_blocking(master, False)
        asyncio.get_running_loop().add_reader(master, self._read)
        self._set(Status(State.RUNNING, run, process.pid, started_at=time.time()))
        self._watcher = asyncio.create_task(self._watch(process, run))

    async def wait(self) -> Status:
        """The status once the current run has ended (its output read up to then)."""
        await self._ended.wait()
        return self.status

    async def stop(self, grace: float = DEFAULT_GRACE) -> Status:
        """SIGTERM to the program's process group, SIGKILL to what is left of it after ``grace`` seconds.

        The group, not just the program: a shell script's children, or a server's workers, end with it.
        """
        process = self._process
        if process is None:
            return self.status
        if self.status.alive:
            self._set(replace(self.status, state=State.STOPPING))
        # A run that has ended with its terminal closed by every process of its group has no group left; its
        # number may since belong to someone else's, which must not be signalled.
        gone = self._ended.is_set() and self._eof.is_set()
        if not gone and _signal_group(process.pid, signal.SIGTERM):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(process.wait(), grace)
            while _signal_group(process.pid, 0) and loop.time() < deadline:
                await asyncio.sleep(_GROUP_POLL)
            _signal_group(process.pid, signal.SIGKILL)
        await self._ended.wait()
        self._close_terminal()
        return self.status

    async def restart(self, grace: float = DEFAULT_GRACE) -> None:
        """Stop, then start again; the output goes on in the same buffer, its lines marked with the new run."""
        await self.stop(grace)
        await self.start()

    async def _watch(self, process: asyncio.subprocess.Process, run: int) -> None:
        code = await process.wait()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._eof.wait(), DRAIN_SECONDS)
        started = self.status.started_at
        ended = time.time()
        if code < 0:
            self._set(Status(State.KILLED, run, process.pid, started, ended, signal=-code))
        else:
            self._set(Status(State.EXITED, run, process.pid, started, ended, exit_code=code))
        self._ended.set()

    def _read(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, _READ_BYTES)
        except BlockingIOError:
            return
        except OSError:  # EIO: no process holds the terminal any more
            data = b""
        if data:
            self._add(self._parser.feed(data, self.status.run))
        else:
            self._close_terminal()

    def _close_terminal(self) -> None:
        """Read what is left, finish the last line, and close our end of the terminal."""
        master, self._master = self._master, None
        if master is None:
            return
        asyncio.get_running_loop().remove_reader(master)
        with contextlib.suppress(OSError):
            for _ in range(_DRAIN_READS):
                data = os.read(master, _READ_BYTES)
                if not data:
                    break
                self._add(self._parser.feed(data, self.status.run))
        os.close(master)
        self._add(self._parser.flush(self.status.run))
        self._eof.set()

    def _add(self, lines: list[OutputLine]) -> None:
        for line in lines:
            self.output.append(line)
            for listener in list(self.listeners):
                listener(self, line)

    def _set(self, status: Status) -> None:
        self.status = status
        for listener in list(self.listeners):
            listener(self, status)


def _signal_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to the group (0 only asks whether any process of it is left); False when none is."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True
