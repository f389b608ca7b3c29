"""The filter bar's query language: parsed once per keystroke into a tree, compiled into one test of a span.

Terms combine with AND (a space) and ``OR`` (looser: ``a b OR c`` is ``(a b) OR c``); ``-term`` excludes.
Matching is per span: a trace matches when one of its spans passes the whole query, and its passing
spans are the ones marked when it is expanded.

==========================  =====================================================================
``text``, ``"two words"``   case-insensitive text in the span's name, attribute keys and values,
                            event and prompt text, service; a resource attribute key, whole; a trace
                            id (32 hex digits), a span id (16), or the first 8+ digits of one
``service:NAME``            the span's service, whole, any case; ``*`` matches any run of characters
``name:TEXT``               text in the span's name, any case (``*`` inside)
``model:NAME``              a request or response model, whole, any case, ``*`` glob; a name without a
                            ``:tag`` also matches its tags (``llama3.2`` finds ``llama3.2:latest``)
``status:error|ok|unset``   the span's status
``kind:server|client|…``    the span's kind (``internal``, ``producer``, ``consumer``, ``unspecified``)
``dur>500ms``, ``dur<2s``   the span's duration (``>``, ``>=``, ``<``, ``<=``; ns us ms s m h)
``tokens>1000``             the span's total tokens (input + output, or its total attribute); ``1k``
``in_tokens>``, ``out_…``   its input / output tokens
``ttft>1s``                 its time to first token (attribute, else a first-token event)
``key=value``               an attribute (span, event, link, resource, nested in a map) with exactly
                            that value as the detail pane shows it; case counts
``key~text``                an attribute with that key whose value contains the text, any case
``has:key``                 the span (or its resource) has the attribute
``-term``                   not that term
``a OR b``                  either
==========================  =====================================================================

:func:`parse` never raises: a malformed query is a :class:`QueryError` with the position it starts at
and one sentence. Pure Python; received spans are tested on their serialised bytes wherever that is
enough (``key=value``, ``has:``, token counts, models), so a filter decodes no span it can avoid.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from tui.model.conventions import (
    FIRST_TOKEN_EVENTS,
    INPUT_TOKENS_KEYS,
    OUTPUT_TOKENS_KEYS,
    SUMMARY_MODEL_KEYS,
    TOTAL_TOKENS_KEYS,
    TTFT_KEYS,
)
from tui.model.span import AttrValue, Resource, Span, SpanKind, StatusCode
from tui.model.text import format_value

if TYPE_CHECKING:
    from tui.model.store import Trace

#: Hex digits from which a text term is also taken as the start of a trace or span id. Shorter runs are
#: words ("cafe", "added", "facade"); eight is what a log line or a screen usually shows of an id, and
#: with eight digits a random id matches by chance once in four billion.
MIN_ID_PREFIX = 8

SpanTest = Callable[[Span], bool]
TraceTest = Callable[["Trace"], bool]

# --- the tree ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """One term. ``field``: ``text``, ``trace id``, ``span id``, ``service``, ``name``, ``model``,
    ``status``, ``kind``, ``has``, ``pair`` (``key=value``), ``contains`` (``key~text``), or a number
    field (``dur``, ``tokens``, ``in_tokens``, ``out_tokens``, ``ttft``) with ``op`` and ``number``."""

    field: str
    value: str
    key: str = ""
    op: str = ""
    #: The number compared with (durations in nanoseconds).
    number: float = 0.0
    #: Where the term starts in the text as typed.
    position: int = 0


@dataclass(frozen=True, slots=True)
class Not:
    term: Term


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Term | Not, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[And, ...]


Node = Union[Term, Not, And, Or]  # noqa: UP007 (a runtime alias)


@dataclass(frozen=True, slots=True)
class QueryError:
    """Why a query does not parse: where (0-based, in the text as typed) and one sentence."""

    position: int
    message: str

    def __str__(self) -> str:
        return f"column {self.position + 1}: {self.message}"


# --- parsing ----------------------------------------------------------------------------------------

_COLON_FIELDS = ("service", "name", "model", "status", "kind", "has")
_NUMBER_FIELDS = ("dur", "tokens", "in_tokens", "out_tokens", "ttft")
_DURATION_FIELDS = ("dur", "ttft")
_STATUSES = {"error": StatusCode.ERROR, "ok": StatusCode.OK, "unset": StatusCode.UNSET}
_KINDS = {kind.name.lower(): kind for kind in SpanKind}
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "h": 3_600_000_000_000}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ns|us|µs|ms|s|m|h)?", re.IGNORECASE)
_COUNT = re.compile(r"([0-9][0-9_]*(?:\.[0-9]*)?)\s*([km])?", re.IGNORECASE)
_HEX = re.compile(r"[0-9a-f]+")
#: A field name: what comes before an operator in an unquoted word.
_OPERATOR = re.compile(r"(>=|<=|[:=~<>])")


@dataclass(slots=True)
class _Word:
    """A word as typed: its text with quotes removed, where it starts, and which characters were quoted."""

    text: str
    position: int
    #: Per character of ``text``: whether it came from inside quotes.
    quoted: list[bool] = field(default_factory=list)
    #: The word had quotes (``""`` has no characters but is still a quoted word).
    had_quotes: bool = False

    def unquoted_find(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The first match of ``pattern`` that lies wholly outside quotes."""
        for match in pattern.finditer(self.text):
            if not any(self.quoted[match.start():match.end()]):
                return match
        return None

    def is_or(self) -> bool:
        return self.text == "OR" and not self.had_quotes

    def tail(self, start: int, shift: int = 0) -> _Word:
        return _Word(self.text[start:], self.position + shift, self.quoted[start:], any(self.quoted[start:]))


