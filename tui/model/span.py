"""The span model every other layer speaks.

Receivers decode OTLP into these types once, at the edge; the store, the console printer and the
Textual app only ever see them. Classes use ``__slots__`` because hundreds of thousands of spans are
held at once and a per-instance ``__dict__`` would roughly double their overhead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Union

#: An OTLP ``AnyValue``: scalars, bytes, arrays (tuples) and key-value lists (dicts), nested.
# Union, not "|": a recursive alias names itself as a string, and `str | "AttrValue"` fails at run time.
AttrValue = Union[str, bool, int, float, bytes, None, tuple["AttrValue", ...], dict[str, "AttrValue"]]  # noqa: UP007
Attributes = Mapping[str, AttrValue]


class SpanKind(IntEnum):
    """OTLP ``Span.SpanKind`` (the integer values of the wire format)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(IntEnum):
    """OTLP ``Status.StatusCode``."""

    UNSET = 0
    OK = 1
    ERROR = 2


@dataclass(frozen=True, slots=True)
class Resource:
    """The entity that produced the spans (``service.name`` and friends); shared by all its spans."""

    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0

    @property
    def service_name(self) -> str:
        value = self.attributes.get("service.name")
        return value if isinstance(value, str) and value else "unknown_service"


@dataclass(frozen=True, slots=True)
class Scope:
    """The instrumentation scope (library) that recorded the spans; shared by all its spans."""

    name: str = ""
    version: str = ""
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """A timestamped annotation on a span (exceptions, GenAI message events)."""

    name: str
    time_ns: int
    attributes: Attributes = field(default_factory=dict)
    dropped_attributes_count: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    """A reference from a span to a span in another (or the same) trace."""

    trace_id: str
    span_id: str
    attributes: Attributes = field(default_factory=dict)
    trace_state: str = ""
    dropped_attributes_count: int = 0


_EMPTY_RESOURCE = Resource()
_EMPTY_SCOPE = Scope()
_KINDS = tuple(SpanKind)
_STATUS_CODES = tuple(StatusCode)

#: Decodes a span's serialised payload into (attributes, events, links); supplied by the receiver,
#: so this module never imports protobuf.
PayloadDecoder = Callable[[bytes], tuple[Attributes, tuple[Event, ...], tuple[Link, ...]]]

SPAN_FIELDS = (
    "trace_id", "span_id", "parent_span_id", "name", "start_ns", "end_ns", "kind", "status_code", "status_message",
    "attributes", "events", "links", "resource", "scope", "trace_state", "flags", "dropped_attributes_count",
    "dropped_events_count", "dropped_links_count",
)


