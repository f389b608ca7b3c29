"""The Stats model (figures per service and per model, kept up to date as the store changes) on real
SDK-recorded spans, its percentiles against a brute-force computation, and the Stats screen driven by
its keys over the demo store."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from textual.widgets import DataTable

from support.app import FIXED_NOW, screen_text, wait_until
from support.demo_store import demo_store
from tui.app.app import OllamaTuiApp
from tui.app.present.stats import filter_for, row_cells
from tui.app.screens.stats import StatsScreen
from tui.app.widgets.filter_bar import FilterBar
from tui.model.genai import GenAIView, UsageSummary, is_llm_span
from tui.model.span import Resource, Span, StatusCode
from tui.model.stats import (
    BUCKET_SECONDS,
    GROWTH,
    MODEL,
    SERVICE,
    Histogram,
    Stats,
    StatsRow,
    StatsTracker,
    in_window,
    nearest_rank,
)
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig

HALF_BUCKET = math.sqrt(GROWTH) * (1 + 1e-9)


def close(estimate: float | None, exact: float | None) -> bool:
    """Within the histogram's error: half a bucket either way (0 is exact)."""
    if estimate is None or exact is None:
        return estimate is exact
    if exact <= 1e-12:
        return estimate == 0.0
    return exact / HALF_BUCKET <= estimate <= exact * HALF_BUCKET


def all_spans(store: TraceStore) -> list[Span]:
    return [span for trace in store for span in trace.spans.values()]


def brute_rows(spans: list[Span], kind: str, window_s: int | None = None, now_s: float = 0.0) -> dict[str, dict]:
    """Each group's figures computed from scratch, with the library's own GenAI readers."""
    groups: dict[str, list[Span]] = {}
    for span in spans:
        if not in_window(span.end_ns, window_s, now_s):
            continue
        if kind == SERVICE:
            groups.setdefault(span.service_name, []).append(span)
        elif is_llm_span(span) and (model := UsageSummary.from_span(span).model):
            groups.setdefault(model, []).append(span)
    found = {}
    for name, members in groups.items():
        usages = [UsageSummary.from_span(s) for s in members]
        views = [v for v in (GenAIView.from_span(s) for s in members if is_llm_span(s)) if v is not None]
        durations = [s.duration_ns / 1e9 for s in members]
        found[name] = {
            "count": len(members), "errors": sum(s.is_error for s in members),
            "tokens_in": sum(u.input_tokens or 0 for u in usages),
            "tokens_out": sum(u.output_tokens or 0 for u in usages),
            "p50": nearest_rank(durations, 0.5), "p95": nearest_rank(durations, 0.95),
            "p99": nearest_rank(durations, 0.99),
            "speed": nearest_rank([v.tokens_per_second for v in views if v.tokens_per_second is not None], 0.5),
            "ttft50": nearest_rank([v.time_to_first_token_s for v in views if v.time_to_first_token_s is not None],
                                   0.5),
        }
    return found


def assert_matches(stats: Stats, spans: list[Span], window_s: int | None = None, now_s: float = 0.0) -> None:
    for kind in (SERVICE, MODEL):
        rows = {row.name: row for row in stats.rows(kind, window_s, now_s)}
        expected = brute_rows(spans, kind, window_s, now_s)
        assert set(rows) == set(expected), kind
        for name, want in expected.items():
            row = rows[name]
            assert (row.count, row.errors, row.tokens_in, row.tokens_out) == (
                want["count"], want["errors"], want["tokens_in"], want["tokens_out"]), name
            assert close(row.duration_p50, want["p50"]) and close(row.duration_p95, want["p95"])
            assert close(row.duration_p99, want["p99"])
            assert close(row.speed_p50, want["speed"]), name
            assert close(row.first_token_p50, want["ttft50"]), name


# --- the model ---------------------------------------------------------------------------------------

def test_figures_per_service_and_model_on_real_sdk_spans() -> None:
    store = demo_store()
    tracker = StatsTracker(store)
    tracker.sync()
    spans = all_spans(store)
    assert tracker.complete and tracker.stats.spans == len(spans)
    assert_matches(tracker.stats, spans)
    services = {row.name: row for row in tracker.stats.rows(SERVICE, now_s=FIXED_NOW)}
    assert set(services) == {"weather-api", "agent", "chatbot", "rag-app"}
    assert services["weather-api"].errors >= 2  # the failing trace: its root and the upstream call
    models = tracker.stats.rows(MODEL, now_s=FIXED_NOW)
    assert models and any(row.tokens_in and row.tokens_out and row.speed_p50 for row in models)


def test_reading_does_not_keep_decoded_payloads() -> None:
    """A million spans read once must not keep a million decoded attribute maps."""
    store = demo_store()
    StatsTracker(store).sync()
    assert all(span._attributes is None for span in all_spans(store) if span._payload is not None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=300),
       st.sampled_from([0.01, 0.5, 0.9, 0.95, 0.99, 1.0]))
