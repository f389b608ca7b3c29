"""``--save FILE``: every accepted trace request appended to a file as OTLP/JSON lines."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import TextIO

from tui.receiver.decode import ExportTraceServiceRequest, to_otlp_json
from tui.receiver.files import UnreadableFile, write_line


class RequestRecorder:
    """``--save FILE``: every accepted trace request appended as one OTLP/JSON line, as it arrives.

    Converting to JSON and writing happen on a thread of their own, so the receivers never wait for
    the disk; each line is flushed as written, and :meth:`close` drains what is queued, so nothing
    accepted is lost by quitting.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: TextIO = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise UnreadableFile(f"--save {path}: {exc.strerror or exc}") from None
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread = threading.Thread(target=self._write, name="ollama-tui --save", daemon=True)
        self._thread.start()
        self.requests_written = 0

    def record(self, body: bytes, _spans: int) -> None:
        """An ingest listener: ``body`` is the serialised request."""
        self._queue.put(body)

    def _write(self) -> None:
        while (body := self._queue.get()) is not None:
            write_line(self._file, to_otlp_json(ExportTraceServiceRequest.FromString(body)))
            self._file.flush()
            self.requests_written += 1

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._file.close()
