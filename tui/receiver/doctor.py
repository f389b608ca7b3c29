"""The connection doctor: why an exporter's spans do not arrive, in one sentence naming the fix.

A misconfigured exporter fails on its side, often silently (the SDKs log at debug level, or to a log
nobody reads), while the receiver sees exactly what went wrong: TLS spoken to a plain port, a gRPC
client on the HTTP port, a base URL where a full one was meant. The receivers :meth:`Doctor.report`
each such failure; it is diagnosed once per (source, problem) and counted after that, so a retrying
exporter makes one notification, not one per attempt. Messages are built once, when a problem is
first seen, so a flood of bad requests costs a dictionary lookup each.
"""

from __future__ import annotations

import difflib
import time
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

from tui.model.text import safe_text

#: Distinct (source, problem, detail) diagnoses kept; beyond this the least recently seen is dropped (counted).
MAX_DIAGNOSES = 200
#: Longest detail (a path, a content type) kept, so a hostile client cannot make long messages.
_MAX_DETAIL = 80
_OTLP_PATHS = ("/v1/traces", "/v1/logs", "/v1/metrics")
_TOKEN_FIX = "set OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20<token> with the --auth-token value"


class Problem(Enum):
    """What the doctor recognises; the value is also the reason counted with the receivers' refusals."""

    TLS_ON_PLAIN_PORT = "TLS handshake on the plain HTTP port"
    GRPC_ON_HTTP_PORT = "gRPC (HTTP/2) client on the HTTP port"
    WRONG_PATH = "404 unknown path"
    MISSING_TOKEN = "401 no bearer token"
    WRONG_TOKEN = "401 wrong bearer token"
    TOO_LARGE = "413 too large"
    CONTENT_TYPE = "415 content type"
    CONTENT_ENCODING = "415 content encoding"


def sniff(first_bytes: bytes) -> Problem | None:
    """What the first bytes of a connection to the plain HTTP port say about a client that cannot be served
    there: a TLS record header (handshake, version 3.x) or the HTTP/2 connection preface gRPC opens with."""
    if first_bytes[:2] == b"\x16\x03":
        return Problem.TLS_ON_PLAIN_PORT
    if first_bytes.startswith(b"PRI * HTTP/2"):
        return Problem.GRPC_ON_HTTP_PORT
    return None


@dataclass(slots=True)
class Diagnosis:
    """One problem seen from one source (peer host); ``text`` is what the user reads."""

    source: str
    kind: Problem
    detail: str
    message: str
    fix: str
    count: int
    first_seen: float
    last_seen: float

    @property
    def text(self) -> str:
        """One sentence: what was seen, then the fix."""
        return f"{self.message}: {self.fix}"


