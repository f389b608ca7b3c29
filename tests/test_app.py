"""The real app under Pilot, fed through real OTLP exports (SDK exporter → receiver on port 0)."""

from __future__ import annotations

import asyncio
import re

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExportResult

from support.app import SIZE, cursor_text, make_app, screen_text, trace_list_lines, wait_until
from support.event_loop import loop_kept_late
from support.genai_spans import record, record_all
from support.receivers import Running, export, make_exporter, running_receivers, send
from tui.app import traces_screen
from tui.app.widgets.detail import DetailList
from tui.model.span import Span


def single(name: str):
    """A one-span trace recorded by the SDK."""

    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span(name):
            pass

    return record(build, "svc")


async def send_all(running: Running, pilot) -> None:
    for spans in record_all():  # one export per trace, in order: newest last
        await send(running, spans)
    await wait_until(pilot, lambda: pilot.app.traces.trace_list.index.trace_count == 6)


async def test_empty_state_explains_how_to_send_spans_with_real_ports(app_receivers: Running) -> None:
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = screen_text(app)
        http, grpc = app_receivers.receivers.http.port, app_receivers.receivers.grpc.port
        assert f"grpc 127.0.0.1:{grpc} · http 127.0.0.1:{http}" in text  # header
        assert f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:{http}" in text
        assert f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:{http}/v1/traces" in text
        assert "OTEL_EXPORTER_OTLP_TRACES_INSECURE=true" in text


async def test_traces_arrive_newest_first_with_model_and_tokens(app_receivers: Running) -> None:
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await send_all(app_receivers, pilot)
        lines = trace_list_lines(app)
        assert len(lines) == 6
        assert "weather-api" in lines[0] and "GET /forecast" in lines[0] and "✖" in lines[0]
        assert "POST /ask" in lines[5] and "llama3.2:latest" in lines[5] and "31→18" in lines[5]
        assert "agent run" in lines[4] and "qwen3:8b" in lines[4] and "120→45" in lines[4]
        assert "ChatOllama" in lines[2] and "gemma3" in lines[2] and "15→16" in lines[2]
        # The header refreshes twice a second.
        await wait_until(pilot, lambda: "6 traces · 10 spans" in screen_text(app).splitlines()[0])
        assert "following" in screen_text(app).splitlines()[0]


async def test_pause_keeps_the_list_still_while_exports_arrive(app_receivers: Running) -> None:
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await send_all(app_receivers, pilot)
        await pilot.press("p")  # pause: receiving goes on, the list stays still
        await send(app_receivers, single("while paused"))
        await wait_until(pilot, lambda: app_receivers.store.span_count == 11)
        await wait_until(pilot, lambda: "PAUSED · 1 span waiting" in screen_text(app).splitlines()[0])
        assert app.traces.trace_list.index.trace_count == 6
        await pilot.press("p")
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 7)
        assert cursor_text(app) == "trace:while paused"


async def test_late_parent_moves_orphan_under_it(app_receivers: Running) -> None:
    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("parent"):
            with tracer.start_as_current_span("child"):
                pass

    spans = record(build, "svc")
    child = next(s for s in spans if s.name == "child")
    parent = next(s for s in spans if s.name == "parent")
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await send(app_receivers, [child])
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter")
        lines = trace_list_lines(app)
        assert "(no root yet)" in lines[0]
        assert "⚠ parent missing · child" in lines[1]
        await pilot.press("down")
        await send(app_receivers, [parent])
        await wait_until(pilot, lambda: app_receivers.store.span_count == 2)
        await wait_until(pilot, lambda: "parent" in trace_list_lines(app)[0])  # the next tick shows it
        lines = trace_list_lines(app)
        assert "parent" in lines[0] and "└─ parent" in lines[1] and "   └─ child" in lines[2]
        assert "⚠" not in "\n".join(lines)
        assert cursor_text(app) == "child"  # the selection followed the span to its new row


async def test_untrusted_text_is_shown_escaped_never_interpreted(app_receivers: Running) -> None:
    evil = "[bold]x[/] \x1b[2J\x1b]0;title\x07\rend"

    def build(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span(evil, attributes={"gen_ai.prompt.0.content": evil, evil: "v"}) as s:
            s.add_event(evil, {"k": evil})

    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await send(app_receivers, record(build, f"svc{evil}"))
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("enter", "down")
        for tab in ("llm", "attributes", "events"):
            app.query_one("TabbedContent").active = f"tab-{tab}"
            await pilot.pause()
            text = screen_text(app)
            assert "[bold]x[/] \\e[2J\\e]0;title\\x07\\rend" in text, tab
            assert not any(c in text for c in "\x1b\x07\r"), tab


async def test_eviction_keeps_the_list_correct_and_the_selection_sensible() -> None:
    async with running_receivers(pumping=False, max_spans=6) as running:
        app = make_app(running)
        async with app.run_test(size=SIZE) as pilot:
            for name in ("one", "two", "three"):
                await send(running, single(name))
            await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 3)
            await pilot.press("G")  # the oldest trace: "one"
            assert cursor_text(app) == "trace:one"
            for name in ("four", "five", "six", "seven"):
                await send(running, single(name))
            await wait_until(pilot, lambda: "seven" in {t.name for t in running.store})
            index = app.traces.trace_list.index
            await wait_until(pilot, lambda: {index.row(i).trace.name for i in range(len(index))}
                             == {t.name for t in running.store})  # once the next tick has shown it
            assert "one" not in {t.name for t in running.store}
            rows = [index.row(i) for i in range(len(index))]
            assert all(running.store.get(r.trace.trace_id) is r.trace for r in rows)  # no dangling rows
            assert len(rows) == len(running.store) == 6
            assert cursor_text(app) == "trace:two"  # the selection moved to the nearest surviving row
            await wait_until(pilot, lambda: "evicted 1" in screen_text(app).splitlines()[0])


