"""Command line: parse flags, then run the Textual app or the headless ``--print`` mode.

Start-up errors a user can fix (a busy port, a bad flag) end in one line naming the flag to
change and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from tui import __version__
from tui.gc_policy import tune_gc

DEFAULT_MAX_SPANS = 500_000
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl+C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports a command whose output was closed
_PORT_FLAGS = {"gRPC": "--grpc-port", "HTTP": "--http-port"}
#: The receivers' flags, all defaulting to None or False so that naming one on the command line is seen;
#: the real defaults are filled in by :func:`_listen_defaults`. With ``--print --load`` any of them keeps
#: the receivers running after the files, as without ``--load``.
_LISTENING = ("host", "grpc_port", "http_port", "no_grpc", "no_http", "tls_cert", "tls_key", "auth_token")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535; 0 picks a free one)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ollama-tui",
        description=(
            "A live OpenTelemetry span viewer for the terminal. Receives OTLP traces over gRPC and HTTP "
            "and shows them as a navigable trace tree with the prompts, completions and token counts "
            "of LLM spans."
        ),
        epilog=(
            "Point an app at it: OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 "
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (or grpc with :4317)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    net = parser.add_argument_group("receivers")
    net.add_argument("--host", help="address both receivers listen on (default: 127.0.0.1, this machine only)")
    net.add_argument("--grpc-port", type=_port, metavar="PORT",
                     help="OTLP/gRPC port (default: 4317; 0 picks a free port)")
    net.add_argument("--http-port", type=_port, metavar="PORT",
                     help="OTLP/HTTP port for /v1/traces, /v1/logs, /v1/metrics (default: 4318; 0 picks a free port)")
    net.add_argument("--no-grpc", action="store_true", help="do not start the OTLP/gRPC receiver")
    net.add_argument("--no-http", action="store_true", help="do not start the OTLP/HTTP receiver")
    net.add_argument("--max-request-mib", type=_positive, default=32, metavar="MIB",
                     help="largest request accepted, after decompression, in MiB (default: %(default)s)")
    net.add_argument("--queue-spans", type=_positive, default=None, metavar="N",
                     help="spans waiting to be stored before exporters are asked to back off and retry "
                          "(default: 200000)")
    net.add_argument("--tls-cert", type=Path, metavar="PEM",
                     help="serve both receivers over TLS with this certificate (chain) file; needs --tls-key")
    net.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key file")
    net.add_argument("--auth-token", metavar="TOKEN",
                     help="require 'Authorization: Bearer TOKEN' (gRPC metadata too) on every export "
                          "(default: $OLLAMA_TUI_AUTH_TOKEN; recommended with --host 0.0.0.0)")
    net.add_argument("--forward", action="append", default=[], metavar="URL",
                     help="also send every accepted request to this OTLP receiver (grpc://host:4317, "
                          "http://host:4318, https://...; repeatable): a Collector, Jaeger, Phoenix, a vendor")
    store = parser.add_argument_group("storage")
    store.add_argument("--max-spans", type=_positive, default=DEFAULT_MAX_SPANS, metavar="N",
                       help="spans kept in memory; beyond this the oldest whole traces are evicted "
                            "(default: %(default)s)")
    parser.add_argument("--no-confirm", action="store_true",
                        help="q quits at once, without asking first while traces are held")
    chat = parser.add_argument_group("chat pane")
    chat.add_argument("--ollama-host", metavar="URL",
                      help="Ollama's address (default: $OLLAMA_HOST, else http://127.0.0.1:11434; short forms "
                           "such as 0.0.0.0:11434 work as with the ollama CLI)")
    chat.add_argument("--model", help="model the chat pane starts with (default: $OLLAMA_MODEL, else the first "
                                      "installed)")
    chat.add_argument("--no-chat", action="store_true", help="no chat pane")
    files = parser.add_argument_group("files")
    files.add_argument("--load", nargs="+", action="extend", metavar="FILE", default=[],
                       help="open saved traces: OTLP JSON lines (Collector file exporter) or documents, OTLP "
                            "protobuf, the Python SDK's ConsoleSpanExporter output (mixed with other lines too), "
                            ".gz too; '-' reads standard input. With --print, the program ends once they are "
                            "printed, unless a receivers flag (--host, --grpc-port, ...) is given")
    files.add_argument("--save", type=Path, metavar="FILE",
                       help="append every received trace request to FILE as OTLP JSON lines (what --load reads)")
    files.add_argument("--strict", action="store_true",
                       help="with --print --load: a damaged line (cut short by a crash, NUL bytes, not a valid "
                            "request) ends the command with status 2 instead of being skipped with a warning")
    run = parser.add_argument_group(
        "programs", "ollama-tui [FLAGS] -- COMMAND [ARGS...] runs COMMAND with its OpenTelemetry exporters pointed at "
                    "the receivers (OTEL_EXPORTER_OTLP_* set, overriding yours, short batch delays), its output in the "
                    "Output pane; with --print, its output and traces on stdout and its exit status as ours")
    run.add_argument("--run", action="append", default=[], metavar="'COMMAND'",
                     help="run this command the same way (quoted, split as a shell would; repeatable), e.g. "
                          "--run 'ollama serve' --run 'python app.py'")
    out = parser.add_argument_group("output")
    out.add_argument("--print", dest="print_mode", action="store_true",
                     help="no UI: print each trace as an indented tree on stdout (for CI logs and pipes); "
                          "with --load, read the files, print them and end")
    out.add_argument("--json", action="store_true",
                     help="with --print: one OTLP/JSON span object per line, for jq")
    out.add_argument("--filter", metavar="QUERY",
                     help="with --print: only the traces with a span matching QUERY (with --json: only the "
                          "matching spans); the filter bar's language: text, service:NAME, model:NAME, "
                          "status:error, kind:client, dur>500ms, tokens>1000, ttft>1s, key=value, key~text, "
                          "has:key, -term, OR"),
    return parser


def _listen_defaults(args: argparse.Namespace) -> bool:
    """Fill in the receivers' defaults; returns whether any of their flags was on the command line."""
    asked = any(getattr(args, dest) is not None and getattr(args, dest) is not False for dest in _LISTENING)
    args.host = "127.0.0.1" if args.host is None else args.host
    args.grpc_port = 4317 if args.grpc_port is None else args.grpc_port
    args.http_port = 4318 if args.http_port is None else args.http_port
    args.auth_token = os.environ.get("OLLAMA_TUI_AUTH_TOKEN") if args.auth_token is None else args.auth_token
    return asked