def _words(typed: str) -> list[_Word] | QueryError:
    """Split at spaces outside quotes; ``"`` quotes (``\\"`` and ``\\\\`` inside), and may start mid-word."""
    words: list[_Word] = []
    i, n = 0, len(typed)
    while i < n:
        if typed[i].isspace():
            i += 1
            continue
        word = _Word("", i)
        chars: list[str] = []
        while i < n and not typed[i].isspace():
            if typed[i] != '"':
                chars.append(typed[i])
                word.quoted.append(False)
                i += 1
                continue
            opened = i
            word.had_quotes = True
            i += 1
            while True:
                if i >= n:
                    return QueryError(opened, "this quote is not closed")
                c = typed[i]
                i += 1
                if c == '"':
                    break
                if c == "\\" and i < n and typed[i] in '"\\':
                    c = typed[i]
                    i += 1
                chars.append(c)
                word.quoted.append(True)
        word.text = "".join(chars)
        words.append(word)
    return _joined(words)


def _joined(words: list[_Word]) -> list[_Word]:
    """``key = value``, ``key= value``, ``service: x``, ``dur > 2s``: spaces around an operator, as people
    type them, join the words back into one term."""
    out: list[_Word] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        while i < len(words) and not word.is_or() and not words[i].is_or() and _join(word, words[i]):
            following = words[i]
            word = _Word(word.text + following.text, word.position, word.quoted + following.quoted,
                         word.had_quotes or following.had_quotes)
            i += 1
        out.append(word)
    return out


def _join(word: _Word, following: _Word) -> bool:
    text = word.text
    if text and not word.quoted[-1]:
        last, name = text[-1], text.rstrip("<>=~:").lstrip("-").lower()
        if (last in "=~" and len(text) > 1) or (last in "<>" and name in _NUMBER_FIELDS) or \
                (last == ":" and name in _COLON_FIELDS):
            return True
    head = following.text
    if head and not following.quoted[0] and text:
        return head[0] in "=~" or (head[0] in "<>" and text.lstrip("-").lower() in _NUMBER_FIELDS)
    return False


def parse(typed: str) -> Query | QueryError:
    """The query ``typed`` asks for, or why it cannot be read. Never raises."""
    try:
        return _parse(typed)
    except (ValueError, OverflowError, IndexError, re.error) as exc:  # a bug, not the user's: still an answer
        return QueryError(0, f"this query cannot be read ({exc})")


def _parse(typed: str) -> Query | QueryError:
    words = _words(typed)
    if isinstance(words, QueryError):
        return words
    groups: list[list[Term | Not]] = [[]]
    last_or: _Word | None = None
    for word in words:
        if word.is_or():
            if not groups[-1]:
                return QueryError(word.position, "OR needs a term before it")
            groups.append([])
            last_or = word
            continue
        item = _item(word)
        if isinstance(item, QueryError):
            return item
        if item is not None:
            groups[-1].append(item)
    if last_or is not None and not groups[-1]:
        return QueryError(last_or.position, "OR needs a term after it")
    ands = tuple(And(tuple(group)) for group in groups if group)
    root: Node | None
    if not ands:
        root = None
    elif len(ands) == 1:
        root = ands[0].items[0] if len(ands[0].items) == 1 else ands[0]
    else:
        root = Or(ands)
    return Query(typed.strip(), root)


def _item(word: _Word) -> Term | Not | QueryError | None:
    if word.text[:1] == "-" and not word.quoted[0]:
        if len(word.text) == 1 and not word.had_quotes:
            return QueryError(word.position, "'-' excludes the term written right after it, with no space")
        term = _term(word.tail(1, 1))
        return Not(term) if isinstance(term, Term) else term
    return _term(word)


