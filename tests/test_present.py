"""The text builders behind the screen (header, detail items, empty state, formats), as plain data."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from rich.style import Style

from support.app import SIZE, make_app, screen_text, wait_until
from support.demo_store import demo_store
from support.event_loop import eventually
from support.receivers import export, make_exporter, running_receivers
from support.sdk_spans import nested_trace, record
from tui.app.commands import COMMANDS, available_commands
from tui.app.present.clipboard import copy_report
from tui.app.present.detail import Item, attribute_items, has_llm_data, llm_items, timeline_lines, wall_time
from tui.app.present.empty_state import empty_state_lines, no_match_lines
from tui.app.present.header import Counts, ViewState, header_parts
from tui.app.traces_screen import TracesScreen
from tui.console.run import summary
from tui.model.text import bar_extent, format_age, format_tokens
from tui.model.trace_list import ListRow
from tui.receiver import ReceiverConfig
from tui.receiver.ingest import BACK_PRESSURE

LISTENING = [("grpc", "127.0.0.1:4317"), ("http", "127.0.0.1:4318")]


def header(counts: Counts | None = None, **view: bool | str) -> str:
    return "".join(text for text, _ in header_parts(LISTENING, counts or Counts(), ViewState(**view)))  # type: ignore[arg-type]


def tones(counts: Counts | None = None, **view: bool | str) -> dict[str, str]:
    parts = header_parts(LISTENING, counts or Counts(), ViewState(**view))  # type: ignore[arg-type]
    return {text.strip(): tone for text, tone in parts if tone}


# --- header -----------------------------------------------------------------------------------------

def test_header_says_where_it_listens_and_what_it_holds() -> None:
    text = header(Counts(traces=1_200, spans=34_567, spans_per_second=812.4))
    assert text.startswith("grpc 127.0.0.1:4317 · http 127.0.0.1:4318")
    assert "1,200 traces · 34,567 spans" in text and "812 spans/s" in text
    assert text.endswith("following")


def test_header_shows_the_share_a_filter_keeps() -> None:
    text = header(Counts(traces=6, spans=10, shown=1, scanned=0.4), filter_text="mistral")
    assert "1/6 traces · 10 spans · filter 'mistral' (searching… 40%)" in text


def test_header_names_errors_only() -> None:
    assert "0/6 traces · 10 spans · errors only" in header(Counts(traces=6, spans=10), errors_only=True)


def test_losses_are_coloured_only_when_there_are_some() -> None:
    assert tones(Counts()).get("rejected 0") is None
    coloured = tones(Counts(rejected=3, evicted=2))
    assert (coloured["rejected 3"], coloured["evicted 2"]) == ("error", "warning")


def test_paused_says_how_many_spans_wait_and_overload_stands_beside_it() -> None:
    text = header(Counts(waiting=1, retries_asked=4), paused=True, overloaded=True)
    assert text.endswith("OVERLOADED  PAUSED · 1 span waiting")
    assert "asked to retry 4" in text
    assert tones(Counts(waiting=2), paused=True)["PAUSED · 2 spans waiting"] == "paused"


def test_holding_the_selection_when_not_following() -> None:
    assert header(following=False).endswith("holding selection")


def test_forwarding_trouble_is_shown() -> None:
    text = header(Counts(forwarding=(12, 3, "connection refused")))
    assert "→ forward: 12 waiting, 3 lost (connection refused)" in text


# --- empty list -------------------------------------------------------------------------------------

def test_empty_state_gives_copy_paste_exports_for_the_real_ports() -> None:
    lines = empty_state_lines(LISTENING)
    assert "  export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318" in lines
    assert "  export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces" in lines
    assert "  export OTEL_EXPORTER_OTLP_TRACES_INSECURE=true" in lines


def test_empty_state_under_tls_asks_for_the_certificate_not_insecure() -> None:
    lines = empty_state_lines(LISTENING, scheme="https")
    assert any("OTEL_EXPORTER_OTLP_CERTIFICATE" in line for line in lines)
    assert not any("INSECURE" in line for line in lines)


def test_no_match_names_the_filter_and_the_way_back() -> None:
    assert no_match_lines(6, "nothing", True)[0] == "No traces matching 'nothing' and with errors among 6 held."


# --- detail items -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rows() -> dict[str, ListRow]:
    store = demo_store()
    found = {}
    for trace in store:
        found[f"trace:{trace.name}"] = ListRow(trace)
        for row in trace.rows():
            found[row.span.name] = ListRow(trace, row)
    return found


def test_items_name_tones_and_the_palette_styles_them(rows: dict[str, ListRow]) -> None:
    items = llm_items(rows["chat qwen3"])
    system = next(item for item in items if item.title == "system (instructions)")
    assert system.tone == "system"
    styled = system.render(lambda tone: Style(bold=True) if tone == "system" else Style())
    assert styled.spans[0].style == Style(bold=True)


def test_an_error_status_is_toned_as_an_error(rows: dict[str, ListRow]) -> None:
    status = next(item for item in attribute_items(rows["trace:GET /forecast"]) if item.title == "status")
    assert status.tone == "error" and status.body.startswith("ERROR")


def test_llm_data_is_detected_without_building_the_view(rows: dict[str, ListRow]) -> None:
    for key, row in rows.items():
        assert has_llm_data(row) == bool(llm_items(row)), key


def test_a_heading_cannot_be_confused_with_an_item() -> None:
    assert Item("Prompt", heading=True).render().plain == "\n Prompt "


def test_timeline_bars_use_the_shared_extent(rows: dict[str, ListRow]) -> None:
    trace = rows["trace:agent run"].trace
    lines = timeline_lines(trace, 100)
    root = lines[0][1].plain
    label_width = max(12, min(40, 100 // 3))
    bar_width = max(10, 100 - label_width - 12)
    bar = root[label_width + 1:label_width + 1 + bar_width]
    assert bar == "█" * bar_width  # the root spans the whole trace


# --- formats ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("count", "text"), [(None, "–"), (0, "0"), (9_999, "9999"), (12_345, "12k"),
                                             (1_250_000, "1.2M")])
def test_token_counts_fit_five_cells(count: int | None, text: str) -> None:
    assert format_tokens(count) == text


@pytest.mark.parametrize(("seconds", "text"), [(-3, "0s"), (42, "42s"), (300, "5m"), (3 * 3600, "3h"),
                                               (2 * 86400, "2d")])
def test_ages(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


@pytest.mark.parametrize(("start", "end", "extent"), [(0, 100, (0, 12)), (0, 0, (0, 1)), (50, 100, (6, 6)),
                                                      (100, 100, (11, 1)), (-10, 200, (0, 12))])
def test_bar_extent_is_inside_the_bar_and_never_empty(start: int, end: int, extent: tuple[int, int]) -> None:
    assert bar_extent(start, end, 0, 100, 12) == extent


def test_bar_extent_of_an_instant_trace_fills_the_bar() -> None:
    assert bar_extent(5, 5, 5, 5, 12) == (0, 12)


# --- command palette --------------------------------------------------------------------------------

def test_every_palette_command_runs_an_action_of_the_screen() -> None:
    for command in COMMANDS:
        assert callable(getattr(TracesScreen, f"action_{command.action}", None)), command.action


def test_chat_commands_only_with_the_chat_pane() -> None:
    assert not any(c.title.startswith("Chat") for c in available_commands(with_chat=False))
    assert sum(c.title.startswith("Chat") for c in available_commands(with_chat=True)) == 3


@pytest.mark.parametrize("width", [60, 80, 100, 120])
def test_a_narrow_header_drops_the_least_important_first_but_never_the_state(width: int) -> None:
    counts = Counts(traces=6, spans=10, waiting=3)
    narrow = "".join(t for t, _ in header_parts(LISTENING, counts, ViewState(paused=True), width))
    assert len(narrow) <= width < len(header(counts, paused=True))
    assert narrow.endswith("PAUSED · 3 spans waiting")
    assert "6 traces · 10 spans" in narrow  # what is held outlasts everything but the state


def test_at_80_columns_the_addresses_go_first() -> None:
    narrow = "".join(t for t, _ in header_parts(LISTENING, Counts(), ViewState(), 80))
    assert "127.0.0.1" not in narrow and "spans/s" in narrow


def test_losses_outlast_the_rate_when_there_are_some() -> None:
    parts = header_parts(LISTENING, Counts(rejected=7), ViewState(), 70)
    narrow = "".join(t for t, _ in parts)
    assert "rejected 7" in narrow and "spans/s" not in narrow


def test_asked_to_retry_and_duplicates_stand_apart_from_losses() -> None:
    counts = Counts(rejected=2, evicted=0, retries_asked=72, duplicates=5)
    assert "rejected 2 · evicted 0 · asked to retry 72 · duplicates ignored 5" in header(counts)
    coloured = tones(counts)
    assert (coloured["rejected 2"], coloured["asked to retry 72"], coloured["duplicates ignored 5"]) == (
        "error", "warning", "note")
    assert "rejected 0" not in tones(Counts(retries_asked=72))  # nothing lost: not in red


def test_spans_left_out_of_capped_traces_are_counted_beside_the_evicted() -> None:
    counts = Counts(evicted=10, capped=290_000)
    assert "rejected 0 · evicted 10 · over trace cap 290,000" in header(counts)
    assert tones(counts)["over trace cap 290,000"] == "warning"
    assert "over trace cap" not in header(Counts())


async def test_spans_refused_with_back_pressure_then_retried_are_not_shown_as_lost() -> None:
    """Before, the header said "rejected 4" in red for spans the exporter's retry then delivered."""
    config = ReceiverConfig(grpc_port=0, http_port=0, queue_spans=5)
    async with running_receivers(config, pumping=False) as running:
        stats = running.receivers.stats
        first, second = record(nested_trace), record(nested_trace)
        exporter = make_exporter(running, "http", timeout=30)
        try:
            assert await export(exporter, first) is SpanExportResult.SUCCESS  # fills the queue: nothing pumps it
            retrying = asyncio.create_task(export(exporter, second))
            await eventually(lambda: stats.spans_rejected[BACK_PRESSURE] >= len(second))
            app = make_app(running)  # the app pumps the queue: the exporter's retry gets in
            async with app.run_test(size=SIZE) as pilot:
                assert await retrying is SpanExportResult.SUCCESS
                await wait_until(pilot, lambda: f"asked to retry {stats.retries_asked}" in screen_text(app))
                assert running.store.span_count == len(first) + len(second)
                assert "rejected 0 · evicted 0 · asked to retry" in screen_text(app).splitlines()[0]
        finally:
            exporter.shutdown()
    assert "lost" not in summary(stats, running.store)
    assert f"{stats.retries_asked} exports asked to retry" in summary(stats, running.store)