async def test_a_selection_held_at_the_oldest_end_survives_a_flood_with_eviction() -> None:
    """Found by driving the app under 64 exporters: the held selection drifts to the oldest end,
    rows there are evicted between two list updates, and the next draw of them failed."""
    def burst(first: int, traces: int) -> list[Span]:
        """Traces of four spans each: a root named after the trace and three children."""
        spans = []
        for t in range(first, first + traces):
            trace_id = format(t, "032x")
            spans.append(Span(trace_id=trace_id, span_id=format(1, "016x"), parent_span_id="", name=f"t{t}",
                              start_ns=1, end_ns=2))
            spans.extend(Span(trace_id=trace_id, span_id=format(s, "016x"), parent_span_id=format(1, "016x"),
                              name="child", start_ns=1, end_ns=2) for s in range(2, 5))
        return spans

    async with running_receivers(pumping=False, max_spans=400) as running:
        app = make_app(running)
        async with app.run_test(size=SIZE) as pilot:
            running.store.add_spans(burst(1, 100))
            await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 100)
            await pilot.press("G", "l")  # hold the oldest trace, expanded
            assert cursor_text(app) == "trace:t1"
            running.store.add_spans(burst(1000, 600))  # a flood: every trace on screen is evicted
            trace_list = app.traces.trace_list
            assert running.store.get(format(1, "032x")) is None
            lines = [trace_list.render_line(y).text for y in range(trace_list.size.height)]  # the next draw
            assert any(re.search(r"\bt1\b", line) for line in lines)  # drawn as it was, for that frame
            index = trace_list.index

            def applied() -> bool:
                return all(running.store.get(index.row(i).trace.trace_id) for i in range(len(index)))

            await wait_until(pilot, applied)
            assert index.trace_count == 100
            assert cursor_text(app) == "trace:t1500"  # the nearest survivor


async def test_header_says_when_exporters_are_told_to_back_off(app_receivers: Running) -> None:
    app = make_app(app_receivers)
    stats = app_receivers.receivers.stats
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "OVERLOADED" not in screen_text(app).splitlines()[0]
        exporter = make_exporter(app_receivers, "http", timeout=30)
        try:
            async with loop_kept_late(app_receivers.receivers.loop_lag):
                exporting = asyncio.create_task(export(exporter, single("late")))
                await wait_until(pilot, lambda: stats.retries_asked > 0)
            assert await exporting is SpanExportResult.SUCCESS  # the exporter's retry got through
        finally:
            exporter.shutdown()
        await wait_until(pilot, lambda: "OVERLOADED" in screen_text(app).splitlines()[0])
        assert f"asked to retry {stats.retries_asked}" in screen_text(app).splitlines()[0]
        await wait_until(pilot, lambda: "late" in {t.name for t in app_receivers.store})


async def test_save_keys_write_what_load_reads(app_receivers: Running, tmp_path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from support.otlp_bodies import span_fields
    from tui.receiver.decode import spans_from_request
    from tui.receiver.files import read_requests

    monkeypatch.chdir(tmp_path)
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await send_all(app_receivers, pilot)
        await pilot.press("s")  # the selected (newest) trace
        await wait_until(pilot, lambda: len(list(tmp_path.glob("ollama-tui-trace-*.jsonl"))) == 1)
        await pilot.press("e", "S")  # every trace shown: only the failing one
        await wait_until(pilot, lambda: len(list(tmp_path.glob("ollama-tui-traces-*.jsonl"))) == 1)
        (one,) = tmp_path.glob("ollama-tui-trace-*.jsonl")
        (shown,) = tmp_path.glob("ollama-tui-traces-*.jsonl")
        selected = app.traces.trace_list.current.trace
        expected = sorted(span_fields(s) for s in selected.spans.values())
    for path in (one, shown):
        loaded = [s for r in read_requests(path.name, path.read_bytes()) for s in spans_from_request(r).spans]
        assert sorted(span_fields(s) for s in loaded) == expected  # the newest trace is the failing one


async def test_a_tick_while_the_screen_is_taken_down_does_not_touch_removed_widgets(
        app_receivers: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen once in CI when the ticks were the App's: Pilot shuts the app down without `exit()`, so its timers
    kept firing while the screen's widgets were removed, and a tick showed the detail of a changed trace in
    lists already gone. The screen's timers stop before its widgets go."""
    monkeypatch.setattr(traces_screen, "TICK_SECONDS", 0.001)

    ids = iter(range(1, 1000))

    def add_a_span() -> None:
        app_receivers.store.add_spans([Span(trace_id=format(1, "032x"), span_id=format(next(ids), "016x"),
                                        parent_span_id="", name="busy", start_ns=1, end_ns=2)])

    async def slow_unmount(_list: DetailList) -> None:
        """While each list goes, the selected trace changes and the app's timers get time to fire."""
        add_a_span()
        await asyncio.sleep(0.02)

    monkeypatch.setattr(DetailList, "on_unmount", slow_unmount, raising=False)
    app = make_app(app_receivers)
    app.traces.policy.detail_seconds = 0
    async with app.run_test(size=SIZE) as pilot:
        add_a_span()
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        assert cursor_text(app) == "trace:busy"  # selected, so each change to it asks for its detail again