def test_histogram_percentiles_against_brute_force(values: list[float], q: float) -> None:
    histogram = Histogram()
    for value in values:
        histogram.add(value)
    assert close(histogram.percentile(q), nearest_rank(values, q))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=100),
       st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=100))
def test_taking_values_out_leaves_the_histogram_of_the_rest(kept: list[float], gone: list[float]) -> None:
    histogram, expected = Histogram(), Histogram()
    for value in kept + gone:
        histogram.add(value)
    for value in gone:
        histogram.add(value, -1)
    for value in kept:
        expected.add(value)
    assert (histogram.counts, histogram.total) == (expected.counts, expected.total)


def llm_span(trace: int, i: int, *, model: str = "llama3.2", service: str = "agent", end_s: float = 100.0,
             duration_s: float = 1.0, error: bool = False, tokens: tuple[int, int] = (20, 40)) -> Span:
    end = int((1_800_000_000 + end_s) * 1e9)
    attributes = {"gen_ai.request.model": model, "gen_ai.usage.input_tokens": tokens[0],
                  "gen_ai.usage.output_tokens": tokens[1], "gen_ai.response.time_to_first_chunk": duration_s / 4}
    return Span(format(trace + 1, "032x"), format(trace * 1000 + i + 1, "016x"), "chat", end - int(duration_s * 1e9),
                end, parent_span_id="" if i == 0 else format(trace * 1000 + 1, "016x"),
                status_code=StatusCode.ERROR if error else StatusCode.UNSET, attributes=attributes,
                resource=Resource({"service.name": service}))


def test_eviction_clearing_and_late_spans_keep_the_figures_right() -> None:
    store = TraceStore(max_spans=40)
    tracker = StatsTracker(store)
    for trace in range(60):
        store.add_spans([llm_span(trace, i, model=("llama3.2", "qwen3", "my model")[trace % 3],
                                  service=("agent", "rag app")[trace % 2], end_s=trace * 7.0,
                                  duration_s=0.1 * (1 + trace % 9), error=trace % 5 == 0,
                                  tokens=(trace, 2 * trace)) for i in range(3)])
        if trace % 4 == 0:
            tracker.sync()
            assert_matches(tracker.stats, all_spans(store))
        if trace == 30:  # a late child of a trace that is still held
            held = next(iter(store))
            store.add_spans([llm_span(int(held.trace_id, 16) - 1, 7, end_s=5.0)])
    tracker.sync()
    assert store.evicted_traces > 0
    assert_matches(tracker.stats, all_spans(store))
    assert tracker.stats.spans == store.span_count
    store.clear()
    tracker.sync()
    assert tracker.stats.rows(SERVICE) == [] and tracker.stats.spans == 0


def test_a_replaced_span_starts_the_count_over_and_stays_right() -> None:
    store = TraceStore()
    tracker = StatsTracker(store)
    store.add_spans([llm_span(0, 0, duration_s=1.0), llm_span(0, 1)])
    tracker.sync()
    store.add_spans([llm_span(0, 0, duration_s=3.0, error=True, tokens=(5, 5))])  # re-sent with other data
    tracker.sync()
    assert_matches(tracker.stats, all_spans(store))


def test_a_following_tracker_reads_only_what_the_change_sets_name_and_stays_right() -> None:
    """The App's tracker (follow mode): handed every change set, it walks the store once, then only the
    traces named since, taking evicted ones out; it matches a from-scratch count throughout."""
    store = TraceStore(max_spans=40)
    tracker = StatsTracker(store, follow=True)
    for trace in range(60):
        store.add_spans([llm_span(trace, i, model=("llama3.2", "qwen3")[trace % 2], end_s=trace * 3.0,
                                  duration_s=0.1 * (1 + trace % 7), error=trace % 4 == 0, tokens=(trace, trace))
                         for i in range(3)])
        if trace == 20:  # a late child of the oldest trace held
            held = next(iter(store))
            store.add_spans([llm_span(int(held.trace_id, 16) - 1, 9, end_s=1.0)])
        if trace % 3 == 0:
            tracker.note(store.drain_changes())
            assert not tracker.idle
            tracker.sync()
            assert tracker.idle
            assert tracker.stats.spans == store.span_count
            assert_matches(tracker.stats, all_spans(store))
    tracker.note(store.drain_changes())
    tracker.sync()
    assert store.evicted_traces > 0 and tracker.idle
    assert_matches(tracker.stats, all_spans(store))
    store.clear()
    store.add_spans([llm_span(99, 0)])
    tracker.note(store.drain_changes())
    tracker.sync()
    assert tracker.stats.spans == 1
    assert_matches(tracker.stats, all_spans(store))


