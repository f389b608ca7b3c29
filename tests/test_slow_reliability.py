"""Long runs, kept out of `make test`: `make slow` (pytest -m slow). Each writes its figures to
bench/results/reliability.json, which the README's Reliability table quotes.

Durations: OVERLOAD_SECONDS (default 60), SOAK_SECONDS (default 600), FUZZ_EXAMPLES (default 20000).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.host import free_port, rss_bytes
from support.processes import COMMAND, started
from support.sdk_spans import nested_trace, record
from tui.app.app import OllamaTuiApp
from tui.gc_policy import IDLE_SECONDS, release_free_memory, tune_gc
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig
from tui.receiver.decode import BadRequest, ExportTraceServiceRequest, parse_json, parse_protobuf, spans_from_request
from tui.receiver.ingest import BACK_PRESSURE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "reliability.json"
LOAD = ROOT / "bench" / "load.py"


def record_figure(name: str, figures: dict[str, object]) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[name] = {"date": time.strftime("%Y-%m-%d"), **figures}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=2))


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# --- fuzzing ----------------------------------------------------------------------------------------

FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20000"))
_tried = {"protobuf": 0, "json": 0}


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=4096))
def test_fuzz_protobuf_decode(body: bytes) -> None:
    _tried["protobuf"] += 1
    try:
        decoded = spans_from_request(parse_protobuf(ExportTraceServiceRequest, body))
    except BadRequest:
        return
    for span in decoded.spans:
        span.attributes, span.events, span.links  # noqa: B018


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(st.binary(max_size=2048), st.text(max_size=2048).map(str.encode),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=16),
                                   lambda c: st.lists(c, max_size=4) | st.dictionaries(
                                       st.sampled_from(["resourceSpans", "scopeSpans", "spans", "traceId", "spanId",
                                                        "attributes", "key", "value", "stringValue", "kind"]), c,
                                       max_size=4), max_leaves=40).map(lambda d: json.dumps(d).encode())))
def test_fuzz_json_decode(body: bytes) -> None:
    _tried["json"] += 1
    try:
        spans_from_request(parse_json(ExportTraceServiceRequest, body))
    except BadRequest:
        return


def test_fuzz_figures() -> None:
    """Runs after the two fuzz tests (file order): records how many inputs they tried."""
    record_figure("fuzz", {"protobuf_inputs": _tried["protobuf"], "json_inputs": _tried["json"],
                           "crashes": 0, "command": "make slow"})


# --- soak -------------------------------------------------------------------------------------------
# Before the overload run (pytest keeps file order): the soak measures RSS, and a flood leaves the
# allocator holding memory in this process that no trim fully gives back.

async def test_soak_steady_rate_with_eviction_flat_memory() -> None:
    """A steady 5 000 spans/s from a separate process (bench/load.py --rate) with eviction active.

    The sender must be another process: the OpenTelemetry SDK keeps a little for every
    TracerProvider it creates, which made an in-process sender look like a leak of ours.
    """
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    tune_gc()
    # Start from a clean heap: whatever ran before in this process may have left free pages in the C
    # heap, which would be handed back during the soak and read as a falling slope.
    gc.collect()
    release_free_memory()
    receivers = OtlpReceivers(ReceiverConfig(grpc_port=0, http_port=0))
    await receivers.start()
    store = TraceStore(50_000)
    app = OllamaTuiApp(receivers, store)
    samples: list[tuple[float, int]] = []
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            load = await asyncio.create_subprocess_exec(
                sys.executable, str(LOAD), "--transport", "grpc", "--port", str(receivers.grpc.port),
                "--seconds", str(seconds), "--rate", "5000", "--batch", "100", stdout=asyncio.subprocess.PIPE)
            assert load.stdout is not None
            await load.stdout.readline()  # ready
            warm_up = min(60.0, seconds / 5)
            start = time.monotonic()
            await pilot.pause(warm_up)
            tasks_at_start, fds_at_start = len(asyncio.all_tasks()), open_fds()
            while load.returncode is None and time.monotonic() - start < seconds + 30:
                samples.append((time.monotonic() - start, rss_bytes()))
                await pilot.pause(5.0)
            out, _ = await load.communicate()
            sent = json.loads(out.decode().strip().splitlines()[-1])["spans_sent"]
            await pilot.pause(1.0)
            tasks_at_end, fds_at_end = len(asyncio.all_tasks()), open_fds()
        xs = [x for x, _ in samples]
        ys = [y for _, y in samples]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        covariance = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
        slope = covariance / sum((x - mean_x) ** 2 for x in xs)
        record_figure("soak", {
            "seconds": seconds, "rate_spans_per_second": 5000, "spans_accepted": receivers.stats.spans_accepted,
            "evicted_spans": store.evicted_spans, "rss_after_warm_up_mb": ys[0] / 2**20, "rss_end_mb": ys[-1] / 2**20,
            "rss_slope_kb_per_min": slope * 60 / 1024, "tasks": [tasks_at_start, tasks_at_end],
            "fds": [fds_at_start, fds_at_end], "command": "make slow"})
        assert sent == receivers.stats.spans_accepted == store.spans_added
        assert store.evicted_spans > 0
        assert tasks_at_end <= tasks_at_start + 2 and fds_at_end <= fds_at_start + 2
    finally:
        await receivers.stop()


# --- overload ---------------------------------------------------------------------------------------

async def test_overload_back_pressure_bounded_memory_steady_screen() -> None:
    """More exporters than the app can take (16 gRPC + 48 HTTP, each sending again as soon as it is
    answered) for OVERLOAD_SECONDS against the full app with its default receiver settings.

    The loop falls behind, so exporters are told to retry; every refusal a sender saw is counted by
    the app, every span a sender was told "accepted" is stored or evicted, the list keeps updating,
    and both transports get their share.
    OVERLOAD_BACK_PRESSURE=0 switches the loop-lateness refusals off, to measure what they buy.
    """
    seconds = float(os.environ.get("OVERLOAD_SECONDS", "60"))
    back_pressure = os.environ.get("OVERLOAD_BACK_PRESSURE", "1") != "0"
    exporters = {"grpc": 16, "http": 48}
    tune_gc()
    receivers = OtlpReceivers(ReceiverConfig(grpc_port=0, http_port=0))
    await receivers.start()
    if not back_pressure:
        receivers.ingest.loop_lag = None
    store = TraceStore(200_000)
    app = OllamaTuiApp(receivers, store)
    frames: list[float] = []
    lateness: list[float] = []

    async def sample_lateness() -> None:
        while True:
            await asyncio.sleep(0.1)
            lateness.append(receivers.loop_lag.last_lateness)

    try:
        async with app.run_test(size=(160, 45)) as pilot:
            screen = app.traces
            original = screen._apply  # looked up on each tick, so an instance attribute wraps it

            def counting_apply(changes) -> None:
                original(changes)
                frames.append(time.monotonic())

            screen._apply = counting_apply  # type: ignore[method-assign]
            loads = [await asyncio.create_subprocess_exec(
                sys.executable, str(LOAD), "--transport", transport, "--port",
                str(receivers.grpc.port if transport == "grpc" else receivers.http.port),
                "--concurrency", str(count), "--seconds", str(seconds), stdout=asyncio.subprocess.PIPE)
                for transport, count in exporters.items()]
            sampler = asyncio.create_task(sample_lateness())
            peak = 0
            started = time.monotonic()
            while any(load.returncode is None for load in loads):
                await pilot.pause(1.0)
                peak = max(peak, rss_bytes())
                if time.monotonic() - started > seconds + 60:
                    raise AssertionError("load generators did not finish")
            sampler.cancel()
            totals = {transport: json.loads((await load.communicate())[0].decode().strip().splitlines()[-1])
                      for transport, load in zip(exporters, loads, strict=True)}
            sent = sum(t["spans_sent"] for t in totals.values())
            refused = sum(t["refused_requests"] for t in totals.values())
            await pilot.pause(IDLE_SECONDS + 2.0)  # the flood is over: the idle collection gives memory back
            after_flood = rss_bytes()
            stats = receivers.stats
            # Back-pressure answered, and every refusal the exporters saw is one the app counted.
            assert refused == stats.retries_asked
            assert refused > 0 or not back_pressure
            # Nothing lost silently: every span a sender was told "accepted" is stored, evicted or replaced.
            assert sent == stats.spans_accepted == store.spans_added
            assert store.spans_added == store.span_count + store.evicted_spans + store.spans_replaced
            assert store.span_count <= store.max_spans
            # Memory bounded: ~570 MB measured on 2 cores with 200 k spans held; twice that is a leak.
            assert peak < 1.2 * 2**30
            assert len(frames) >= seconds  # the list kept being updated through the flood
            # Neither transport is starved: per exporter, gRPC gets at least a quarter of HTTP's share
            # (it got 1/14 when grpc.aio took new calls one at a time through the busy loop).
            per_exporter = {transport: totals[transport]["spans_sent"] / count
                            for transport, count in exporters.items()}
            assert min(per_exporter.values()) >= max(per_exporter.values()) / 4, per_exporter
            gaps = [b - a for a, b in pairwise(frames)]
            late = sorted(lateness)
            record_figure("overload" if back_pressure else "overload_without_back_pressure", {
                "seconds": seconds,
                "exporters": (f"{exporters['grpc']} gRPC + {exporters['http']} HTTP, "
                              "each sending again as soon as answered"),
                "spans_accepted": sent, "spans_per_second": sent / seconds, "retries_asked": refused,
                "spans_accepted_by_transport": {transport: t["spans_sent"] for transport, t in totals.items()},
                "spans_refused_queue_full": stats.spans_rejected[BACK_PRESSURE],
                "loop_lateness_ms": {"p50": late[len(late) // 2] * 1000, "p99": late[int(len(late) * 0.99)] * 1000,
                                     "max": late[-1] * 1000},
                "evicted_spans": store.evicted_spans, "peak_rss_mb": peak / 2**20,
                "rss_after_flood_mb": after_flood / 2**20, "screen_updates": len(frames),
                "longest_gap_between_updates_ms": max(gaps) * 1000 if gaps else None,
                "command": "make slow" if back_pressure else "OVERLOAD_BACK_PRESSURE=0 make slow"})
    finally:
        await receivers.stop()


# --- restarts ---------------------------------------------------------------------------------------

def _start_print(stack: ExitStack, port_args: list[str]) -> subprocess.Popen[str]:
    """``ollama-tui --print`` listening, ended with ``stack`` however the test ends (see support.processes)."""
    proc = stack.enter_context(started([*COMMAND, "--print", *port_args], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, text=True))
    assert proc.stderr is not None
    proc.stderr.readline()  # the banner: listening
    return proc


def test_ctrl_c_during_a_flood_and_exporters_reconnecting_after_a_restart() -> None:
    grpc_port, http_port = free_port(), free_port()
    ports = ["--grpc-port", str(grpc_port), "--http-port", str(http_port)]
    flood = {"grpc": (grpc_port, 4), "http": (http_port, 16)}  # (port, exporters) per transport
    with ExitStack() as stack:
        proc = _start_print(stack, ports)
        # Both transports: HTTP requests cut off mid-body by the shutdown once printed a traceback each.
        loads = [stack.enter_context(started([sys.executable, str(LOAD), "--transport", transport, "--port",
                                              str(port), "--concurrency", str(exporters), "--seconds", "30"],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                 for transport, (port, exporters) in flood.items()]
        time.sleep(5)
        started_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        stop_seconds = time.monotonic() - started_at
        for load in loads:
            load.kill()
    assert proc.returncode == 0 and "spans accepted" in err
    assert "Traceback" not in err and "Error handling request" not in err, err[-2000:]

    # An exporter that outlives the app: the same exporter object works again after a restart.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_port}", insecure=True, timeout=10)
    results = []
    for _ in range(2):
        with ExitStack() as stack:
            proc = _start_print(stack, ports)
            results.append(exporter.export(record(nested_trace)).name)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        assert "4 spans accepted" in err
    exporter.shutdown()
    assert results == ["SUCCESS", "SUCCESS"]
    flood_text = f"{flood['grpc'][1]} gRPC + {flood['http'][1]} HTTP exporters"
    record_figure("restart", {"flood": flood_text, "ctrl_c_during_flood_exit_seconds": stop_seconds,
                              "exit_status": 0, "exporter_reconnected_after_restart": True, "command": "make slow"})
