"""``--save FILE``: every accepted trace request appended to a file as OTLP/JSON lines.

What the file can be trusted to hold: a request is acknowledged to its exporter once it is in the
recorder's backlog, and the backlog is bounded (:data:`MAX_BACKLOG_BYTES`); when it is full, exports
are refused with back-pressure (the ingest asks :meth:`RequestRecorder.has_room` before taking one), so
the exporter keeps the batch and retries instead of the recorder falling behind without limit. Each
batch of lines is handed to the operating system as soon as it is converted, so a killed process loses
only its backlog; the file is ``fsync``'d at most every :data:`FSYNC_SECONDS` and at close, which bounds
what a power cut can take. A write error (a full disk, a file-size limit, an I/O error) stops the
writing for good: from then on requests are counted as lost and dropped, so memory stays bounded, and
:attr:`RequestRecorder.error` says in one sentence what happened and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from tui.receiver.decode import ExportTraceServiceRequest
from tui.receiver.files import UnreadableFile
from tui.receiver.otlp_lines import request_line

#: Serialised requests accepted but not yet written before exporters are asked to retry. It bounds both
#: the memory ``--save`` may hold and what a ``kill -9`` can lose.
MAX_BACKLOG_BYTES = 64 * 1024 * 1024
#: Converted text handed to the operating system in one write, so lines reach the file steadily.
WRITE_BYTES = 1024 * 1024
#: The longest time written lines wait for ``fsync`` while requests keep arriving.
FSYNC_SECONDS = 1.0
#: What a write error means to the user, and what to do about it, by ``errno``.
_WRITE_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free space and restart, or save elsewhere"),
    errno.EDQUOT: ("the disk quota is used up", "free space and restart, or save elsewhere"),
    errno.EFBIG: ("the file reached the largest size this process may write",
                  "raise the limit (ulimit -f) and restart, or save elsewhere"),
}
_OTHER_ERROR = ("the file cannot be written", "check the disk and restart, or save elsewhere")
_INTERNAL_ERROR = ("ollama-tui failed to write a request (a bug: please report it)", "restart to save again")


class RequestRecorder:
    """The writer thread and its bounded backlog; see the module's docstring for the guarantee."""

    def __init__(self, path: Path, max_backlog_bytes: int = MAX_BACKLOG_BYTES) -> None:
        self.path = path
        self.max_backlog_bytes = max_backlog_bytes
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise UnreadableFile(f"--save {path}: {exc.strerror or exc}") from None
        _file_size_limit_is_an_error()
        self._lock = threading.Condition()
        self._backlog: deque[tuple[bytes, int]] = deque()
        self._backlog_bytes = 0
        self._closing = False
        self._syncable = True
        self._failure: tuple[str, str, str] | None = None  # (what happened, what to do, strerror)
        self.requests_written = self.spans_written = 0
        self.requests_lost = self.spans_lost = 0
        #: Called once, from the writer thread, with :attr:`error` when writing stops (``--print`` says so).
        self.on_error: Callable[[str], None] | None = None
        self._thread = threading.Thread(target=self._write, name="ollama-tui --save", daemon=True)
        self._thread.start()

    # --- the receivers' side (event loop) ---------------------------------------------------------

    def has_room(self, nbytes: int) -> bool:
        """Whether a request of ``nbytes`` may be accepted now. A request larger than the whole budget
        still gets in when nothing is waiting; after a write error everything does (and is counted lost)."""
        with self._lock:
            return (self._failure is not None or not self._backlog_bytes
                    or self._backlog_bytes + nbytes <= self.max_backlog_bytes)

    def record(self, body: bytes, spans: int) -> None:
        """An ingest listener: ``body`` is the serialised request, ``spans`` how many spans it holds."""
        with self._lock:
            if self._failure is not None:
                self.requests_lost += 1
                self.spans_lost += spans
                return
            self._backlog.append((body, spans))
            self._backlog_bytes += len(body)
            self._lock.notify()

    @property
    def backlog_bytes(self) -> int:
        return self._backlog_bytes

    @property
    def error(self) -> str:
        """One sentence for the header and stderr once writing has failed; "" while all is well."""
        if self._failure is None:
            return ""
        what, fix, strerror = self._failure
        spans = f"{self.spans_lost:,} span{'' if self.spans_lost == 1 else 's'}"
        return f"--save {self.path}: {what} ({strerror}); {spans} not saved — {fix}"

    def summary(self) -> str:
        """What ``--print`` says about the file at exit."""
        saved = f"saved {self.spans_written:,} spans ({self.requests_written:,} requests) to {self.path}"
        return f"{saved}; {self.error}" if self._failure is not None else saved

    def close(self) -> None:
        """Write everything acknowledged, ``fsync`` and close. Never gives up on the backlog (it is
        bounded); a second call does nothing."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._lock.notify()
        self._thread.join()
        if self._failure is None:
            self._sync(force=True)
        os.close(self._fd)

    # --- the writer thread ---------------------------------------------------------------------------

    def _write(self) -> None:
        try:
            self._write_batches()
        except Exception as exc:  # noqa: BLE001 - a thread that died silently would leave every export refused
            self._fail(*_INTERNAL_ERROR, repr(exc), ([], 0, 0))

    def _write_batches(self) -> None:
        synced = time.monotonic()
        while (batch := self._take()) is not None:
            lines, spans, nbytes = batch
            start = os.fstat(self._fd).st_size
            try:
                _write_all(self._fd, "".join(lines).encode())
                if time.monotonic() - synced >= FSYNC_SECONDS:
                    self._sync()
                    synced = time.monotonic()
            except OSError as exc:
                with contextlib.suppress(OSError):  # the file ends with the last whole request, if it can
                    os.ftruncate(self._fd, start)
                self._fail(*_WRITE_ERRORS.get(exc.errno or 0, _OTHER_ERROR), exc.strerror or str(exc), batch)
                return
            with self._lock:
                self.requests_written += len(lines)
                self.spans_written += spans
                self._backlog_bytes -= nbytes
                self._lock.notify_all()

    def _take(self) -> tuple[list[str], int, int] | None:
        """Convert what waits, up to :data:`WRITE_BYTES` of text; None once closing with nothing left.

        The requests stay counted in the backlog until written, so the bound covers them too.
        """
        with self._lock:
            while not self._backlog and not self._closing:
                self._lock.wait()
            if not self._backlog:
                return None
        lines: list[str] = []
        spans = nbytes = text = 0
        while text < WRITE_BYTES:
            with self._lock:
                if not self._backlog:
                    break
                body, count = self._backlog[0]  # this thread alone takes from the backlog
            # Converted before it leaves the backlog: one that cannot be is counted lost with the rest.
            lines.append(request_line(ExportTraceServiceRequest.FromString(body)) + "\n")
            with self._lock:
                self._backlog.popleft()
            spans, nbytes, text = spans + count, nbytes + len(body), text + len(lines[-1])
        return lines, spans, nbytes

    def _sync(self, force: bool = False) -> None:
        """``fsync``, unless the file is one that cannot be (a pipe, a device)."""
        if not self._syncable:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):
                if force:
                    return  # at close the lines are with the system already: nothing left to count
                raise
            self._syncable = False

    def _fail(self, what: str, fix: str, strerror: str, batch: tuple[list[str], int, int]) -> None:
        """Stop writing for good: the batch in hand and the backlog are counted lost and freed."""
        lines, spans, _ = batch
        with self._lock:
            self._failure = (what, fix, strerror)
            self.requests_lost += len(lines) + len(self._backlog)
            self.spans_lost += spans + sum(count for _, count in self._backlog)
            self._backlog.clear()
            self._backlog_bytes = 0
            self._lock.notify_all()
            message = self.error
        if self.on_error is not None:
            self.on_error(message)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _file_size_limit_is_an_error() -> None:
    """Past ``ulimit -f`` the kernel sends SIGXFSZ, which by default kills the process and everything it
    held; ignored, the write fails with EFBIG instead and is reported like a full disk. (Python ignores
    it at start-up already, unless embedded or run without its signal handlers.)"""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