async def test_the_app_keeps_the_figures_so_the_screen_opens_on_them() -> None:
    app = demo_app()
    async with app.run_test(size=(80, 24)) as pilot:
        tracker = app.services.stats
        assert tracker is not None
        await wait_until(pilot, lambda: tracker.idle and tracker.stats.spans == app.services.store.span_count)
        await pilot.press("number_sign")
        assert isinstance(app.screen, StatsScreen) and app.screen.tracker is tracker
        assert_matches(tracker.stats, all_spans(app.services.store))
        store = app.services.store
        store.add_spans([llm_span(500, i, model="late-model") for i in range(2)])  # arriving while it is open
        await wait_until(pilot, lambda: tracker.stats.spans == store.span_count)
        assert_matches(tracker.stats, all_spans(store))
        models = app.screen.query_one("#stats-models", DataTable)
        await wait_until(pilot, lambda: "late-model" in table_names(models))


def test_windows_and_series() -> None:
    store = TraceStore()
    now = 1_800_000_000 + 1000.0
    ends = [1000 - 30, 1000 - 200, 1000 - 600, 1000 - 3000]  # 30 s, ~3 min, 10 min, 50 min ago
    store.add_spans([llm_span(t, 0, end_s=end) for t, end in enumerate(ends)])
    tracker = StatsTracker(store)
    tracker.sync()
    spans = all_spans(store)
    for window, count in ((60, 1), (300, 2), (900, 3), (None, 4)):
        assert_matches(tracker.stats, spans, window, now)
        assert tracker.stats.overall(window, now).count == count
        series = tracker.stats.series(SERVICE, "agent", window, now)
        assert round(sum(series.rate) * series.point_seconds) == count
        assert len(series.rate) <= 60
    assert tracker.stats.series(SERVICE, "agent", 60, now).point_seconds == BUCKET_SECONDS


def test_filter_strings_and_cells() -> None:
    assert filter_for(SERVICE, "weather-api") == "service:weather-api"
    assert filter_for(MODEL, "qwen3:8b") == "model:qwen3:8b"
    assert filter_for(SERVICE, "rag app") == 'service:"rag app"'
    assert filter_for(MODEL, 'say "hi"') == 'model:"say \\"hi\\""'
    row = StatsRow("x\x1b[2J", 10, 1, 0.0123, 0.5, 2.0, 0, 0, None, None, None)
    cells = [cell.plain for cell in row_cells(row)]
    assert cells[:6] == ["x\\e[2J", "10", "1 (10%)", "12.3ms", "500ms", "2s"]
    assert cells[6:] == ["–"] * 5


# --- the screen ----------------------------------------------------------------------------------------

def demo_app() -> OllamaTuiApp:
    return OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(), clock=lambda: FIXED_NOW)


def table_names(table: DataTable) -> list[str]:
    return [table.get_row_at(i)[0].plain for i in range(table.row_count)]


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
async def test_stats_screen_switches_windows_and_enter_filters_the_list(size: tuple[int, int]) -> None:
    app = demo_app()
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 6)
        await pilot.press("number_sign")
        assert isinstance(app.screen, StatsScreen)
        screen = app.screen
        await wait_until(pilot, lambda: screen.tracker.complete)
        services = screen.query_one("#stats-services", DataTable)
        await wait_until(pilot, lambda: services.row_count == 4)
        spans = Counter(span.service_name for span in all_spans(app.services.store))
        assert table_names(services) == sorted(spans, key=lambda name: (-spans[name], name))
        assert "everything held" in screen_text(app)
        assert screen.query_one("#stats-rate").data  # the highlighted service's rate over time
        await pilot.press("w")
        assert screen.window == 60
        await wait_until(pilot, lambda: "last 1 min" in screen_text(app))
        await pilot.press("3")
        assert screen.window == 900
        await pilot.press("a")
        assert screen.window is None
        await pilot.press("down")
        chosen = table_names(services)[1]
        assert screen.chosen == (SERVICE, chosen)
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, StatsScreen)
        assert app.traces.query_one(FilterBar).value == filter_for(SERVICE, chosen)


async def test_enter_on_a_model_row_puts_its_query_in_the_filter_bar() -> None:
    app = demo_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 6)
        await pilot.press("number_sign")
        screen = app.screen
        assert isinstance(screen, StatsScreen)
        models = screen.query_one("#stats-models", DataTable)
        await wait_until(pilot, lambda: models.row_count > 0)
        await pilot.press("tab")
        assert models.has_focus
        first = table_names(models)[0]
        assert screen.chosen == (MODEL, first)
        await pilot.press("enter")
        await pilot.pause()
        assert app.traces.query_one(FilterBar).value == filter_for(MODEL, first)
        await pilot.press("number_sign")
        assert isinstance(app.screen, StatsScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, StatsScreen)