def _term(word: _Word) -> Term | QueryError | None:
    text, at = word.text, word.position
    if not text:
        return None  # "": no condition
    match = word.unquoted_find(_OPERATOR)
    if match is None or match.start() == 0:
        return _text_term(text, at)
    name, op, value = text[:match.start()], match.group(1), text[match.end():]
    lowered = name.lower()
    if op == ":" and lowered in _COLON_FIELDS:
        return _colon_term(lowered, value, at)
    if op in ("<", ">", "<=", ">="):
        if lowered not in _NUMBER_FIELDS:
            return QueryError(at, f"'{name}' cannot be compared: < and > go with dur, tokens, in_tokens, "
                                  "out_tokens or ttft (quote text that has them)")
        return _number_term(lowered, op, value, at)
    if op == ":":  # not a field (a URL, "note: ..."): a pair further on, else text
        rest = word.tail(match.end()).unquoted_find(_PAIR_OPERATOR)
        if rest is None:
            return _text_term(text, at)
        split = match.end() + rest.start()
        name, op, value, lowered = text[:split], rest.group(0), text[split + 1:], ""
    if op == "=" and lowered in _NUMBER_FIELDS:
        return _number_term(lowered, op, value, at)
    return Term("pair" if op == "=" else "contains", value, key=name, op=op, position=at)


_PAIR_OPERATOR = re.compile("[=~]")


def _text_term(text: str, at: int) -> Term:
    lowered = text.lower()
    hex_digits = _HEX.fullmatch(lowered) is not None
    if hex_digits and len(lowered) == 32:
        return Term("trace id", lowered, position=at)
    if hex_digits and len(lowered) == 16:
        return Term("span id", lowered, position=at)
    return Term("text", text, position=at)


def _colon_term(name: str, value: str, at: int) -> Term | QueryError:
    if not value:
        return QueryError(at, f"{name}: needs a value, e.g. {_EXAMPLES[name]}")
    if name == "status" and value.lower() not in _STATUSES:
        return QueryError(at, "status: is error, ok or unset")
    if name == "kind" and value.lower() not in _KINDS:
        return QueryError(at, "kind: is server, client, internal, producer, consumer or unspecified")
    return Term(name, value, position=at)


_EXAMPLES = {"service": "service:checkout", "name": "name:chat", "model": "model:llama3.2",
             "status": "status:error", "kind": "kind:client", "has": "has:gen_ai.usage.input_tokens"}


def _number_term(name: str, op: str, value: str, at: int) -> Term | QueryError:
    value = value.strip()
    if not value:
        example = "500ms" if name in _DURATION_FIELDS else "1000"
        return QueryError(at, f"{name}{op} needs a number, e.g. {name}{op}{example}")
    if name in _DURATION_FIELDS:
        match = _DURATION.fullmatch(value)
        if match is None:
            return QueryError(at, f"'{value}' is not a duration: a number and a unit (ns, us, ms, s, m, h), "
                                  "e.g. 500ms or 1.5s")
        if match.group(2) is None:
            return QueryError(at, f"'{value}' needs a unit: ns, us, ms, s, m or h (e.g. {value}ms)")
        number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    else:
        match = _COUNT.fullmatch(value)
        if match is None:
            return QueryError(at, f"'{value}' is not a number of tokens (e.g. 1000, 1.5k)")
        number = float(match.group(1).replace("_", "")) * {None: 1, "k": 1_000, "m": 1_000_000}[
            match.group(2) and match.group(2).lower()]
    return Term(name, value, op=op, number=number, position=at)


# --- the query --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: the tree, and what the list's scan needs of it."""

    #: As typed, spaces at either end stripped.
    typed: str
    #: None for the empty query (everything matches).
    root: Node | None

    @classmethod
    def empty(cls) -> Query:
        return cls("", None)

    def __bool__(self) -> bool:
        return self.root is not None

    @property
    def lookup(self) -> Term | None:
        """A lone trace id or span id term: decided by a dict lookup, not a scan."""
        root = self.root
        if isinstance(root, Term) and root.field in ("trace id", "span id"):
            return root
        return None

    def conjuncts(self) -> tuple[Term | Not, ...] | None:
        """The terms when the query is one AND of them (no OR), else None."""
        root = self.root
        if root is None:
            return ()
        if isinstance(root, (Term, Not)):
            return (root,)
        if isinstance(root, And):
            return root.items
        return None

    def span_test(self) -> SpanTest | None:
        """The query as one test of a span (None: the empty query), compiled now: call once per query."""
        return None if self.root is None else _compile(self.root)[0]

    def trace_test(self) -> TraceTest | None:
        """The query as one test of a trace (one of its spans passes :meth:`span_test`), compiled now. A
        lone text term, the commonest filter, is one loop over the spans with nothing called per span."""
        root = self.root
        if root is None:
            return None
        if isinstance(root, Term) and root.field == "text":
            return _text_trace_test(root.value)
        if isinstance(root, Term) and root.field == "pair":
            return _pair_trace_test(root.key, root.value)
        test = _compile(root)[0]
        return lambda trace: any(map(test, trace.spans.values()))

    def narrows(self, old: Query, resource_keys: set[str] | None) -> bool:
        """Whether every span this query matches is sure to match ``old`` too, so that only old's matches
        need a look (the next keystroke of a word, one more term). ``resource_keys``: the lower-cased
        resource keys the store has seen, ``None`` if it stopped counting."""
        if old.root is None or self.typed == old.typed:
            return True
        new_terms, old_terms = self.conjuncts(), old.conjuncts()
        if new_terms is None or old_terms is None:
            return False
        return all(any(_implies(a, b, resource_keys) for a in new_terms) for b in old_terms)


