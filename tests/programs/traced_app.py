"""A program to run under ollama-tui: the OpenTelemetry SDK set up from the environment alone, as a user's app
would be, a few spans, coloured lines on stdout and stderr, then the exit the test asks for.

    traced_app.py [--spans N] [--exit CODE] [--escapes] [--until-term flush|ignore] [--kill-self]
"""

import argparse
import os
import signal
import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

parser = argparse.ArgumentParser()
parser.add_argument("--spans", type=int, default=3)
parser.add_argument("--exit", type=int, default=0)
parser.add_argument("--escapes", action="store_true", help="also write what a terminal must never interpret")
parser.add_argument("--until-term", choices=["flush", "ignore"],
                    help="after the spans, wait for SIGTERM: flush the spans then exit, or ignore it")
parser.add_argument("--kill-self", action="store_true", help="end by SIGKILL instead of exiting")
args = parser.parse_args()

provider = TracerProvider(resource=Resource.create())  # service.name from OTEL_SERVICE_NAME
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint, headers, CA: all from the env
tracer = provider.get_tracer("traced-app")

print(f"\x1b[32mstarted\x1b[0m pid {os.getpid()} tty {sys.stdout.isatty()}", flush=True)
with tracer.start_as_current_span("job"):
    for i in range(1, args.spans):
        with tracer.start_as_current_span(f"step {i}"):
            print(f"out {i}", flush=True)
            print(f"\x1b[1;31merr {i}\x1b[0m", file=sys.stderr, flush=True)
if args.escapes:
    print("before\x1b]52;c;c2VjcmV0\x07\x1b[2J\x1b[H\x1b[10;20Hafter\x1b]0;title\x1b\\ \x07bell", flush=True)
    print("50%\r100% \x1b[38;5;208mdone\x1b[0m\tend", flush=True)

if args.until_term == "flush":
    def shut_down(signum: int, frame: object) -> None:
        provider.shutdown()  # what the SDK's own atexit hook would do, had the signal not ended the process
        print("flushed", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, shut_down)
elif args.until_term == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if args.until_term:
    print("waiting for SIGTERM", flush=True)
    while True:
        time.sleep(1)
if args.kill_self:
    provider.shutdown()
    os.kill(os.getpid(), signal.SIGKILL)
print("bye", flush=True)
sys.exit(args.exit)  # the SDK's atexit hook shuts the provider down, which exports what is still batched
