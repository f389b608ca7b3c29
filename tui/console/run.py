"""The ``--print`` main loop: receivers, the store, and a printer, until Ctrl+C or SIGTERM, or, for
``--print --load`` without listening flags, until the files are printed."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

from tui.console.printer import JsonLinesPrinter, TreePrinter
from tui.gc_policy import FullCollector
from tui.model.store import TraceStore
from tui.receiver import OtlpReceivers, ReceiverConfig, ReceiverStats, SpanQueue, pump
from tui.receiver.files import LoadResult, load_into
from tui.receiver.forward import Forwarder

POLL_SECONDS = 0.1


async def run_print(config: ReceiverConfig, *, max_spans: int, as_json: bool,
                    load: list[tuple[str, bytes]] | None = None, listen: bool = True) -> int:
    """``load`` is the ``--load`` files' (name, bytes). With ``listen`` False the program ends once they are
    printed (``config`` then names no port: nothing listens)."""
    receivers = OtlpReceivers(config)
    await receivers.start()
    if listen:
        listening = " · ".join(f"{name} {address}" for name, address in receivers.addresses)
        tls = " over TLS" if config.security.tls else ""
        print(f"ollama-tui: receiving OTLP{tls} on {listening} (Ctrl+C to stop)", file=sys.stderr, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in stop_signals():
        loop.add_signal_handler(sig, stop.set)

    store = TraceStore(max_spans)
    loaded = asyncio.Event()
    if as_json:
        json_printer = JsonLinesPrinter(sys.stdout)
        worker = asyncio.create_task(_print_json(receivers.queue, json_printer))
        flush = lambda: _drain_json(receivers.queue, json_printer)  # noqa: E731
    else:
        printer = TreePrinter(store, sys.stdout, color=sys.stdout.isatty())
        worker = asyncio.create_task(_print_trees(receivers.queue, store, printer, loaded))
        flush = lambda: _drain_trees(receivers.queue, store, printer)  # noqa: E731
    try:
        if load:
            loading = asyncio.create_task(load_into(receivers.ingest, load))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([loading, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not loading.done():  # Ctrl+C while a large file is read: print what is in, as at any stop
                loading.cancel()
                return 0
            result = loading.result()
            flush()  # every loaded trace, at once and in order, before anything received is printed
            _report(result)
        loaded.set()
        if listen:
            await stop.wait()
    finally:
        await receivers.stop()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        flush()
        print(f"ollama-tui: {summary(receivers.stats, store, receivers.forwarders)}", file=sys.stderr, flush=True)
    return 0


def stop_signals() -> list[signal.Signals]:
    """SIGTERM, and SIGINT unless it was ignored when the program started.

    A shell starts a script's background jobs (``ollama-tui --print &``) with SIGINT ignored, so that the
    terminal's Ctrl+C, meant for the command in the foreground, spares them; Python honours that (it
    then installs no ``KeyboardInterrupt`` handler), and so does this program, from start-up to exit,
    instead of starting to obey SIGINT halfway. SIGTERM (``kill``) always ends it the same clean way.
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    return [signal.SIGTERM] if ignored else [signal.SIGINT, signal.SIGTERM]


def _report(result: LoadResult) -> None:
    print(f"ollama-tui: {result.summary()}", file=sys.stderr)
    for warning in result.warnings():
        print(f"ollama-tui: warning: {warning}", file=sys.stderr)
    sys.stderr.flush()


async def _print_json(queue: SpanQueue, printer: JsonLinesPrinter) -> None:
    while True:
        printer.write(await queue.get())


def _drain_json(queue: SpanQueue, printer: JsonLinesPrinter) -> None:
    while not queue.empty():
        printer.write(queue.get_nowait())


async def _print_trees(queue: SpanQueue, store: TraceStore, printer: TreePrinter, loaded: asyncio.Event) -> None:
    """Store what arrives from the start, but print nothing until the ``--load`` files are in: they are then
    printed at once (see ``run_print``), so their order does not depend on how the reading was timed."""
    pumping = asyncio.create_task(pump(queue, store))
    collector = FullCollector()
    try:
        await loaded.wait()
        while True:
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