def _implies(a: Term | Not, b: Term | Not, resource_keys: set[str] | None) -> bool:
    """Whether a span passing ``a`` surely passes ``b``."""
    if a == b or (isinstance(a, Term) and isinstance(b, Term) and _same(a, b)):
        return True
    if not isinstance(a, Term) or not isinstance(b, Term):
        return False
    if a.field == b.field == "text":
        ta, tb = a.value.lower(), b.value.lower()
        if ta.isascii() != tb.isascii():
            return False  # one is searched in bytes, the other in case-folded text
        if resource_keys is None or ta in resource_keys:
            return False  # a whole resource key: a longer text is not a narrower one
        if _id_prefix(ta):
            return bool(_id_prefix(tb)) and ta.startswith(tb)
        return tb in ta
    if a.field == b.field == "name" and "*" not in a.value and "*" not in b.value:
        return b.value.lower() in a.value.lower()
    return False


def _same(a: Term, b: Term) -> bool:
    return (a.field, a.value, a.key, a.op, a.number) == (b.field, b.value, b.key, b.op, b.number)


def _id_prefix(text: str) -> str:
    """The id digits a text term also matches at the start of trace ids (and, up to 16, span ids)."""
    return text if MIN_ID_PREFIX <= len(text) < 32 and _HEX.fullmatch(text) else ""


# --- compiling: one test of a span ------------------------------------------------------------------
#
# Each term becomes a closure over what it needs, with a cost rank: an AND tries its cheapest terms
# first (a span's status or kind costs a slot read; text is a search of its bytes; token counts read
# numbers out of them), so most spans are turned down before anything costly runs.

def _compile(node: Node) -> tuple[SpanTest, int]:
    if isinstance(node, Term):
        return _compile_term(node)
    if isinstance(node, Not):
        inner, cost = _compile_term(node.term)
        return (lambda span: not inner(span)), cost
    if isinstance(node, And):
        parts = sorted((_compile(item) for item in node.items), key=lambda part: part[1])
        tests = tuple(test for test, _ in parts)
        return _all_of(tests), parts[-1][1]
    parts = sorted((_compile(item) for item in node.items), key=lambda part: part[1])
    tests = tuple(test for test, _ in parts)
    return _any_of(tests), parts[-1][1]


def _all_of(tests: tuple[SpanTest, ...]) -> SpanTest:
    """The tests in order, each tried only if the ones before passed: nested ``and`` (no generator a span)."""
    if len(tests) == 1:
        return tests[0]
    first, rest = tests[0], _all_of(tests[1:])
    return lambda span: first(span) and rest(span)


def _any_of(tests: tuple[SpanTest, ...]) -> SpanTest:
    if len(tests) == 1:
        return tests[0]
    first, rest = tests[0], _any_of(tests[1:])
    return lambda span: first(span) or rest(span)


def _compile_term(term: Term) -> tuple[SpanTest, int]:
    kind = term.field
    if kind == "trace id":
        trace_id = term.value
        return (lambda span: span.trace_id == trace_id), 0
    if kind == "span id":
        span_id = term.value
        return (lambda span: span.span_id == span_id or span.trace_id.startswith(span_id)), 0
    if kind == "status":
        code = _STATUSES[term.value.lower()]
        return (lambda span: span.status_code is code), 0
    if kind == "kind":
        span_kind = _KINDS[term.value.lower()]
        return (lambda span: span.kind is span_kind), 0
    if kind == "dur":
        compare = _comparison(term.op, term.number)
        return (lambda span: compare(span.duration_ns)), 0
    if kind == "service":
        pattern = _glob(term.value, whole=True)
        return _per_resource(lambda r: pattern(r.service_name)), 1
    if kind == "name":
        return _name_test(term.value), 1
    if kind == "pair":
        return _pair_test(term.key, term.value), 2
    if kind == "has":
        return _has_test(term.value), 2
    if kind == "text":
        return _text_test(term.value), 3
    if kind == "model":
        return _model_test(term.value), 4
    if kind == "contains":
        return _contains_test(term.key, term.value), 4
    if kind == "ttft":
        compare = _comparison(term.op, term.number / 1e9)
        return (lambda span: (t := span_ttft(span)) is not None and compare(t)), 5
    count = {"tokens": _total_tokens, "in_tokens": _input_tokens, "out_tokens": _output_tokens}[kind]
    compare = _comparison(term.op, term.number)
    return (lambda span: (n := count(span)) is not None and compare(n)), 5


