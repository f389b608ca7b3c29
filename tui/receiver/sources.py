"""Per-exporter accounting: who sends, over what, with which SDK, and what became of it.

A source is a peer *host* (not its port: SDK exporters open new connections whenever they like), a
transport and a ``service.name``. Several services on one machine share a host, so the service
tells them apart; a refusal made before the body was read (a 401, a 413, a wrong path) cannot know
its service and is counted on the host's row with no service. The service and the SDK are read
from the request's first resource only: one small loop per request, never per span.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from tui.receiver.ingest import ExportResult, Outcome

#: Sources kept; beyond this the least recently seen is dropped (counted in :attr:`SourceTable.dropped`).
MAX_SOURCES = 1000
#: Longest ``service.name`` or SDK name kept for a row.
MAX_NAME_CHARS = 200
#: The reason a back-pressure answer is counted under on a source's row.
BUSY = "busy, retry asked"
#: Resource attributes read into a row, and the row field each one fills.
_IDENTITY = {"service.name": 0, "telemetry.sdk.language": 1, "telemetry.sdk.name": 2, "telemetry.sdk.version": 3}
#: Each signal's list of resource groups in its export request.
_RESOURCES_FIELD = {"traces": "resource_spans", "logs": "resource_logs", "metrics": "resource_metrics"}


@dataclass(slots=True)
class Source:
    """One row of the Sources screen."""

    host: str
    #: ``grpc``, ``http-protobuf``, ``http-json``; ``http`` or ``tls`` for a connection refused before its
    #: encoding was known.
    transport: str
    #: ``service.name`` of the first resource; "" when refused before the body was read.
    service: str
    first_seen: float
    last_seen: float
    sdk_language: str = ""
    sdk_name: str = ""
    sdk_version: str = ""
    signals: set[str] = field(default_factory=set)
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    spans: int = 0


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string: ``ipv4:127.0.0.1:5000`` → ``127.0.0.1``, ``ipv6:[::1]:5000`` → ``::1``."""
    scheme, _, address = peer.partition(":")
    if scheme not in ("ipv4", "ipv6"):
        return peer
    return address.rpartition(":")[0].strip("[]")


class SourceTable:
    """The sources seen so far, bounded; the receivers record into it on the app's event loop."""

    def __init__(self, max_sources: int = MAX_SOURCES) -> None:
        self.max_sources = max_sources
        #: Sources dropped to stay within ``max_sources``.
        self.dropped = 0
        # Least recently seen first: the drop order.
        self._rows: OrderedDict[tuple[str, str, str], Source] = OrderedDict()

    def record(self, host: str, transport: str, signal: str, request: Any, result: ExportResult, spans: int) -> None:
        """One decoded export, what ``Ingest`` made of it (accepted, or refused for back-pressure), and the
        spans it took into the store (``ReceiverStats.spans_accepted`` before and after: duplicates and
        invalid ids are not among them)."""
        groups = getattr(request, _RESOURCES_FIELD[signal])
        identity = ["", "", "", ""]
        if groups:
            wanted = _IDENTITY
            for kv in groups[0].resource.attributes:
                slot = wanted.get(kv.key)
                if slot is not None:  # a name, not a payload: cut, so a hostile sender cannot pin memory here
                    identity[slot] = kv.value.string_value[:MAX_NAME_CHARS]
        row = self._row(host, transport, identity[0])
        row.sdk_language, row.sdk_name, row.sdk_version = identity[1], identity[2], identity[3]
        row.signals.add(signal)
        if result.outcome is Outcome.OVERLOADED:
            row.refused[BUSY] += 1
            return
        row.accepted += 1
        row.spans += spans

    def refused(self, host: str, transport: str, reason: str) -> None:
        """A request or connection refused before its body was decoded (its service unknown)."""
        self._row(host, transport, "").refused[reason] += 1

    def rows(self) -> list[Source]:
        """Every source kept, most recently seen first."""
        return list(reversed(self._rows.values()))

    def _row(self, host: str, transport: str, service: str) -> Source:
        key = (host, transport, service)
        now = time.time()
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = Source(host, transport, service, now, now)
            if len(self._rows) > self.max_sources:
                self._rows.popitem(last=False)
                self.dropped += 1
        else:
            row.last_seen = now
            self._rows.move_to_end(key)
        return row
