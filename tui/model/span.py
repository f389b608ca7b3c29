"""The span model every other layer speaks.

Receivers decode OTLP into these types once, at the edge; the store, the console printer and the
Textual app only ever see them. Classes use ``__slots__`` because hundreds of thousands of spans are
held at once and a per-instance ``__dict__`` would roughly double their overhead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Mapping, Union

#: An OTLP ``AnyValue``: scalars, bytes, arrays (tuples) and key-value lists (dicts), nested.
AttrValue = Union[str, bool, int, float, bytes, None, tuple["AttrValue", ...], dict[str, "AttrValue"]]
Attributes = Mapping[str, AttrValue]


class SpanKind(IntEnum):
    """OTLP ``Span.SpanKind`` (the integer values of the wire format)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5

    @classmethod
    def of(cls, value: int) -> SpanKind:
        """Map a wire value to a kind; unknown future values read as UNSPECIFIED instead of failing."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNSPECIFIED


class StatusCode(IntEnum):
    """OTLP ``Status.StatusCode``."""

    UNSET = 0
    OK = 1
    ERROR = 2

    @classmethod
    def of(cls, value: int) -> StatusCode:
        try:
            return cls(value)
        except ValueError:
            return cls.UNSET


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


@dataclass(slots=True, eq=False)
class Span:
    """One finished span. Ids are lowercase hex strings; a root span has ``parent_span_id == ""``."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    parent_span_id: str = ""
    kind: SpanKind = SpanKind.UNSPECIFIED
    status_code: StatusCode = StatusCode.UNSET
    status_message: str = ""
    attributes: Attributes = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    links: tuple[Link, ...] = ()
    resource: Resource = _EMPTY_RESOURCE
    scope: Scope = _EMPTY_SCOPE
    trace_state: str = ""
    flags: int = 0
    dropped_attributes_count: int = 0
    dropped_events_count: int = 0
    dropped_links_count: int = 0

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