class Doctor:
    """Diagnoses failed exports, once per (source, problem); read by the UI and ``--print``."""

    def __init__(self, max_diagnoses: int = MAX_DIAGNOSES) -> None:
        self.max_diagnoses = max_diagnoses
        #: Diagnoses dropped to stay within ``max_diagnoses`` (least recently seen first).
        self.dropped = 0
        #: The receivers' addresses, for fixes that name them: set by :meth:`listening`.
        self.http_url = "http://127.0.0.1:4318"
        self.grpc_address: str | None = "127.0.0.1:4317"
        self._seen: OrderedDict[tuple[str, Problem, str], Diagnosis] = OrderedDict()
        self._unread: list[Diagnosis] = []

    def listening(self, scheme: str, addresses: dict[str, str]) -> None:
        """The bound addresses (``OtlpReceivers.addresses``), so fixes name the real ports."""
        if "http" in addresses:
            self.http_url = f"{scheme}://{addresses['http']}"
        self.grpc_address = addresses.get("grpc")

    def report(self, source: str, kind: Problem, detail: str = "") -> None:
        """Count one occurrence; a new (source, problem, detail) is diagnosed and queued for :meth:`take_new`."""
        # Both come from the network (a peer address, a percent-decoded path): made safe once, here, for the
        # empty list, the notifications, the Sources screen and --print's stderr alike.
        source, detail = safe_text(source), safe_text(detail[:_MAX_DETAIL])
        key = (source, kind, detail)
        now = time.time()
        found = self._seen.get(key)
        if found is not None:
            found.count += 1
            found.last_seen = now
            self._seen.move_to_end(key)
            return
        message, fix = self._explain(source, kind, key[2])
        diagnosis = Diagnosis(source, kind, key[2], message, fix, 1, now, now)
        self._seen[key] = diagnosis
        self._unread.append(diagnosis)
        if len(self._seen) > self.max_diagnoses:
            self._seen.popitem(last=False)
            self.dropped += 1

    def problems(self) -> list[Diagnosis]:
        """Every diagnosis kept, most recently seen first."""
        return list(reversed(self._seen.values()))

    def take_new(self) -> list[Diagnosis]:
        """Diagnoses first seen since the last call, oldest first: one notification or stderr line each."""
        new, self._unread = self._unread, []
        return new

    def _explain(self, source: str, kind: Problem, detail: str) -> tuple[str, str]:
        """(what was seen, the fix) for a new diagnosis."""
        port = self.http_url.rpartition(":")[2]
        if kind is Problem.TLS_ON_PLAIN_PORT:
            return (f"{source} speaks TLS (an https:// endpoint, as in Ollama's documented default) to the plain "
                    f"OTLP/HTTP port {port}",
                    "use an http:// endpoint and set OTEL_EXPORTER_OTLP_TRACES_INSECURE=true, or start ollama-tui "
                    "with --tls-cert and --tls-key")
        if kind is Problem.GRPC_ON_HTTP_PORT:
            instead = (f"point it at the gRPC port ({self.grpc_address}) or" if self.grpc_address
                       else "the gRPC receiver is off, so")
            return (f"{source} is a gRPC (HTTP/2) client on the OTLP/HTTP port {port}",
                    f"{instead} set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf to use this port")
        if kind is Problem.WRONG_PATH:
            return f"{source} sent an export to {detail or '/'}, which is not an OTLP path", self._path_fix(detail)
        if kind is Problem.MISSING_TOKEN:
            return f"{source} sent an export without the bearer token ollama-tui requires", _TOKEN_FIX
        if kind is Problem.WRONG_TOKEN:
            return f"{source} sent an export with a wrong bearer token", _TOKEN_FIX
        if kind is Problem.TOO_LARGE:
            return (f"{source} sent a request larger than the {detail} limit",
                    "start ollama-tui with a larger --max-request-mib, or make the exporter's batches smaller with "
                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE (default 512)")
        if kind is Problem.CONTENT_TYPE:
            return (f"{source} sent Content-Type {detail!r}, which OTLP/HTTP does not use",
                    "send application/x-protobuf or application/json: set "
                    "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf (or http/json)")
        return (f"{source} sent Content-Encoding {detail!r}, which ollama-tui cannot decode",
                "set OTEL_EXPORTER_OTLP_COMPRESSION=gzip (or none)")

    def _path_fix(self, path: str) -> str:
        base, full = self.http_url, f"{self.http_url}/v1/traces"
        variables = (f"OTEL_EXPORTER_OTLP_ENDPOINT takes the base URL ({base}) and the SDK appends /v1/traces, "
                     f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT takes the full URL ({full}) and is used as it is")
        if sum(path.count(p) for p in _OTLP_PATHS) > 1:
            return f"the signal path is in the URL twice: {variables}"
        if path.strip("/") == "":
            return f"the URL lacks /v1/traces: {variables}"
        close = difflib.get_close_matches(path, _OTLP_PATHS, n=1, cutoff=0.8)
        if close:
            return f"the path is {close[0]}: {variables}"
        return f"send to /v1/traces, /v1/logs or /v1/metrics: {variables}"
