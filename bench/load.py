"""Load generator, run as its own process: pre-serialised OTLP batches as fast as the receiver takes them.

    python bench/load.py --transport grpc --port 4317 --concurrency 4 --seconds 20

Honours back-pressure: a 503 / UNAVAILABLE is retried (same batch) after 50 ms, so every batch is
eventually accepted. (Real SDK exporters wait the full Retry-After; a short pause measures what the
app can sustain rather than the exporter's patience.) Prints "ready" once its batches are built,
then one JSON line of totals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

os.environ.setdefault("GRPC_VERBOSITY", "NONE")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp
import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from workload import BATCH, serialized_batches

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class FreshTraces:
    """Pre-serialised batches whose trace ids are rewritten in place on every send.

    Re-sending identical bytes would make every span after the first round a duplicate; rewriting
    the 16 id bytes at known offsets (a few hundred slice assignments) keeps each send new traces
    at almost no cost to the sender.
    """

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = [bytearray(b) for b in bodies]
        self.offsets: list[list[int]] = []
        for body in bodies:
            request = ExportTraceServiceRequest.FromString(body)
            trace_ids = {span.trace_id for span in request.resource_spans[0].scope_spans[0].spans}
            self.offsets.append(sorted(i for t in trace_ids for i in _find_all(body, t)))
        self.sends = 0

    def next(self) -> bytes:
        n = self.sends
        self.sends += 1
        body = self.bodies[n % len(self.bodies)]
        prefix = n.to_bytes(8, "big")
        for offset in self.offsets[n % len(self.bodies)]:
            body[offset:offset + 8] = prefix
        return bytes(body)


def _find_all(body: bytes, needle: bytes) -> list[int]:
    found, start = [], 0
    while (i := body.find(needle, start)) != -1:
        found.append(i)
        start = i + 1
    return found


async def run(transport: str, port: int, concurrency: int, seconds: float, rate: float | None = None,
              batch: int = BATCH) -> dict[str, float]:
    batches = FreshTraces(serialized_batches(16, batch=batch))
    # With --rate, each worker paces itself so all of them together send about `rate` spans/s.
    pause = concurrency * batch / rate if rate else 0.0
    print("ready", flush=True)
    sent = 0
    refused = 0
    deadline = time.monotonic() + seconds

    async def grpc_worker(worker: int) -> None:
        nonlocal sent, refused
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}",
                                             options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
            call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(TRACES)
            while time.monotonic() < deadline:
                body = batches.next()
                try:
                    await call(body, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    if exc.code() is not grpc.StatusCode.UNAVAILABLE:
                        raise
                    refused += 1
                    await asyncio.sleep(0.05)
                    continue
                sent += batch
                await asyncio.sleep(pause)

    async def http_worker(worker: int, session: aiohttp.ClientSession) -> None:
        nonlocal sent, refused
        url = f"http://127.0.0.1:{port}/v1/traces"
        headers = {"Content-Type": "application/x-protobuf"}
        body = batches.next()
        while time.monotonic() < deadline:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status == 503:
                    refused += 1
                    await asyncio.sleep(0.05)
                    continue
                response.raise_for_status()
            sent += batch
            body = batches.next()
            await asyncio.sleep(pause)

    started = time.monotonic()
    if transport == "grpc":
        await asyncio.gather(*(grpc_worker(w) for w in range(concurrency)))
    else:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(http_worker(w, session) for w in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"spans_sent": sent, "refused_requests": refused, "seconds": elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transport", choices=["grpc", "http"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=None, help="spans/s in all (default: as fast as answered)")
    parser.add_argument("--batch", type=int, default=BATCH, help="spans per request (a multiple of 4)")
    args = parser.parse_args()
    result = asyncio.run(run(args.transport, args.port, args.concurrency, args.seconds, args.rate, args.batch))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