def _comparison(op: str, number: float) -> Callable[[float], bool]:
    if op == ">":
        return lambda value: value > number
    if op == ">=":
        return lambda value: value >= number
    if op == "<":
        return lambda value: value < number
    if op == "<=":
        return lambda value: value <= number
    return lambda value: value == number


def _glob(pattern: str, *, whole: bool) -> Callable[[str], bool]:
    """Case-insensitive match of ``pattern`` (``*``: any run of characters), whole or anywhere."""
    if "*" not in pattern:
        folded = pattern.casefold()
        if whole:
            return lambda text: text.casefold() == folded
        return lambda text: folded in text.casefold()
    regex = re.compile(".*".join(map(re.escape, pattern.split("*"))), re.IGNORECASE | re.DOTALL)
    find = regex.fullmatch if whole else regex.search
    return lambda text: find(text) is not None


#: Resources whose verdict is remembered (they are few: one per export batch and process).
_RESOURCE_MEMO = 4096


def _per_resource(decide: Callable[[Resource], bool]) -> SpanTest:
    """``decide`` on the span's resource, remembered per resource: spans share their resource (one per
    export batch and process), so a scan decides each once. The resource is held with its verdict so that
    its id cannot be reused while remembered."""
    memo: dict[int, tuple[Resource, bool]] = {}
    last: Resource | None = None
    verdict = False

    def test(span: Span) -> bool:
        nonlocal last, verdict
        resource = span.resource
        if resource is last:  # the usual case: the spans of a trace share one
            return verdict
        known = memo.get(id(resource))
        if known is None:
            if len(memo) >= _RESOURCE_MEMO:
                memo.clear()
            known = memo[id(resource)] = (resource, decide(resource))
        last, verdict = resource, known[1]
        return verdict

    return test


def _text_trace_test(text: str) -> TraceTest:
    """:func:`_text_test` over a trace's spans, inlined (what the filter cost before queries existed): the
    bytes searched in the loop itself, the trace id's start once, the resource only when it changes."""
    lowered = text.lower()
    unicode = None if lowered.isascii() else lowered.casefold()
    needle = lowered.encode()
    id_prefix = _id_prefix(lowered)
    span_prefix = id_prefix if len(id_prefix) <= 16 else ""
    resource_has = _resource_has_text(lowered, unicode)
    memo: dict[int, tuple[Resource, bool]] = {}

    def resource_matches(resource: Resource) -> bool:
        known = memo.get(id(resource))
        if known is None:
            if len(memo) >= _RESOURCE_MEMO:
                memo.clear()
            known = memo[id(resource)] = (resource, resource_has(resource))
        return known[1]

    def test(trace: Trace) -> bool:
        spans = trace.spans
        if id_prefix and spans and trace.trace_id.startswith(id_prefix):
            return True
        last = None
        for span in spans.values():
            if (needle in span.search_bytes) if unicode is None else (unicode in span.search_text):
                return True
            if span_prefix and span.span_id.startswith(span_prefix):
                return True
            if span.resource is not last:
                last = span.resource
                if resource_matches(last):
                    return True
        return False

    return test


def _resource_has_text(lowered: str, unicode: str | None) -> Callable[[Resource], bool]:
    """A text term against a resource: in its service name, or one of its keys whole."""

    def resource_has(resource: Resource) -> bool:
        service = resource.service_name
        if (lowered in service.lower()) if unicode is None else (unicode in service.casefold()):
            return True
        return any(key.lower() == lowered for key in resource.attributes)

    return resource_has


def _text_test(text: str) -> SpanTest:
    """Text in the span's bytes (ASCII: ``bytes.lower`` folds what such a query needs, no span decoded;
    other letters: the span's text case-folded), its service, a resource key whole, an id's start."""
    lowered = text.lower()
    unicode = None if lowered.isascii() else lowered.casefold()
    needle = lowered.encode()
    id_prefix = _id_prefix(lowered)
    span_prefix = id_prefix if len(id_prefix) <= 16 else ""

    resource_matches = _per_resource(_resource_has_text(lowered, unicode))
    if unicode is None and not id_prefix:
        return lambda span: needle in _lowered(span) or resource_matches(span)

    def test(span: Span) -> bool:
        if (needle in _lowered(span)) if unicode is None else (unicode in span.search_text):
            return True
        if id_prefix and (span.trace_id.startswith(id_prefix)
                          or (span_prefix and span.span_id.startswith(span_prefix))):
            return True
        return resource_matches(span)

    return test


