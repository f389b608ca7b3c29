"""A deterministic store of the ``genai_spans`` traces: fixed ids, times and resources.

Snapshot tests and ``screenshots/make_screenshots.py`` need the same pixels on every run, so the
SDK's random ids, wall-clock times and per-process resource values are replaced, then the request
goes through the receiver's own decoder like any export.
"""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from support.genai_spans import record_all
from tui.model.store import TraceStore
from tui.receiver.decode import spans_from_request

#: 2027-01-15 08:00:00 UTC; the app's clock is pinned a little later in snapshots.
BASE_NS = 1_800_000_000_000_000_000
CLOCK_NOW = BASE_NS / 1e9 + 90
_VOLATILE_RESOURCE_KEYS = {"service.instance.id", "telemetry.sdk.version"}


def demo_store(max_spans: int = 100_000, as_recorded: list | None = None) -> TraceStore:
    """The demo traces with fixed ids and times (each span laid out by its place in the trace, so the
    snapshots never move), then ``as_recorded`` (each a list of SDK spans) with fixed ids and their own
    recorded layout, stretched :data:`STRETCH` times: a run whose steps follow one another stays so."""
    store = TraceStore(max_spans)
    traces = record_all()
    for t, spans in enumerate([*traces, *(as_recorded or [])]):
        store.add_spans(_fixed(t, spans, laid_out=t < len(traces)))
    return store


#: How much longer a trace kept ``as_recorded`` is than it was (a test's spans last milliseconds).
STRETCH = 200


def _fixed(t: int, spans: list, *, laid_out: bool) -> list:
    request = encode_spans(spans)
    ids: dict[bytes, bytes] = {}
    trace_id = (t + 1).to_bytes(16, "big")
    base = BASE_NS + t * 7_000_000_000
    for rs in request.resource_spans:
        kept = [kv for kv in rs.resource.attributes if kv.key not in _VOLATILE_RESOURCE_KEYS]
        del rs.resource.attributes[:]
        rs.resource.attributes.extend(kept)
        for ss in rs.scope_spans:
            ordered = sorted(ss.spans, key=lambda s: s.start_time_unix_nano)
            first = ordered[0].start_time_unix_nano if ordered else 0
            for i, span in enumerate(ordered):
                ids[span.span_id] = ((t + 1) * 100 + i + 1).to_bytes(8, "big")
            for i, span in enumerate(ordered):
                span.trace_id = trace_id
                span.span_id = ids[span.span_id]
                if span.parent_span_id:
                    span.parent_span_id = ids[span.parent_span_id]
                if laid_out:
                    start = base + i * 40_000_000
                    end = start + (len(ordered) - i) * 350_000_000
                else:
                    start = base + (span.start_time_unix_nano - first) * STRETCH
                    end = base + (span.end_time_unix_nano - first) * STRETCH
                offset = start - span.start_time_unix_nano
                span.start_time_unix_nano, span.end_time_unix_nano = start, end
                for e, event in enumerate(span.events):
                    event.time_unix_nano = start + (e + 1) * 10_000_000 if laid_out else event.time_unix_nano + offset
    return spans_from_request(request).spans
