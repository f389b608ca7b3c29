"""The doctor's diagnoses where the user is looking, and the Sources screen, in the real app fed by real
SDK exporters (one of them misconfigured as a user would)."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from textual.widgets import DataTable

from support.app import SIZE, make_app, screen_text, trace_list_lines, wait_until
from support.receivers import Running, export, send
from support.sdk_spans import nested_trace, record
from tui.app.screens.sources import SourcesScreen
from tui.app.textual_compat import notification_texts


async def test_a_wrong_path_is_explained_in_the_empty_list_and_once_as_a_notification(
        app_receivers: Running) -> None:
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT given the base URL: the SDK posts to "/" and gets 404s.
        exporter = HttpSpanExporter(endpoint=app_receivers.http_url, timeout=5)
        try:
            for _ in range(2):
                assert await export(exporter, record(nested_trace)) is SpanExportResult.FAILURE
        finally:
            exporter.shutdown()
        await wait_until(pilot, lambda: "their exports fail" in screen_text(app))
        lines = app.traces.trace_list.empty_lines
        problem = next(line for line in lines if line.startswith("  ! "))
        assert problem.startswith("  ! 127.0.0.1 sent an export to /, which is not an OTLP path: the URL lacks "
                                  "/v1/traces: OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL")
        assert lines.index(problem) < lines.index("From an app instrumented with an OpenTelemetry SDK:")
        await wait_until(pilot, lambda: any("which is not an OTLP path" in n for n in notification_texts(app)))
        assert sum("which is not an OTLP path" in n for n in notification_texts(app)) == 1  # once, not per attempt


async def test_sources_screen_lists_each_exporter_and_enter_filters_the_list_to_its_service(
        app_receivers: Running) -> None:
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await send(app_receivers, record(nested_trace, "checkout"))
        await send(app_receivers, record(nested_trace, "billing"), transport="grpc")
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 2)
        await pilot.press("x")
        assert isinstance(app.screen, SourcesScreen)
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        rows = [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]
        by_service = {row[2]: row for row in rows}
        assert set(by_service) == {"checkout", "billing"}
        assert by_service["checkout"][:2] == ["127.0.0.1", "http-protobuf"]
        assert by_service["billing"][1] == "grpc"
        assert by_service["checkout"][3].startswith("python ")  # telemetry.sdk.language and version
        assert by_service["checkout"][4] == "traces"
        assert "2 sources" in screen_text(app)
        table.move_cursor(row=rows.index(by_service["billing"]))
        await pilot.press("enter")
        assert not isinstance(app.screen, SourcesScreen)
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        assert app.traces.filter_text == "service.name=billing"
        assert "billing" in trace_list_lines(app)[0]


async def test_names_from_the_network_are_shown_as_sent_never_read_as_markup(app_receivers: Running) -> None:
    hostile = "svc[/x] [link=http://evil]\x1b]0;pwned\x07"
    app = make_app(app_receivers)
    async with app.run_test(size=SIZE) as pilot:
        await send(app_receivers, record(nested_trace, hostile))
        await wait_until(pilot, lambda: app.traces.trace_list.index.trace_count == 1)
        await pilot.press("x")
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.get_row_at(0)[2].plain == "svc[/x] [link=http://evil]\\e]0;pwned\\x07"
        assert "svc[/x] [link=http://evil]" in screen_text(app)
