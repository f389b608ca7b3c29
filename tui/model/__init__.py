"""Pure-Python span model and store. Never imports Textual, gRPC or aiohttp."""

from tui.model.span import Attributes, AttrValue, Event, Link, Resource, Scope, Span, SpanKind, StatusCode
from tui.model.store import StoreChanges, Trace, TraceStore, TreeRow

__all__ = [
    "AttrValue",
    "Attributes",
    "Event",
    "Link",
    "Resource",
    "Scope",
    "Span",
    "SpanKind",
    "StatusCode",
    "StoreChanges",
    "Trace",
    "TraceStore",
    "TreeRow",
]
