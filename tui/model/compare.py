"""Two model calls side by side, and the spread of N runs of one input (issue 17: the compare view's model).

:func:`comparison` reads each span through :meth:`GenAIView.from_span` (every convention it knows) into a
:class:`Side`, diffs the two completions word by word and says what makes the answers differ besides chance:
another model, a remote model against the local Ollama, a replay. It is pure (no Textual): the compare screen
draws it, and tests and the bench build it without a terminal.

The word diff is :class:`difflib.SequenceMatcher` over lines, then over the sentences and the words of those
that changed, each piece with the whitespace around it but compared without it (a word that moved to the
next line is the same word), so each side's text is rebuilt exactly from its pieces. SequenceMatcher is
quadratic at worst, so its work is counted beforehand and bounded: where the budget runs out (one word
repeated 20,000 times) only the common beginning and end of the changed part are marked, and a note says so.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from tui.model.conventions import ERROR_TYPE, REPLAY_OF
from tui.model.genai import AGENT, CHAIN, TOOL_EXECUTION, GenAIView, ToolCall
from tui.model.hosting import runs_locally, runs_remotely
from tui.model.request import recorded_options
from tui.model.span import Event, Span

# --- how much the word diff may cost --------------------------------------------------------------------

#: Lines, sentences or words per side compared by SequenceMatcher in one go.
MAX_PIECES = 20_000
#: Pairs of equal pieces across the sides SequenceMatcher may examine, for the whole comparison: its work
#: grows with them (about 1 µs each here: half a second at most; one word said 20,000 times is 400 M pairs).
MAX_PAIRS = 500_000

# --- the diff ------------------------------------------------------------------------------------------

EQUAL = "equal"
DELETE = "delete"
INSERT = "insert"
REPLACE = "replace"
#: Text beyond the limits above: shown as is, neither marked equal nor changed.
UNCOMPARED = "uncompared"

#: A word with the whitespace after it (the first also with any before it; text of whitespace alone is one piece).
_WORD = re.compile(r"^\s*\S+\s*|\S+\s*|^\s+$")
#: A line with the blank lines after it (blank lines alone would be the most repeated "line" of all).
_LINE = re.compile(r"[^\n]*\n+|[^\n]+")
#: A sentence: up to its closing punctuation and the whitespace after it (a false end, "e.g.", only splits finer).
_SENTENCE = re.compile(r"[^.!?]*[.!?]+\s*|[^.!?]+")
#: The pieces the diff goes through, coarsest first.
_LEVELS = (_LINE, _SENTENCE, _WORD)


@dataclass(frozen=True, slots=True)
class WordOp:
    """One run of the diff: ``left`` and ``right`` are the pieces of each text it covers (``left`` is empty
    for an insertion, ``right`` for a deletion); joined in order they rebuild each text exactly."""

    kind: str
    left: str
    right: str

    def swapped(self) -> WordOp:
        kind = {DELETE: INSERT, INSERT: DELETE}.get(self.kind, self.kind)
        return WordOp(kind, self.right, self.left)


@dataclass(frozen=True)
class Side:
    """What one column of the compare view shows of one model call."""

    label: str
    span_id: str
    service: str
    request_model: str
    response_model: str
    provider: str
    #: Ran on a hosted service (by its provider, or by its model's name when no provider says otherwise).
    remote: bool
    #: Ran on the local Ollama (provider ``ollama``, or the chat pane's own span).
    local: bool
    #: The sampling parameters it recorded, as Ollama ``options``.
    options: Mapping[str, Any]
    #: The output messages' text, joined (tool calls are in :attr:`tool_calls`).
    completion: str
    #: Each tool call it made, ``name(arguments)``; ids left out (they differ on every run).
    tool_calls: tuple[str, ...]
    input_tokens: int | None
    output_tokens: int | None
    duration_s: float
    time_to_first_token_s: float | None
    tokens_per_second: float | None
    finish_reasons: tuple[str, ...]
    is_error: bool
    #: Why it failed (status message or ``error.type``); "" when it did not.
    status: str
    #: Span ids of the calls it replays (``ollama_tui.replay_of`` and its span links).
    replay_of: tuple[str, ...]

    @property
    def model(self) -> str:
        return self.response_model or self.request_model

    @classmethod
    def from_span(cls, span: Span, log_events: Sequence[Event] = ()) -> Side | str:
        """The side of a model-call span (with the log records naming it, as events), or why there is none
        ("is a chain step, not a model call")."""
        events = tuple(log_events)
        view = GenAIView.from_span(span, events)
        if view is None:
            return "carries no LLM data"
        if not view.is_model_call:
            return f"is {_KIND_NAMES.get(view.kind, 'another kind of span')}, not a model call"
        provider = view.provider
        local, remote = runs_locally(span, view), runs_remotely(span, view)
        error_type = span.attributes.get(ERROR_TYPE)
        is_error = span.is_error or bool(error_type)
        replayed = span.attributes.get(REPLAY_OF)
        return cls(
            label=span.name,
            span_id=span.span_id,
            service=span.service_name,
            request_model=view.request_model,
            response_model=view.response_model,
            provider=provider,
            remote=remote,
            local=local,
            options=recorded_options(span, events),
            completion="\n".join(m.content for m in view.output if m.content),
            tool_calls=tuple(_call_text(call) for m in view.output for call in m.tool_calls),
            input_tokens=view.input_tokens,
            output_tokens=view.output_tokens,
            duration_s=view.duration_s,
            time_to_first_token_s=view.time_to_first_token_s,
            tokens_per_second=view.tokens_per_second,
            finish_reasons=tuple(view.finish_reasons),
            is_error=is_error,
            status=(span.status_message or str(error_type or "") or "error") if is_error else "",
            replay_of=tuple(dict.fromkeys(
                [*([replayed] if isinstance(replayed, str) and replayed else []),
                 *(link.span_id for link in span.links)])),
        )


_KIND_NAMES = {AGENT: "an agent run", CHAIN: "a chain step", TOOL_EXECUTION: "a tool execution"}


def _call_text(call: ToolCall) -> str:
    """A tool call as ``name(arguments)``, its JSON arguments in one spacing so that two conventions
    recording the same call read the same."""
    try:
        arguments = json.dumps(json.loads(call.arguments), ensure_ascii=False)
    except ValueError:
        arguments = call.arguments
    return ToolCall(call.name, arguments).describe()


@dataclass(frozen=True)
class Comparison:
    left: Side
    right: Side
    diff: tuple[WordOp, ...]
    notes: tuple[str, ...]
    #: How the diff was bounded ("" when the completions were compared word by word in full); also a note.
    diff_note: str = ""

    def swapped(self) -> Comparison:
        """The same comparison with the sides exchanged (the diff inverted, not recomputed)."""
        diff = tuple(op.swapped() for op in self.diff)
        return Comparison(self.right, self.left, diff, _notes(self.right, self.left, self.diff_note), self.diff_note)

    @property
    def same_completion(self) -> bool:
        return all(op.kind == EQUAL for op in self.diff)

    @property
    def names(self) -> tuple[str, str]:
        """What to call the sides: original and replay when one replays the other, else left and right."""
        return _names(self.left, self.right)


def comparison(left: Span, right: Span, left_events: Sequence[Event] = (),
               right_events: Sequence[Event] = ()) -> Comparison | str:
    """The two model calls compared, or one sentence saying why they cannot be."""
    if left.span_id == right.span_id and left.trace_id == right.trace_id:
        return "both sides are the same span: mark another LLM span to compare it with"
    sides = []
    for name, span, events in (("left", left, left_events), ("right", right, right_events)):
        side = Side.from_span(span, events)
        if isinstance(side, str):
            return f"the {name} span {side}: compare two LLM spans"
        sides.append(side)
    a, b = sides
    diff, diff_note = word_diff(a.completion, b.completion)
    return Comparison(a, b, diff, _notes(a, b, diff_note), diff_note)


# --- notes ---------------------------------------------------------------------------------------------

def _notes(left: Side, right: Side, diff_note: str) -> tuple[str, ...]:
    notes = []
    names = _names(left, right)
    if left.span_id in right.replay_of:
        notes.append("the right is a replay of the left")
    elif right.span_id in left.replay_of:
        notes.append("the left is a replay of the right")
    if left.remote != right.remote:
        notes.append(f"the {names[0]} ran on {_where(left)}; the {names[1]} ran on {_where(right)}: "
                     "answers differ by model as well as by chance")
    if _same_model(left.model, right.model):
        notes.append(f"same model ({left.model})" if left.model else "no model recorded on either side")
    else:
        notes.append(f"different models: {left.model or '–'} and {right.model or '–'}")
    for name, side in zip(names, (left, right), strict=True):
        if side.is_error:
            notes.append(f"the {name} call failed: {side.status}")
        if not side.completion and not side.tool_calls:
            notes.append(f"the {name} span recorded no completion (its instrumentation may not capture content)")
    if diff_note:
        notes.append(diff_note)
    return tuple(notes)


def _names(left: Side, right: Side) -> tuple[str, str]:
    if left.span_id in right.replay_of:
        return "original", "replay"
    if right.span_id in left.replay_of:
        return "replay", "original"
    return "left", "right"


def _where(side: Side) -> str:
    model = side.model or "an unnamed model"
    if side.local:
        return f"{model} on the local Ollama"
    return f"{model} ({side.provider})" if side.provider else model


def _same_model(a: str, b: str) -> bool:
    """Ollama names the default tag or not (``llama3.2`` is ``llama3.2:latest``)."""
    return a.removesuffix(":latest").lower() == b.removesuffix(":latest").lower()


# --- the word diff -------------------------------------------------------------------------------------

def word_diff(left: str, right: str) -> tuple[tuple[WordOp, ...], str]:
    """The diff of two texts and, when it had to be bounded, a note saying how.

    Lines first, then the sentences of each run of changed lines, then the words of each run of changed
    sentences: unchanged lines and sentences anchor the diff and split the word-by-word work into small
    pieces. A level with too many pieces for the budget is skipped; a run of words too long or too repetitive
    for it has only its common beginning and end marked."""
    ops, bounded = _refined(left, right, 0, _Budget(MAX_PAIRS))
    return _merged(ops), (BOUNDED_NOTE if bounded else "")


def _refined(left: str, right: str, level: int, budget: _Budget) -> tuple[list[WordOp], bool]:
    """The diff of two texts at ``_LEVELS[level]`` and finer, and whether any of it had to be bounded."""
    a, b = _LEVELS[level].findall(left), _LEVELS[level].findall(right)
    ops = budget.diff(a, b)
    finest = level == len(_LEVELS) - 1
    if ops is None:
        return _refined(left, right, level + 1, budget) if not finest else (_ends_only(a, b), True)
    if finest:
        return ops, False
    out: list[WordOp] = []
    bounded = False
    for op in ops:
        if op.kind == REPLACE:
            finer, cut = _refined(op.left, op.right, level + 1, budget)
            out.extend(finer)
            bounded = bounded or cut
        else:
            out.append(op)
    return out, bounded


#: The note of a comparison whose diff had to be bounded.
BOUNDED_NOTE = ("completions too long or too repetitive to compare word by word in full: where they differ, "
                "only the common beginning and end are marked, the rest is not compared")


class _Budget:
    """What SequenceMatcher may still spend, in pairs of equal pieces across the two sides."""

    def __init__(self, pairs: int) -> None:
        self.pairs = pairs

    def diff(self, a: list[str], b: list[str]) -> list[WordOp] | None:
        """SequenceMatcher's opcodes over pieces compared without their whitespace, between their common
        beginning and end; None when the pieces are too many or would cost more than is left."""
        start, a_end, b_end = _common_ends(a, b)
        a_keys = [piece.strip() for piece in a[start:a_end]]
        b_keys = [piece.strip() for piece in b[start:b_end]]
        if len(a_keys) > MAX_PIECES or len(b_keys) > MAX_PIECES:
            return None
        counts = Counter(b_keys)
        cost = sum(counts[key] for key in a_keys)
        if cost > self.pairs:
            return None
        self.pairs -= cost
        ops = [WordOp(EQUAL, "".join(a[:start]), "".join(b[:start]))]
        matcher = SequenceMatcher(None, a_keys, b_keys, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            ops.append(WordOp(tag, "".join(a[start + i1:start + i2]), "".join(b[start + j1:start + j2])))
        ops.append(WordOp(EQUAL, "".join(a[a_end:]), "".join(b[b_end:])))
        return ops


def _common_ends(a: list[str], b: list[str]) -> tuple[int, int, int]:
    """Length of the common beginning, and where the common end starts in each (pieces compared as keys)."""
    start = 0
    shortest = min(len(a), len(b))
    while start < shortest and a[start].strip() == b[start].strip():
        start += 1
    a_end, b_end = len(a), len(b)
    while a_end > start and b_end > start and a[a_end - 1].strip() == b[b_end - 1].strip():
        a_end -= 1
        b_end -= 1
    return start, a_end, b_end


def _ends_only(a: list[str], b: list[str]) -> list[WordOp]:
    start, a_end, b_end = _common_ends(a, b)
    return [WordOp(EQUAL, "".join(a[:start]), "".join(b[:start])),
            WordOp(UNCOMPARED, "".join(a[start:a_end]), "".join(b[start:b_end])),
            WordOp(EQUAL, "".join(a[a_end:]), "".join(b[b_end:]))]


def _merged(ops: list[WordOp]) -> tuple[WordOp, ...]:
    """Empty runs dropped and neighbours of one kind joined."""
    out: list[WordOp] = []
    for op in ops:
        if not op.left and not op.right:
            continue
        if out and out[-1].kind == op.kind:
            out[-1] = WordOp(op.kind, out[-1].left + op.left, out[-1].right + op.right)
        else:
            out.append(op)
    return tuple(out)


# --- the spread of N runs ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One run of an input: what it answered, how many tokens (None when not reported), how long it took."""

    completion: str
    output_tokens: int | None
    seconds: float


