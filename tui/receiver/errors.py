"""Errors a receiver raises at start-up, phrased for the person who typed the command."""

from __future__ import annotations


class PortUnavailable(OSError):
    """A receiver could not bind its address (usually: something else already listens there)."""

    def __init__(self, transport: str, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot listen for OTLP/{transport} on {host}:{port}: {reason}")
        self.transport = transport
        self.host = host
        self.port = port
        self.reason = reason


class ReceiverConfigError(ValueError):
    """A receiver option that cannot work (a missing certificate, an empty token); names the flag."""