def receiver_config(args: argparse.Namespace):  # -> ReceiverConfig, imported lazily (see main)
    from tui.receiver import ReceiverConfig, Security
    from tui.receiver.service import DEFAULT_QUEUE_SPANS

    return ReceiverConfig(
        security=Security(args.tls_cert, args.tls_key, args.auth_token),
        forward=tuple(args.forward),
        save=args.save,
        host=args.host,
        grpc_port=None if args.no_grpc else args.grpc_port,
        http_port=None if args.no_http else args.http_port,
        max_message_bytes=args.max_request_mib * 1024 * 1024,
        queue_spans=args.queue_spans or DEFAULT_QUEUE_SPANS,
    )


def _read_sources(paths: list[str]) -> list[tuple[str, bytes]] | str:
    """Read every --load file up front, so a missing one is a one-line error before anything starts."""
    from tui.receiver.files import UnreadableFile, read_source

    try:
        return [read_source(path) for path in paths]
    except UnreadableFile as exc:
        return f"--load {exc}"


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ollama-tui`` command. Ctrl+C ends it without a traceback: during start-up with
    status 130; once running, as the app or ``--print`` handles it (a summary, then status 0)."""
    try:
        with _StartUpInterrupt() as interrupt:
            start = _prepare(argv)
        if interrupt.happened:
            return EXIT_INTERRUPTED
        return start if isinstance(start, int) else _run(start)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


class _StartUpInterrupt:
    """Ctrl+C while the command starts (imports, flags, files) raises ``KeyboardInterrupt`` and is remembered.

    Python cannot raise an exception out of a weakref callback; it prints "Exception ignored" and goes
    on. The import system runs one as it releases each module lock, so a Ctrl+C landing there during the
    ~0.3 s of imports was lost, and the program went on to listen until a second one. Remembered, it ends
    the command as soon as start-up returns, and its "ignored" report is not printed. Once the event loop
    runs, asyncio's own handler takes over (it cancels the main task), so ours is put back before then.
    (The interpreter's own first ~40 ms, before ``main`` is called, are Python's default behaviour.)
    """

    def __init__(self) -> None:
        self.happened = False
        self._installed = False
        self._unraisable_hook = sys.unraisablehook

    def __enter__(self) -> _StartUpInterrupt:
        # Only Python's default handler is replaced: an embedding program's own is left alone.
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, self._on_interrupt)
            sys.unraisablehook = self._on_unraisable
            self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            sys.unraisablehook = self._unraisable_hook

    def _on_interrupt(self, signum: int, frame: FrameType | None) -> None:
        self.happened = True
        signal.default_int_handler(signum, frame)

    def _on_unraisable(self, unraisable: sys.UnraisableHookArgs) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._unraisable_hook(unraisable)


def _split_command(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """(our flags, the command after ``--``, or None without one)."""
    words = list(argv)
    if "--" not in words:
        return words, None
    split = words.index("--")
    return words[:split], words[split + 1:]


def _commands(parser: argparse.ArgumentParser, runs: list[str], command: list[str] | None) -> list[list[str]]:
    """Every program to run: each ``--run``, then ``-- COMMAND``."""
    from tui.programs import ProgramStartError, parse_command

    if command is not None and not command:
        parser.error("-- takes the command to run after it, e.g. ollama-tui -- python app.py")
    try:
        return [parse_command(text) for text in runs] + ([command] if command else [])
    except ProgramStartError as exc:
        parser.error(f"--run: {exc}")


def _prepare(argv: Sequence[str] | None) -> int | Callable[[], int]:
    """Everything before the event loop: an exit status if the command ends here, else what runs it."""
    parser = build_parser()
    flags, command = _split_command(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(flags)
    commands = _commands(parser, args.run, command)
    if args.json and not args.print_mode:
        parser.error("--json only applies with --print")
    query = None
    if args.filter is not None:
        if not args.print_mode:
            parser.error("--filter applies with --print; in the app, type the query after /")
        from tui.model.query import QueryError, parse

        parsed = parse(args.filter)
        if isinstance(parsed, QueryError):
            print(f"ollama-tui: --filter {args.filter!r}: {parsed}", file=sys.stderr)
            return EXIT_USAGE
        query = parsed
    if args.no_grpc and args.no_http:
        parser.error("--no-grpc and --no-http together leave nothing to receive spans")
    if "-" in args.load and not args.print_mode:
        parser.error("--load - (standard input) works with --print; the app reads its keys from the terminal "
                     "(save the output to a file and --load that)")
    missing = None if args.print_mode else _terminal_missing()
    if missing is not None:
        print(f"ollama-tui: {missing}", file=sys.stderr)
        return EXIT_USAGE
    # --print --load is a conversion, like cat: it ends with its input and needs no port (so it also works
    # beside a running ollama-tui), unless receivers were asked for by name.
    listen = _listen_defaults(args) or not (args.print_mode and args.load) or bool(commands)
    # gRPC's C core logs bind failures to stderr itself; we report them in one line instead.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    tune_gc()
    from tui.receiver import ReceiverConfigError

    try:
        config = receiver_config(args)
    except ReceiverConfigError as exc:
        print(f"ollama-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not listen:
        config.grpc_port = config.http_port = None
    if not config.is_loopback:
        advice = "" if args.auth_token else "; require a token with --auth-token"
        print(
            f"ollama-tui: warning: listening on {config.host}: anyone who can reach this machine "
            f"can send spans to it{advice}",
            file=sys.stderr,
        )
    sources = _read_sources(args.load)
    if isinstance(sources, str):
        print(f"ollama-tui: {sources}", file=sys.stderr)
        return EXIT_USAGE
    if args.print_mode:
        import asyncio

        from tui.console.run import run_print

        return lambda: asyncio.run(run_print(config, max_spans=args.max_spans, as_json=args.json, load=sources,
                                             listen=listen, strict=args.strict, commands=commands,
                                             follow_last=bool(command), query=query))
    if args.strict:
        parser.error("--strict works with --print --load; the app shows a damaged file's skipped lines as a warning")
    from tui.app.run import run_app
    from tui.chat.host import resolve_ollama_host

    try:
        ollama_host = None if args.no_chat else resolve_ollama_host(args.ollama_host)
    except ValueError as exc:
        parser.error(f"--ollama-host: {exc}")
    model = args.model or os.environ.get("OLLAMA_MODEL") or None
    return lambda: run_app(config, max_spans=args.max_spans, ollama_host=ollama_host, model=model, load=sources,
                           confirm_quit=not args.no_confirm, commands=commands,
                           chat_follows_ollama_serve=args.ollama_host is None)


def _terminal_missing() -> str | None:
    """Why the viewer cannot run here, or None. Textual draws on stderr, sizes the screen from stdout and
    reads keys from stdin; without a terminal there it would draw escape sequences into a file or pipe for
    ever, or wait for keys that never come."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if not os.isatty(fd):
            return f"the viewer needs a terminal ({name} is not one); use --print to print traces as text"
    if not os.isatty(0):
        return ("standard input is not a terminal, so keys cannot be read: run it without a pipe into it, "
                "or use --print")
    return None


def _run(start: Callable[[], int]) -> int:
    """Run the receivers and the app or printer; errors a user can fix (a busy port, an unreadable TLS
    file) are one line and status 2."""
    from tui.programs import ProgramStartError
    from tui.receiver import PortUnavailable, ReceiverConfigError
    from tui.receiver.files import UnreadableFile

    try:
        return start()
    except (ReceiverConfigError, UnreadableFile) as exc:
        print(f"ollama-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ProgramStartError as exc:  # the status a shell gives a command it cannot run (127: not found)
        print(f"ollama-tui: {exc}", file=sys.stderr)
        return exc.returncode
    except BrokenPipeError:  # stdout closed under us (``| head``): nobody reads the rest, as with SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the interpreter's last flush, quiet
        return EXIT_BROKEN_PIPE
    except PortUnavailable as exc:
        flag = _PORT_FLAGS[exc.transport]
        print(f"ollama-tui: {exc}; choose another port with {flag} (0 picks a free one)", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