@dataclass(frozen=True)
class Spread:
    runs: int
    #: Distinct completions, compared without leading and trailing whitespace.
    distinct: int
    #: Output tokens (min, median, max) over the runs that reported a count; None when none did.
    output_tokens: tuple[int, float, int] | None
    #: How many runs reported an output token count.
    counted: int
    #: Seconds (min, median, max); None without runs.
    latency: tuple[float, float, float] | None


def spread(runs: Sequence[Run]) -> Spread:
    """How far N runs of the same input spread: in what they answered, in tokens and in time."""
    tokens = [run.output_tokens for run in runs if run.output_tokens is not None]
    seconds = [run.seconds for run in runs]
    return Spread(
        runs=len(runs),
        distinct=len({run.completion.strip() for run in runs}),
        output_tokens=(min(tokens), statistics.median(tokens), max(tokens)) if tokens else None,
        counted=len(tokens),
        latency=(min(seconds), statistics.median(seconds), max(seconds)) if seconds else None,
    )


def describe_spread(s: Spread) -> str:
    """One line, e.g. ``5 runs · 3 distinct completions · output tokens 10 / 12 / 20 (min / median / max) ·
    latency 0.81 / 1.02 / 1.50 s``."""
    if not s.runs:
        return "no runs"
    parts = [f"{s.runs} run{'s' if s.runs != 1 else ''}",
             f"{s.distinct} distinct completion{'s' if s.distinct != 1 else ''}"]
    if s.output_tokens is None:
        parts.append("output tokens not reported")
    else:
        low, middle, high = s.output_tokens
        of = f" of {s.counted} runs" if s.counted < s.runs else ""
        parts.append(f"output tokens {low} / {middle:g} / {high} (min / median / max{of})")
    if s.latency is not None:
        parts.append("latency {:.2f} / {:.2f} / {:.2f} s".format(*s.latency))
    return " · ".join(parts)


__all__ = ["DELETE", "EQUAL", "INSERT", "REPLACE", "UNCOMPARED", "Comparison", "Run", "Side", "Spread", "WordOp",
           "comparison", "describe_spread", "spread", "word_diff"]