class Span:
    """One finished span. Ids are lowercase hex strings; a root span has ``parent_span_id == ""``.

    What the trace list needs (ids, name, times, kind, status) is decoded when the span arrives.
    Attributes, events and links — most of a span's bytes and of its decoding time — stay as the
    span's serialised OTLP payload until something reads them (the detail pane, a visible row's
    LLM summary, ``--print``), then are decoded once and kept. That is what lets the receivers keep
    up with hundreds of thousands of spans per second and keeps a stored span small. Spans built in
    code (tests, tools) pass ``attributes``/``events``/``links`` directly instead.
    """

    __slots__ = (
        "trace_id", "span_id", "parent_span_id", "name", "start_ns", "end_ns", "kind", "status_code",
        "status_message", "resource", "scope", "trace_state", "flags", "dropped_attributes_count",
        "dropped_events_count", "dropped_links_count", "_attributes", "_events", "_links", "_payload", "_decode",
        "_search",
    )

    def __init__(
        self,
        trace_id: str,
        span_id: str,
        name: str,
        start_ns: int,
        end_ns: int,
        parent_span_id: str = "",
        kind: SpanKind = SpanKind.UNSPECIFIED,
        status_code: StatusCode = StatusCode.UNSET,
        status_message: str = "",
        attributes: Attributes | None = None,
        events: tuple[Event, ...] = (),
        links: tuple[Link, ...] = (),
        resource: Resource = _EMPTY_RESOURCE,
        scope: Scope = _EMPTY_SCOPE,
        trace_state: str = "",
        flags: int = 0,
        dropped_attributes_count: int = 0,
        dropped_events_count: int = 0,
        dropped_links_count: int = 0,
        payload: bytes | None = None,
        decode: PayloadDecoder | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.name = name
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.kind = kind
        self.status_code = status_code
        self.status_message = status_message
        self.resource = resource
        self.scope = scope
        self.trace_state = trace_state
        self.flags = flags
        self.dropped_attributes_count = dropped_attributes_count
        self.dropped_events_count = dropped_events_count
        self.dropped_links_count = dropped_links_count
        lazy = payload is not None and decode is not None
        self._attributes: Attributes | None = None if lazy else (attributes if attributes is not None else {})
        self._events: tuple[Event, ...] = events
        self._links: tuple[Link, ...] = links
        self._payload = payload if lazy else None
        self._decode = decode if lazy else None
        self._search: bytes | None = None

    def _load(self) -> None:
        assert self._payload is not None and self._decode is not None
        self._attributes, self._events, self._links = self._decode(self._payload)

    @property
    def attributes(self) -> Attributes:
        if self._attributes is None:
            self._load()
        return self._attributes  # type: ignore[return-value]

    @property
    def events(self) -> tuple[Event, ...]:
        if self._attributes is None:
            self._load()
        return self._events

    @property
    def links(self) -> tuple[Link, ...]:
        if self._attributes is None:
            self._load()
        return self._links

    @property
    def payload(self) -> bytes | None:
        """A received span's serialised attributes, events and links, as received (never decoded here), for
        readers that find one value without decoding them all; None for a span built in code."""
        return self._payload

    @property
    def search_bytes(self) -> bytes:
        """Lower-cased bytes the filter searches: every string of the span (name, attribute keys and
        values, events). For a received span that is its serialised payload, lowered on each call
        rather than kept: a lowered copy of every span would almost double the memory per span,
        and lowering costs well under a microsecond. (``bytes.lower`` folds ASCII letters only.)"""
        if self._payload is not None:
            return self._payload.lower()
        if self._search is None:
            parts = [self.name, *_strings(self.attributes.values())]
            for event in self.events:
                parts.append(event.name)
                parts.extend(_strings(event.attributes.values()))
            self._search = "\n".join(parts).lower().encode()
        return self._search

    @property
    def search_text(self) -> str:
        """The strings of :attr:`search_bytes` case-folded as Unicode text, for filters with
        non-ASCII letters (``bytes.lower`` leaves "É" as it is). Decoded on each call, like
        :attr:`search_bytes`; binary fields of the payload decode to replacement characters."""
        return self.search_bytes.decode("utf-8", "replace").casefold()

    def may_contain(self, *needles: bytes) -> bool:
        """False only when the span's serialised payload provably contains none of ``needles``.

        Lets cheap questions ("any ``gen_ai.`` attribute?") skip decoding the attributes of the
        many spans that have none.
        """
        payload = self._payload
        return payload is None or any(needle in payload for needle in needles)

    @property
    def duration_ns(self) -> int:
        """Duration, never negative: a span whose end precedes its start is shown as instantaneous."""
        return max(0, self.end_ns - self.start_ns)

    @property
    def is_error(self) -> bool:
        return self.status_code is StatusCode.ERROR

    @property
    def service_name(self) -> str:
        return self.resource.service_name

    def __repr__(self) -> str:
        return f"Span({self.name!r}, trace={self.trace_id}, span={self.span_id}, parent={self.parent_span_id or '-'})"


def span_kind(value: int) -> SpanKind:
    """Wire value to kind without the cost of an enum call (this runs for every span received)."""
    return _KINDS[value] if 0 <= value < len(_KINDS) else SpanKind.UNSPECIFIED


def status_code(value: int) -> StatusCode:
    return _STATUS_CODES[value] if 0 <= value < len(_STATUS_CODES) else StatusCode.UNSET


def _strings(values: Iterable[AttrValue]) -> list[str]:
    found: list[str] = []
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, tuple):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return found