def _name_test(text: str) -> SpanTest:
    if "*" not in text and text.isascii():
        lowered = text.lower()
        return lambda span: lowered in span.name.lower()
    match = _glob(text, whole=False)
    return lambda span: match(span.name)


def _model_test(pattern: str) -> SpanTest:
    """Any model key's string value, whole, any case, ``*`` glob; without a ``:tag``, its tags too."""
    glob = pattern if ":" in pattern or pattern.endswith("*") else None
    whole = _glob(pattern, whole=True)
    tagged = _glob(pattern + ":*", whole=True) if glob is None else None

    def matches(value: AttrValue) -> bool:
        return isinstance(value, str) and (whole(value) or (tagged is not None and tagged(value)))

    prefixes = tuple(key_prefix(key) for key in SUMMARY_MODEL_KEYS)
    # The longest literal part of the pattern, lower-cased: a span whose lowered bytes lack it cannot match.
    # (ASCII only: ``search_bytes`` folds ASCII letters alone.)
    longest = max(pattern.lower().split("*"), key=len)
    literal = longest.encode() if longest.isascii() else b""

    def test(span: Span) -> bool:
        payload = span.payload
        if payload is None:  # built in code: attributes at hand
            if literal and literal not in span.search_bytes:
                return False
            attributes = span.attributes
            return any(matches(attributes.get(key)) for key in SUMMARY_MODEL_KEYS)
        if (b"model\x12" not in payload and b"model_name\x12" not in payload) or \
                (literal and literal not in _lowered(span)):
            return False
        for prefix in prefixes:
            if prefix in payload:
                for value in wire_scalars(payload, prefix):
                    if matches(value):
                        return True
        return False

    return test


#: Bytes in any span with a key of ``SUMMARY_MODEL_KEYS`` (two searches instead of one a key; written out in
#: :func:`_model_test`).
assert all(key.endswith(("model", "model_name")) for key in SUMMARY_MODEL_KEYS)


def _contains_test(key: str, text: str) -> SpanTest:
    folded = text.casefold()
    prefix = key_prefix(key)

    def found(value: AttrValue) -> bool:
        return not isinstance(value, (dict, tuple)) and folded in format_value(value).casefold()

    def resource_has(resource: Resource) -> bool:
        return any(found(value) for value in _values_of(resource.attributes, key))

    resource_matches = _per_resource(resource_has)

    def test(span: Span) -> bool:
        if span.may_contain(prefix):
            if in_memory(span):
                if any(found(value) for attributes in _attribute_maps(span) for value in _values_of(attributes, key)):
                    return True
            elif any(found(value) for value in wire_scalars(raw_payload(span), prefix)):
                return True
        return resource_matches(span)

    return test


def _has_test(key: str) -> SpanTest:
    prefix = key_prefix(key)
    resource_matches = _per_resource(lambda r: any(True for _ in _values_of(r.attributes, key)))

    def test(span: Span) -> bool:
        if span.may_contain(prefix):
            if not in_memory(span):
                return True
            if any(any(True for _ in _values_of(attributes, key)) for attributes in _attribute_maps(span)):
                return True
        return resource_matches(span)

    return test


def _pair_trace_test(key: str, value: str) -> TraceTest:
    """:func:`_pair_test` over a trace's spans, inlined like :func:`_text_trace_test`."""
    prefix, patterns = pair_wire(key, value)
    single = len(patterns) == 1
    probe = patterns[0] if single else prefix
    memo: dict[int, tuple[Resource, bool]] = {}

    def resource_matches(resource: Resource) -> bool:
        known = memo.get(id(resource))
        if known is None:
            if len(memo) >= _RESOURCE_MEMO:
                memo.clear()
            known = memo[id(resource)] = (resource, has_pair(resource.attributes, key, value))
        return known[1]

    def test(trace: Trace) -> bool:
        last = None
        for span in trace.spans.values():
            payload = span.payload
            if payload is None:  # built in code: attributes at hand
                if span_has_pair(span, key, value):
                    return True
            elif probe in payload and (single or any(pattern in payload for pattern in patterns)):
                return True
            if span.resource is not last:
                last = span.resource
                if resource_matches(last):
                    return True
        return False

    return test


def _pair_test(key: str, value: str) -> SpanTest:
    prefix, patterns = pair_wire(key, value)
    # One search a span: the whole pair when its value has one encoding (most have), else the key's
    # bytes first (most spans lack the key), then each encoding.
    single = len(patterns) == 1
    probe = patterns[0] if single else prefix
    resource_matches = _per_resource(lambda r: has_pair(r.attributes, key, value))

    def test(span: Span) -> bool:
        if span.may_contain(probe):
            if in_memory(span):
                if span_has_pair(span, key, value):
                    return True
            elif single or span.may_contain(*patterns):
                return True
        return resource_matches(span)

    return test


# --- attributes, decoded or on the wire --------------------------------------------------------------

