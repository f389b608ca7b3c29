"""Regenerate the SVG screenshots in this folder from real app states: `make screenshots`.

Each state is the real app, run headless with the deterministic demo store the snapshot tests use
(GenAI traces in every attribute convention, fixed ids and clock), driven by key presses. The chat
screenshot talks to the tests' fake Ollama over loopback, so its turn is a real traced request. The
Output pane and Sources screenshots run real receivers (on 4317/4318 when free, so the text names the
usual ports; else on free ones): a real child program run with the environment ollama-tui gives it, and
real SDK exporters, one of them misconfigured as a user would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from textual.pilot import Pilot
from textual.widgets import RichLog

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from support.demo_store import CLOCK_NOW, demo_store  # noqa: E402
from support.fake_ollama import FakeOllama  # noqa: E402
from support.genai_spans import agent_with_tools  # noqa: E402
from support.receivers import Running, export, send  # noqa: E402
from support.sdk_spans import record  # noqa: E402
from test_genai_recordings import RECORDINGS  # noqa: E402
from tui.app.app import OllamaTuiApp  # noqa: E402
from tui.app.screens.compare import CompareScreen  # noqa: E402
from tui.app.screens.sources import SourcesScreen  # noqa: E402
from tui.app.widgets.chat import ChatTurn  # noqa: E402
from tui.app.widgets.output import ProgramOutput  # noqa: E402
from tui.model.store import TraceStore  # noqa: E402
from tui.programs import ProgramSet  # noqa: E402
from tui.receiver import OtlpReceivers, PortUnavailable, ReceiverConfig  # noqa: E402

SIZE = (150, 40)
TO_LLM_SPAN = ["j", "j", "j", "j", "enter", "l", "j"]
STATES = {
    "llm-span.svg": TO_LLM_SPAN,
    "timeline.svg": [*TO_LLM_SPAN, "t", "t", "t"],
    "errors-and-exception.svg": ["e", "enter", "l", "j", "t"],
    "help.svg": ["question_mark"],
    "stats.svg": ["number_sign"],
    "empty-state.svg": None,
}


async def shoot(name: str, keys: list[str] | None) -> None:
    store = demo_store()
    if keys is None:
        store.clear()
        store.drain_changes()
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store, clock=lambda: CLOCK_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        for key in keys or []:
            await pilot.press(key)
        await pilot.pause(0.3)
        app.save_screenshot(name, str(HERE))
    print(f"wrote screenshots/{name}")


async def shoot_conversation(name: str = "conversation.svg") -> None:
    """An agent run with a tool call: its trace expanded, the Conversation tab on the second LLM call."""
    store = demo_store(as_recorded=[record(agent_with_tools, "weather-agent")])
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), store, clock=lambda: CLOCK_NOW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("g", "enter", "tab", "down", "down", "down", "down")
        await pilot.pause(0.3)
        app.save_screenshot(name, str(HERE))
    print(f"wrote screenshots/{name}")


async def shoot_chat(name: str = "chat.svg") -> None:
    """The chat pane beside the trace of the turn it just made, its LLM tab open."""
    fake = await FakeOllama(answer=[w + " " for w in (
        "Rayleigh scattering: air molecules scatter **short** (blue) wavelengths of sunlight far more than "
        "long (red) ones, so blue light reaches your eyes from every direction.").split()]).start()
    app = OllamaTuiApp(OtlpReceivers(ReceiverConfig()), demo_store(), chat_host=fake.url)
    try:
        async with app.run_test(size=(200, 45)) as pilot:
            while app.query_one("#chat").model is None:
                await pilot.pause(0.05)
            await pilot.press("a", *[("space" if c == " " else c) for c in "Why is the sky blue?"], "enter")
            while not (app.query(ChatTurn) and "tokens" in str(app.query_one(".turn-status").content)):
                await pilot.pause(0.05)
            await pilot.press("ctrl+t", "enter", "l")
            await pilot.pause(0.3)
            app.save_screenshot(name, str(HERE))
    finally:
        await fake.stop()
    print(f"wrote screenshots/{name}")


async def shoot_replay_and_compare(form: str = "replay.svg", compare: str = "compare.svg") -> None:
    """A recorded gpt-4o-mini call (OpenLLMetry's recording) opened as a replay with ``r``, then sent to the local
    model and compared with the original with ``C``."""
    fake = await FakeOllama(answer=[w + " " for w in (
        "Sunlight is scattered by air molecules, and blue light is scattered far more than red, so the sky "
        "looks **blue**.").split()]).start()
    recording = RECORDINGS / "openllmetry-openai-attributes.jsonl"
    try:
        async with live_receivers() as running:
            app = OllamaTuiApp(running.receivers, running.store, chat_host=fake.url,
                               load=[(recording.name, recording.read_bytes())])
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.query_one("#chat").model is not None and len(running.store) == 3)
                sky = min((s for t in running.store for s in t.spans.values() if "sky" in s.search_text),
                          key=lambda s: s.start_ns)
                await until(pilot, lambda: app.traces.trace_list.select(sky.trace_id, sky.span_id))
                await pilot.press("r")
                await until(pilot, lambda: bool(app.query("ReplayForm")))
                await pilot.pause(0.3)
                app.save_screenshot(form, str(HERE))
                print(f"wrote screenshots/{form}")
                await pilot.press("enter")
                await until(pilot, lambda: bool(app.query(ChatTurn)) and "tokens" in str(
                    app.query_one(".turn-status").content))
                await pilot.press("ctrl+t", "enter", "l", "C")
                await until(pilot, lambda: isinstance(app.screen, CompareScreen))
                await pilot.pause(0.3)
                app.save_screenshot(compare, str(HERE))
                print(f"wrote screenshots/{compare}")
    finally:
        await fake.stop()


@contextlib.asynccontextmanager
async def live_receivers() -> AsyncIterator[Running]:
    """Real receivers the app pumps itself: on the default ports when they are free, else on free ones."""
    receivers = OtlpReceivers(ReceiverConfig())
    try:
        await receivers.start()
    except PortUnavailable:
        receivers = OtlpReceivers(ReceiverConfig(grpc_port=0, http_port=0))
        await receivers.start()
    try:
        yield Running(receivers, TraceStore(1_000_000))
    finally:
        await receivers.stop()


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the screenshot's state did not come within {timeout:g} s")
        await pilot.pause(0.05)


async def shoot_output(name: str = "output.svg") -> None:
    """``ollama-tui -- python traced_app.py``: the program's output in the Output pane below its trace, which
    is selected and expanded. The user had an exporter endpoint of their own set, which the pane names."""
    programs_dir = HERE.parent / "tests" / "programs"
    user_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    user_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "https://collector.internal:4318"
    async with live_receivers() as running:
        here = os.getcwd()
        os.chdir(programs_dir)  # so the command reads as typed: python traced_app.py
        try:
            programs = ProgramSet.for_receivers(
                [[sys.executable, "traced_app.py", "--spans", "4", "--until-term", "flush"]],
                running.receivers.addresses, base_env=user_env)
            await programs.start_all()
        finally:
            os.chdir(here)
        try:
            app = OllamaTuiApp(running.receivers, running.store, programs=programs)
            async with app.run_test(size=SIZE) as pilot:
                log = app.traces.query_one(ProgramOutput).query_one(RichLog)
                await until(pilot, lambda: any(line.text.startswith("waiting for SIGTERM") for line in log.lines))
                await until(pilot, lambda: app.traces.trace_list.index.trace_count == 1
                            and running.store.span_count >= 4)
                await pilot.press("g", "enter")
                await pilot.pause(0.5)
                app.save_screenshot(name, str(HERE))
        finally:
            await programs.stop_all(grace=2.0)
    print(f"wrote screenshots/{name}")


def checkout(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("POST /checkout", kind=trace.SpanKind.SERVER):
        with tracer.start_as_current_span("charge card", kind=trace.SpanKind.CLIENT):
            pass


def billing(tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("invoice.generate"):
        with tracer.start_as_current_span("chat llama3.2", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.request.model", "llama3.2")


async def shoot_sources(name: str = "sources.svg") -> None:
    """The Sources screen: two SDK exporters that work (HTTP and gRPC) and one whose endpoint variable was given
    the base URL, so it posts to / and the doctor names the fix."""
    logging.getLogger("opentelemetry.exporter.otlp.proto.http").setLevel(logging.CRITICAL)  # its 404, expected
    async with live_receivers() as running:
        app = OllamaTuiApp(running.receivers, running.store)
        async with app.run_test(size=(150, 30)) as pilot:
            await send(running, record(checkout, "checkout"))
            await send(running, record(billing, "billing"), transport="grpc")
            wrong = HttpSpanExporter(endpoint=running.http_url, timeout=5)  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
            try:
                assert await export(wrong, record(checkout, "payments")) is SpanExportResult.FAILURE
            finally:
                wrong.shutdown()
            await until(pilot, lambda: app.traces.trace_list.index.trace_count == 2
                        and bool(running.receivers.doctor.problems()))
            await pilot.press("x")
            await pilot.pause(0.5)
            assert isinstance(app.screen, SourcesScreen)
            app.save_screenshot(name, str(HERE))
    print(f"wrote screenshots/{name}")


async def main() -> None:
    for name, keys in STATES.items():
        await shoot(name, keys)
    await shoot_conversation()
    await shoot_chat()
    await shoot_output()
    await shoot_sources()
    await shoot_replay_and_compare()


if __name__ == "__main__":
    asyncio.run(main())
