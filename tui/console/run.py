"""The ``--print`` main loop: receivers, the store, and a printer, until Ctrl+C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from tui.console.printer import JsonLinesPrinter, TreePrinter
from tui.gc_policy import FullCollector
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig, ReceiverStats, SpanQueue, pump
from tui.receiver.files import load_into
from tui.receiver.forward import Forwarder

POLL_SECONDS = 0.1


async def run_print(config: ReceiverConfig, *, max_spans: int, as_json: bool,
                    load: list[tuple[str, bytes]] | None = None) -> int:
    """``load`` is the ``--load`` files' (name, bytes)."""
    receivers = OtlpReceivers(config)
    await receivers.start()
    listening = " · ".join(f"{name} {address}" for name, address in receivers.addresses)
    tls = " over TLS" if config.security.tls else ""
    print(f"ollama-tui: receiving OTLP{tls} on {listening} (Ctrl+C to stop)", file=sys.stderr, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    store = TraceStore(max_spans)
    if as_json:
        json_printer = JsonLinesPrinter(sys.stdout)
        worker = asyncio.create_task(_print_json(receivers.queue, json_printer))
        flush = lambda: _drain_json(receivers.queue, json_printer)  # noqa: E731
    else:
        printer = TreePrinter(store, sys.stdout, color=sys.stdout.isatty())
        worker = asyncio.create_task(_print_trees(receivers.queue, store, printer, stop))
        flush = lambda: _drain_trees(receivers.queue, store, printer)  # noqa: E731
    try:
        await load_into(receivers.ingest, load or [])
        await stop.wait()
    finally:
        await receivers.stop()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        flush()
        print(f"ollama-tui: {summary(receivers.stats, store, receivers.forwarders)}", file=sys.stderr, flush=True)
    return 0


async def _print_json(queue: SpanQueue, printer: JsonLinesPrinter) -> None:
    while True:
        printer.write(await queue.get())


def _drain_json(queue: SpanQueue, printer: JsonLinesPrinter) -> None:
    while not queue.empty():
        printer.write(queue.get_nowait())


async def _print_trees(queue: SpanQueue, store: TraceStore, printer: TreePrinter, stop: asyncio.Event) -> None:
    pumping = asyncio.create_task(pump(queue, store))
    collector = FullCollector()
    try:
        while not stop.is_set():
            printer.poll()
            collector.poll(store.spans_added)
            await asyncio.sleep(POLL_SECONDS)
    finally:
        pumping.cancel()


def _drain_trees(queue: SpanQueue, store: TraceStore, printer: TreePrinter) -> None:
    while not queue.empty():
        store.add_spans(queue.get_nowait())
    printer.poll(flush=True)


def summary(stats: ReceiverStats, store: TraceStore, forwarders: list[Forwarder] | None = None) -> str:
    """One line of totals, so a CI log shows whether anything was refused or evicted."""
    forwarders = forwarders or []
    parts = [f"{stats.spans_accepted} spans accepted", f"{len(store)} traces held"]
    if stats.spans_rejected:
        parts.append(
            "spans refused: " + ", ".join(f"{n} {reason}" for reason, n in sorted(stats.spans_rejected.items()))
        )
    if stats.requests_rejected:
        parts.append(
            "requests refused: " + ", ".join(f"{n} {why}" for why, n in sorted(stats.requests_rejected.items()))
        )
    if store.evicted_spans:
        parts.append(f"{store.evicted_spans} spans evicted")
    for forwarder in forwarders:
        lost = sum(forwarder.stats.lost.values())
        parts.append(f"forwarded {forwarder.stats.sent_spans} spans to {forwarder.url}"
                     + (f" ({lost} requests lost: {dict(forwarder.stats.lost)})" if lost else ""))
    if stats.log_records or stats.metric_points:
        parts.append(f"{stats.log_records} log records and {stats.metric_points} metric points received")
    return "; ".join(parts)