#: The last span :func:`_lowered` lowered, and its lowered bytes.
_LOWERED: list[object] = [None, b""]


def _lowered(span: Span) -> bytes:
    """:attr:`Span.search_bytes`, lowered once for the terms of a query that all search the same span in a
    row (text, then a model's name): the last span's are kept, with the span (so its id is not reused)."""
    memo = _LOWERED
    if memo[0] is span:
        return memo[1]  # type: ignore[return-value]
    lowered = span.search_bytes
    memo[0], memo[1] = span, lowered
    return lowered


def in_memory(span: Span) -> bool:
    """True for a span built in code (attributes at hand), False for a received one (serialised bytes):
    ``may_contain`` with no needles is true only when there are no bytes to rule out."""
    return span.may_contain()


def raw_payload(span: Span) -> bytes:
    """A received span's serialised bytes, as received (``search_bytes`` is lower-cased, which would
    change keys and numbers). Read here, not decoded: the reason these tests are fast."""
    return span.payload or b""


def _attribute_maps(span: Span) -> Iterator[Mapping[str, AttrValue]]:
    yield span.attributes
    for event in span.events:
        yield event.attributes
    for link in span.links:
        yield link.attributes


def _values_of(attributes: Mapping[str, AttrValue], key: str) -> Iterator[AttrValue]:
    """Every value under ``key`` in ``attributes`` or in maps nested in them."""
    maps: list[Mapping[str, AttrValue]] = [attributes]
    while maps:
        items = maps.pop()
        if key in items:
            yield items[key]
        nested: list[AttrValue] = [v for v in items.values() if isinstance(v, (dict, tuple))]
        while nested:
            item = nested.pop()
            if isinstance(item, dict):
                maps.append(item)
            elif isinstance(item, tuple):
                nested.extend(v for v in item if isinstance(v, (dict, tuple)))


def has_pair(attributes: Mapping[str, AttrValue], key: str, value: str) -> bool:
    """``key`` with a scalar value formatted as ``value`` in ``attributes`` or in maps nested in them."""
    return any(_formats_as(found, value) for found in _values_of(attributes, key))


def _formats_as(found: AttrValue, value: str) -> bool:
    if isinstance(found, str):
        return found == value
    return not isinstance(found, (dict, tuple)) and format_value(found) == value


def span_has_pair(span: Span, key: str, value: str) -> bool:
    """The decoded counterpart of the wire search, for spans built in code (tests, tools)."""
    return any(has_pair(attributes, key, value) for attributes in _attribute_maps(span))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def key_prefix(key: str) -> bytes:
    """The wire bytes every serialised ``KeyValue`` with this key starts with (key = 1, then value = 2)."""
    return _length_delimited(0x0A, key.encode()) + b"\x12"


_INT = re.compile(r"-?[0-9]+")


def pair_wire(key: str, value: str) -> tuple[bytes, tuple[bytes, ...]]:
    """The OTLP wire encoding of ``KeyValue{key, AnyValue}`` for every ``AnyValue`` that
    :func:`format_value` shows as ``value``: the string itself, and when the text reads as one, the bool,
    int, double, bytes or empty value. Protobuf writes fields in number order with minimal lengths, so a
    stored pair is exactly one of these byte strings. Returns (the key's prefix, the encodings)."""
    values = [_length_delimited(0x0A, value.encode())]  # string_value = 1
    if value in ("true", "false"):
        values.append(bytes([0x10, value == "true"]))  # bool_value = 2
    if _INT.fullmatch(value) and str(int(value)) == value and -(2**63) <= int(value) < 2**63:
        values.append(b"\x18" + _varint(int(value) & (2**64 - 1)))  # int_value = 3
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        if repr(number) == value:
            values.append(b"\x21" + struct.pack("<d", number))  # double_value = 4
    if value.startswith("0x"):
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            pass
        else:
            if "0x" + raw.hex() == value:
                values.append(_length_delimited(0x3A, raw))  # bytes_value = 7
    if value == "null":
        values.append(b"")  # an AnyValue with nothing set
    prefix = key_prefix(key)
    return prefix, tuple(prefix + _varint(len(v)) + v for v in values)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, at
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


_NO_VALUE = object()


def wire_scalars(payload: bytes, prefix: bytes) -> Iterator[AttrValue]:
    """The scalar values of every ``KeyValue`` in ``payload`` that starts with ``prefix`` (a key's, see
    :func:`key_prefix`): read straight from the bytes, the span left undecoded."""
    start = payload.find(prefix)
    while start >= 0:
        value = _any_value(payload, start + len(prefix))
        if value is not _NO_VALUE:
            yield value  # type: ignore[misc]
        start = payload.find(prefix, start + 1)