def test_times_are_local_wall_time_with_milliseconds_and_the_offset_into_the_trace(
        rows: dict[str, ListRow], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30 all year
    time.tzset()
    try:
        items = {item.title: item.body for item in attribute_items(rows["fetch upstream"])}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert items["start"] == "2027-01-15 13:30:35.040 +0530 · +40ms from the trace's start"
    assert items["start, end (ns since epoch)"].startswith("1800000035040000000, ")


def test_the_largest_otlp_timestamp_is_still_a_date() -> None:
    assert wall_time(2**64 - 1, 2**64 - 1).endswith(" · +0ns from the trace's start")


@pytest.mark.parametrize(("environ", "says"), [
    ({}, "to the terminal's clipboard (OSC 52); if it did not arrive, Y saves it to a file"),
    ({"TMUX": "/tmp/tmux-0/default,1,0"}, "tmux passes it on only with `set -g set-clipboard on`"),
    ({"STY": "1234.pts-0"}, "GNU screen does not pass it on"),
])
def test_copy_says_where_the_text_went_and_the_fallbacks(environ: dict[str, str], says: str) -> None:
    report = copy_report("prompt", 1_234, environ)
    assert report.startswith("Sent 'prompt' (1,234 characters)") and says in report
    assert "o shows it to select by hand" in report


@pytest.mark.parametrize(("host", "open_"), [("127.0.0.1", False), ("[::1]", False), ("localhost", False),
                                            ("0.0.0.0", True), ("[::]", True), ("192.0.2.7", True),
                                            ("myhost", True)])
def test_listening_beyond_this_machine_stays_in_the_narrowest_header(host: str, open_: bool) -> None:
    listening = [("grpc", f"{host}:4317"), ("http", f"{host}:4318")]
    narrow = "".join(t for t, _ in header_parts(listening, Counts(), ViewState(), 60))
    assert ("OPEN TO THE NETWORK" in narrow) is open_
    assert narrow.endswith("following")


def test_header_sparkline_follows_spans_per_second_and_goes_first_when_narrow() -> None:
    from tui.app.present.header import sparkline

    assert sparkline([]) == "" and sparkline([0.0, 0.0]) == ""  # nothing arrived lately: no flat line
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline(list(range(100))) == sparkline(list(range(80, 100)))  # the last 20 samples
    assert len(sparkline(list(range(100)))) == 20
    counts = Counts(traces=3, spans=12, spans_per_second=40.0)
    rates = [10.0, 20.0, 40.0]
    wide = header_parts(LISTENING, counts, ViewState(), 200, rates)
    text = "".join(t for t, _ in wide)
    assert "40 spans/s ▃▅█" in text
    assert dict(wide)[" ▃▅█"] == "muted"
    without = "".join(t for t, _ in header_parts(LISTENING, counts, ViewState(), 200))
    narrow = "".join(t for t, _ in header_parts(LISTENING, counts, ViewState(), len(without), rates))
    assert narrow == without  # the sparkline went first, everything else still fits
