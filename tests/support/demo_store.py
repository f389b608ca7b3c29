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


def demo_store(max_spans: int = 100_000, traces: list | None = None) -> TraceStore:
    """The demo traces (or ``traces``, each a list of SDK spans) with fixed ids and times."""
    store = TraceStore(max_spans)
    for t, spans in enumerate(record_all() if traces is None else traces):
        request = encode_spans(spans)
        ids: dict[bytes, bytes] = {}
        trace_id = (t + 1).to_bytes(16, "big")
        for rs in request.resource_spans:
            kept = [kv for kv in rs.resource.attributes if kv.key not in _VOLATILE_RESOURCE_KEYS]
            del rs.resource.attributes[:]
            rs.resource.attributes.extend(kept)
            for ss in rs.scope_spans:
                ordered = sorted(ss.spans, key=lambda s: s.start_time_unix_nano)
                for i, span in enumerate(ordered):
                    ids[span.span_id] = ((t + 1) * 100 + i + 1).to_bytes(8, "big")
                for i, span in enumerate(ordered):
                    span.trace_id = trace_id
                    span.span_id = ids[span.span_id]
                    if span.parent_span_id:
                        span.parent_span_id = ids[span.parent_span_id]
                    start = BASE_NS + t * 7_000_000_000 + i * 40_000_000
                    span.start_time_unix_nano = start
                    span.end_time_unix_nano = start + (len(ordered) - i) * 350_000_000
                    for e, event in enumerate(span.events):
                        event.time_unix_nano = start + (e + 1) * 10_000_000
        store.add_spans(spans_from_request(request).spans)
    return store