def _any_value(data: bytes, at: int) -> object:
    """The scalar ``AnyValue`` whose length-prefixed bytes start at ``at`` (``_NO_VALUE``: an array, a
    map, or bytes that only looked like a pair)."""
    try:
        length, at = _read_varint(data, at)
        end = at + length
        if end > len(data):
            return _NO_VALUE
        if not length:
            return None
        tag = data[at]
        at += 1
        if tag == 0x0A:  # string
            size, at = _read_varint(data, at)
            return data[at:at + size].decode("utf-8", "replace") if at + size == end else _NO_VALUE
        if tag in (0x10, 0x18):  # bool, int
            number, at = _read_varint(data, at)
            if at != end:
                return _NO_VALUE
            if tag == 0x10:
                return bool(number)
            return number - (1 << 64) if number >= 1 << 63 else number
        if tag == 0x21 and end == at + 8:  # double
            return struct.unpack_from("<d", data, at)[0]
        return _NO_VALUE
    except (IndexError, ValueError, struct.error):
        return _NO_VALUE


def _number(value: AttrValue) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def first_number(span: Span, keys: tuple[str, ...], prefixes: tuple[bytes, ...]) -> float | None:
    payload = span.payload
    if payload is None:  # built in code: attributes at hand
        attributes = span.attributes
        for key in keys:
            number = _number(attributes.get(key))
            if number is not None:
                return number
        return None
    for prefix in prefixes:
        if prefix in payload:
            for value in wire_scalars(payload, prefix):
                number = _number(value)
                if number is not None:
                    return number
    return None


IN_TOKEN_PREFIXES = tuple(map(key_prefix, INPUT_TOKENS_KEYS))
OUT_TOKEN_PREFIXES = tuple(map(key_prefix, OUTPUT_TOKENS_KEYS))
_TOTAL_PREFIXES = tuple(map(key_prefix, TOTAL_TOKENS_KEYS))
_TTFT_PREFIXES = tuple(map(key_prefix, TTFT_KEYS))
_FIRST_TOKEN_MARKERS = tuple(name.encode() for name in FIRST_TOKEN_EVENTS)


def span_tokens(span: Span) -> tuple[int | None, int | None, int | None]:
    """(input, output, total) tokens of one span: the first key of each convention that it has; the total
    is its own attribute, else input + output. Read from the serialised bytes of a received span."""
    if not span.may_contain(b"token"):
        return None, None, None
    tokens_in = first_number(span, INPUT_TOKENS_KEYS, IN_TOKEN_PREFIXES)
    tokens_out = first_number(span, OUTPUT_TOKENS_KEYS, OUT_TOKEN_PREFIXES)
    total = first_number(span, TOTAL_TOKENS_KEYS, _TOTAL_PREFIXES)
    if total is None and (tokens_in is not None or tokens_out is not None):
        total = (tokens_in or 0) + (tokens_out or 0)
    return (None if tokens_in is None else int(tokens_in), None if tokens_out is None else int(tokens_out),
            None if total is None else int(total))


def _token_count(span: Span, keys: tuple[str, ...], prefixes: tuple[bytes, ...]) -> int | None:
    """One of ``span_tokens(span)``'s counts, without reading the others."""
    payload = span.payload
    if payload is not None and b"token" not in payload:
        return None
    tokens = first_number(span, keys, prefixes)
    return None if tokens is None else int(tokens)


def _input_tokens(span: Span) -> int | None:
    return _token_count(span, INPUT_TOKENS_KEYS, IN_TOKEN_PREFIXES)


def _output_tokens(span: Span) -> int | None:
    return _token_count(span, OUTPUT_TOKENS_KEYS, OUT_TOKEN_PREFIXES)


def _total_tokens(span: Span) -> int | None:
    """``span_tokens(span)[2]``: its own total first, the input and output counts only without one."""
    payload = span.payload
    if payload is not None and b"token" not in payload:
        return None
    total = first_number(span, TOTAL_TOKENS_KEYS, _TOTAL_PREFIXES)
    if total is None:
        tokens_in = first_number(span, INPUT_TOKENS_KEYS, IN_TOKEN_PREFIXES)
        tokens_out = first_number(span, OUTPUT_TOKENS_KEYS, OUT_TOKEN_PREFIXES)
        if tokens_in is None and tokens_out is None:
            return None
        total = (tokens_in or 0) + (tokens_out or 0)
    return int(total)


def span_ttft(span: Span) -> float | None:
    """Seconds from the span's start to its first token: an attribute if given, else a first-token event
    (decoding the span only when its bytes name such an event)."""
    if span.may_contain(b"first"):
        seconds = first_number(span, TTFT_KEYS, _TTFT_PREFIXES)
        if seconds is not None:
            return float(seconds)
        if span.may_contain(*_FIRST_TOKEN_MARKERS):
            for event in span.events:
                if event.name in FIRST_TOKEN_EVENTS:
                    return max(0, event.time_ns - span.start_ns) / 1e9
    return None
