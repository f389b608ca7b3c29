"""The ``--print`` main loop: receivers, the store, and a printer, until Ctrl+C, SIGTERM or SIGHUP; for
``--print --load`` without listening flags, until the files are printed; for ``--print -- COMMAND``, until
the programs have ended and their last spans are in. However it stops, the programs are stopped first (so
the spans they flush on the way out still arrive), the receivers stop taking requests, what they
acknowledged is printed and written to ``--save``, then the summary."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import TextIO

from tui.console.printer import JsonLinesPrinter, TreePrinter
from tui.console.programs import print_output, print_problems, tell_problems, until_programs_end
from tui.gc_policy import FullCollector
from tui.model.query import Query
from tui.model.store import TraceStore
from tui.programs import ProgramSet, ProgramStartError
from tui.receiver import OtlpReceivers, ReceiverConfig, ReceiverStats, SpanQueue, pump
from tui.receiver.files import LoadResult, load_into
from tui.receiver.forward import Forwarder

POLL_SECONDS = 0.1


async def run_print(config: ReceiverConfig, *, max_spans: int, as_json: bool,
                    load: list[tuple[str, bytes]] | None = None, listen: bool = True, strict: bool = False,
                    commands: list[list[str]] | None = None, follow_last: bool = False,
                    query: Query | None = None) -> int:
    """``load`` is the ``--load`` files' (name, bytes). With ``listen`` False the program ends once they are
    printed (``config`` then names no port: nothing listens). ``strict``: a damaged part of a file is an
    error (status 2) rather than skipped with a warning. ``commands`` are run with their exporters pointed
    here (each ``--run``, then ``-- COMMAND``); the exit status is then theirs. With ``follow_last`` the last
    one is the ``-- COMMAND``: the run ends when it does (the ``--run`` servers beside it are then stopped)
    and its status is ours, as ``--run 'ollama serve' -- pytest`` needs. ``query`` (``--filter``): only the
    traces (trees) with a span that matches it, or (``--json``) the matching spans, are printed."""
    receivers = OtlpReceivers(config)
    recorder = receivers.recorder
    if recorder is not None:  # said once, when it happens (from the writer thread), and again at exit
        recorder.on_error = lambda message: print(f"ollama-tui: {message}", file=sys.stderr, flush=True)
    await receivers.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in stop_signals():  # left in place while stopping: a second one cannot cut the drain short
        loop.add_signal_handler(sig, stop.set)
    # A closed stdout (``| head``) ends the run as Ctrl+C would.
    programs = await _started(commands, receivers, config, sys.stderr if as_json else sys.stdout, stop.set)
    main = programs.programs[-1] if programs is not None and follow_last else None
    if listen:
        listening = " · ".join(f"{name} {address}" for name, address in receivers.addresses)
        tls = " over TLS" if config.security.tls else ""
        print(f"ollama-tui: receiving OTLP{tls} on {listening} (Ctrl+C to stop)", file=sys.stderr, flush=True)

    store = TraceStore(max_spans)
    doctor = asyncio.create_task(tell_problems(receivers.doctor, sys.stderr))
    loaded = asyncio.Event()
    if as_json:
        json_printer = JsonLinesPrinter(sys.stdout, query)
        worker = asyncio.create_task(_print_json(receivers.queue, json_printer))
        flush = lambda: _drain_json(receivers.queue, json_printer)  # noqa: E731
    else:
        printer = TreePrinter(store, sys.stdout, color=sys.stdout.isatty(), query=query)
        worker = asyncio.create_task(_print_trees(receivers.queue, store, printer, loaded))
        flush = lambda: _drain_trees(receivers.queue, store, printer)  # noqa: E731
    try:
        if load:
            loading = asyncio.create_task(load_into(receivers.ingest, load, strict=strict))
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
        if programs is not None:
            await until_programs_end(programs, receivers.stats, stop, main)
        elif listen:
            await stop.wait()
    finally:
        if programs is not None:
            await programs.stop_all()  # before the receivers: what they flush on the way out still arrives
        doctor.cancel()
        await receivers.stop()
        print_problems(receivers.doctor, sys.stderr)  # those the last requests brought
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        flush()
        beside = [recorder.summary()] if recorder is not None else []
        beside += receivers.ingest.log_store.losses() + receivers.ingest.metrics_summary.losses()
        print(f"ollama-tui: {'; '.join([summary(receivers.stats, store, receivers.forwarders), *beside])}",
              file=sys.stderr, flush=True)
    if main is not None:
        return main.status.returncode or 0
    return programs.returncode if programs is not None else 0


async def _started(commands: list[list[str]] | None, receivers: OtlpReceivers, config: ReceiverConfig,
                   out: TextIO, closed: Callable[[], None]) -> ProgramSet | None:
    """The programs started, their output followed on ``out`` (stderr beside ``--json``, which owns stdout;
    ``closed`` is called if it is closed under us); one that cannot start stops the receivers and raises its
    one-line error."""
    if not commands:
        return None
    programs = ProgramSet.for_receivers(commands, receivers.addresses, token=config.security.auth_token,
                                        ca_file=config.security.tls_cert)
    programs.add_listener(print_output(out, several=len(commands) > 1, closed=closed))
    try:
        await programs.start_all()
    except ProgramStartError:
        await receivers.stop()
        raise
    return programs


def stop_signals() -> list[signal.Signals]:
    """SIGTERM, and SIGINT and SIGHUP unless ignored when the program started.

    A shell starts a script's background jobs (``ollama-tui --print &``) with SIGINT ignored, so that the
    terminal's Ctrl+C, meant for the command in the foreground, spares them; Python honours that (it
    then installs no ``KeyboardInterrupt`` handler), and so does this program, from start-up to exit,
    instead of starting to obey SIGINT halfway. ``nohup`` ignores SIGHUP for the same reason, so that
    closing the terminal spares the command. SIGTERM (``kill``) always ends it the same clean way.
    """
    return [signal.SIGTERM, *(sig for sig in (signal.SIGINT, signal.SIGHUP)
                              if signal.getsignal(sig) is not signal.SIG_IGN)]


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
    dropped = sorted(stats.spans_lost.items())
    if dropped:
        parts.append("spans lost: " + ", ".join(f"{n} {reason}" for reason, n in dropped))
    if stats.retries_asked:  # their spans are not lost: the exporters keep them and send them again
        parts.append(f"{stats.retries_asked} exports asked to retry")
    if stats.duplicate_spans:
        parts.append(f"{stats.duplicate_spans} duplicate spans ignored "
                     f"(sent again in {stats.duplicate_requests} requests; acknowledged, kept once)")
    if stats.requests_rejected:
        parts.append(
            "requests refused: " + ", ".join(f"{n} {why}" for why, n in sorted(stats.requests_rejected.items()))
        )
    if store.evicted_spans:
        parts.append(f"{store.evicted_spans} spans evicted")
    if store.capped_spans:
        parts.append(f"{store.capped_spans} spans over the per-trace cap ({store.max_trace_spans}) not kept")
    for forwarder in forwarders:
        lost = sum(forwarder.stats.lost.values())
        parts.append(f"forwarded {forwarder.stats.sent_spans} spans to {forwarder.url}"
                     + (f" ({lost} requests lost: {dict(forwarder.stats.lost)})" if lost else ""))
    if stats.log_records or stats.metric_points:
        parts.append(f"{stats.log_records} log records and {stats.metric_points} metric points received")
    return "; ".join(parts)
