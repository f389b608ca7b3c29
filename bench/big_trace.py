"""One huge trace: the span budget against it, and the live view with it expanded.

``python bench/big_trace.py budget``: ``--max-spans 10000``, then one 300 k-span trace through the
receiver's decoder into the store: spans held and RSS growth.
``python bench/big_trace.py live``: the app headless over a 200 k-span trace, expanded, with 100
spans/s arriving into it: the cost of a frame, of a key, and of opening each detail tab.
Both print one JSON line; ``bench/run.py`` runs the second as its "huge expanded trace" row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from tui.app.app import OllamaTuiApp
from tui.model.span import Span
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig
from tui.receiver.decode import spans_from_request

TRACE_ID = bytes.fromhex("b16" + "0" * 28 + "1")
START_NS = 1_900_000_000_000_000_000
#: Spans per step of the agent loop the trace records (a step span, an LLM call, tool calls).
STEP = 100
#: Spans per export request, as a BatchSpanProcessor would send them.
REQUEST_SPANS = 512
SIZE = (160, 45)


def _span_id(n: int) -> bytes:
    return (n + 1).to_bytes(8, "big")


def _requests(count: int, first: int = 0) -> Iterator[ExportTraceServiceRequest]:
    """Spans ``first`` … ``first + count - 1`` of one trace: a root (span 0, sent last, as an SDK
    exports a root when it ends) over steps of :data:`STEP` spans (a step, its LLM call, tools)."""
    order = [n for n in range(first, first + count) if n] + ([0] if first == 0 else [])
    for at in range(0, len(order), REQUEST_SPANS):
        request = ExportTraceServiceRequest()
        rs = request.resource_spans.add()
        rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="agent")))
        ss = rs.scope_spans.add()
        for n in order[at:at + REQUEST_SPANS]:
            step, k = divmod(n - 1, STEP)
            span = ss.spans.add(trace_id=TRACE_ID, span_id=_span_id(n), kind=PbSpan.SPAN_KIND_INTERNAL,
                                start_time_unix_nano=START_NS + n * 1000, end_time_unix_nano=START_NS + n * 1000 + 900)
            if n == 0:
                span.name, span.end_time_unix_nano = "POST /batch", START_NS + 10**12
            elif k == 0:
                span.name, span.parent_span_id = f"step {step}", _span_id(0)
            else:
                span.name, span.parent_span_id = ("ollama.chat" if k == 1 else f"tool {k}"), _span_id(step * STEP + 1)
                if k == 1:
                    span.attributes.extend([
                        KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="llama3.2")),
                        KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=120)),
                        KeyValue(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=45)),
                        KeyValue(key="gen_ai.prompt.0.content", value=AnyValue(string_value="what next?")),
                    ])
        yield request


def trace_spans(count: int, first: int = 0) -> Iterator[list[Span]]:
    """The spans of :func:`_requests`, decoded by the receiver's own decoder, one request at a time."""
    for request in _requests(count, first):
        yield spans_from_request(request).spans


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def budget(spans: int, max_spans: int) -> dict[str, float]:
    """The store under ``--max-spans``, fed one trace of ``spans`` spans."""
    store = TraceStore(max_spans)
    gc.collect()
    before = max_rss_mb()
    for batch in trace_spans(spans):
        store.add_spans(batch)
    gc.collect()
    trace = next(iter(store))
    return {"max_spans": max_spans, "sent": spans, "held": store.span_count, "rss_before_mb": before,
            "rss_after_mb": max_rss_mb(), "capped": store.capped_spans,
            "root_held": trace.has_root}


async def live(spans: int, frames: int, keys: int) -> dict[str, float]:
    """The app over one expanded ``spans``-span trace while 100 spans/s arrive into it."""
    store = TraceStore(spans + 100_000)
    for batch in trace_spans(spans):
        store.add_spans(batch)
    store.drain_changes()
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store)
    arriving = trace_spans(100_000, first=spans)
    pending: list[Span] = []

    def arrive(count: int) -> None:
        """``count`` more spans of the trace: 100 spans/s is 5 a 50 ms tick."""
        while len(pending) < count:
            pending.extend(next(arriving))
        store.add_spans(pending[:count])
        del pending[:count]

    values: dict[str, float] = {"spans": spans}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.traces
        trace_list, detail = screen.trace_list, screen.detail
        await pilot.press("enter", "l", "j", "j")  # expand, step into it: a span row is selected
        def frame() -> None:  # a tick's arrivals, applied and drawn, and a slice of any rebuild
            arrive(5)
            screen.tick()
            render_visible(app)

        def key() -> None:  # j, the detail it shows, and the redraw
            trace_list.action_cursor_down()
            detail.show(trace_list.current)
            render_visible(app)

        frames_ms = timed(frame, frames)
        values["frame_p50_ms"], values["frame_max_ms"] = statistics.median(frames_ms), max(frames_ms)
        keys_ms = []
        for _ in range(keys):
            frame()
            keys_ms += timed(key, 1)
        values["key_p50_ms"], values["key_max_ms"] = statistics.median(keys_ms), max(keys_ms)
        for tab in ("events", "timeline", "attributes"):
            detail.query_one("TabbedContent").active = f"tab-{tab}"  # type: ignore[attr-defined]
            await pilot.pause()
            opened = timed(lambda: detail.show(trace_list.current), 3)
            values[f"{tab}_tab_max_ms"] = max(opened)
        values["selection_kept"] = float(trace_list.selected is not None and trace_list.selected[1] is not None)

        async def feed() -> None:  # as the receivers' pump: the app's own timers tick meanwhile
            while True:
                arrive(5)
                await asyncio.sleep(0.05)

        feeder = asyncio.create_task(feed())
        try:
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(5.0)
            values["cpu_percent"] = 100 * (time.process_time() - cpu) / (time.perf_counter() - wall)
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
    return values


def render_visible(app: OllamaTuiApp) -> None:
    trace_list = app.traces.trace_list
    for y in range(trace_list.size.height):
        trace_list.render_line(y)


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["budget", "live"])
    parser.add_argument("--spans", type=int, default=None, help="spans in the trace (300 000 / 200 000)")
    parser.add_argument("--max-spans", type=int, default=10_000)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--keys", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    if args.what == "budget":
        result = budget(args.spans or 300_000, args.max_spans)
    else:
        result = asyncio.run(live(args.spans or 200_000, args.frames, args.keys))
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
