"""What the trace list says before any span has arrived: how to send spans here, real ports filled in."""

from __future__ import annotations

from collections.abc import Sequence

#: Diagnoses shown above the recipes; the rest are on the Sources screen (``x``).
SHOWN_PROBLEMS = 3


def empty_state_lines(addresses: list[tuple[str, str]], scheme: str = "http",
                      problems: Sequence[str] = ()) -> list[str]:
    """``scheme`` is "https" when the receivers serve TLS (then the exporter needs the certificate);
    ``problems`` are the connection doctor's diagnoses, newest first: the likeliest answer to "why is this
    empty", so they come before the recipes."""
    found = dict(addresses)
    listening = " · ".join(f"{name} {address}" for name, address in addresses)
    lines = [f"No spans yet. ollama-tui is listening on {listening}.", ""]
    if problems:
        lines.append("Exporters are trying, but their exports fail:")
        lines += [f"  ! {problem}" for problem in problems[:SHOWN_PROBLEMS]]
        more = len(problems) - SHOWN_PROBLEMS
        lines += ([f"  and {more:,} more: press x for the Sources screen"] if more > 0 else
                  ["  (x shows every exporter and what it sent)"])
        lines.append("")
    http, grpc = found.get("http"), found.get("grpc")
    lines.append("From an app instrumented with an OpenTelemetry SDK:")
    if http:
        lines += [f"  export OTEL_EXPORTER_OTLP_ENDPOINT={scheme}://{http}",
                  "  export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"]
    if grpc:
        prefix = "  or, over gRPC:" if http else ""
        if prefix:
            lines.append(prefix)
        lines += [f"  export OTEL_EXPORTER_OTLP_ENDPOINT={scheme}://{grpc}",
                  "  export OTEL_EXPORTER_OTLP_PROTOCOL=grpc"]
    lines += ["", "Or run it under ollama-tui, which sets all that and shows its output:",
              "  ollama-tui -- python app.py", ""]
    if scheme == "https":
        lines += ["  export OTEL_EXPORTER_OTLP_CERTIFICATE=/path/to/the/--tls-cert/file.pem", ""]
        lines.append("From an Ollama build with tracing:")
    else:
        lines.append("From an Ollama build with tracing (its default endpoint is https://localhost:4318,")
        lines.append("which needs TLS; point it here over plain HTTP instead):")
    if http:
        lines += [f"  export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={scheme}://{http}/v1/traces",
                  "  export OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf"]
    else:
        lines += [f"  export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={scheme}://{grpc}",
                  "  export OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"]
    if scheme == "http":
        lines.append("  export OTEL_EXPORTER_OTLP_TRACES_INSECURE=true")
    lines += ["  ollama serve", "", "Press ? for every key, q to quit."]
    return lines


def no_match_lines(held: int, filter_text: str, errors_only: bool) -> list[str]:
    """What the list says when traces are held but the filter or errors-only hides them all."""
    what = f"matching {filter_text!r}" if filter_text else ""
    errors = "with errors" if errors_only else ""
    return [f"No traces {' and '.join(p for p in (what, errors) if p)} among {held:,} held.",
            "", "Esc in the filter clears it; e shows all traces again."]
