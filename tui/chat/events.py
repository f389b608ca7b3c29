"""What a chat turn reports, as plain data: importable without the ``ollama`` stack.

The pane imports only these at start-up; the client (``ollama``, httpx, the OpenTelemetry SDK) is
imported once the first frame is on screen, which keeps start-up under half a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TurnStarted:
    """First event of every turn: the id of the trace it is recorded in."""

    trace_id: str


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of the answer, as it streams."""

    text: str


@dataclass(frozen=True, slots=True)
class TurnStats:
    """What the final chunk said, plus what we measured; shown under the turn when it finishes."""

    trace_id: str
    model: str
    done_reason: str
    input_tokens: int | None
    output_tokens: int | None
    time_to_first_token_s: float | None
    tokens_per_second: float | None
    timings_ns: dict[str, int] = field(default_factory=dict)
    #: Wall time from sending the request to the last chunk, as the user waited it: the spread of N runs.
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class TurnFinished:
    """The whole answer: its text, and the tool calls the model asked for instead of (or besides) text, as
    readable ``get_weather({"city": "Paris"})`` strings (the span's output messages hold them structured)."""

    content: str
    stats: TurnStats
    tool_calls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnFailed:
    """The turn ended without an answer; ``message`` is for the user, ``error_type`` for the span."""

    message: str
    error_type: str
    trace_id: str
    partial: str = ""


TurnEvent = TurnStarted | Delta | TurnFinished | TurnFailed
