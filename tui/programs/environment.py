"""The OpenTelemetry environment that points a child program's exporters at our receivers.

Every SDK (Python, Node, Go — which is what an Ollama build with tracing uses) reads the same variables,
so a program run under ollama-tui needs no code change. The general ``OTEL_EXPORTER_OTLP_*`` variables
are what the SDKs document first; the per-signal ones are set too because a per-signal variable the user
left in the environment would win over the general one and send that signal elsewhere, and because
Ollama reads only the ``…_TRACES_…`` names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from urllib.parse import quote

SIGNALS = ("TRACES", "LOGS", "METRICS")
#: Exporter settings that would point a signal elsewhere or change how it is sent; each is either set
#: here or removed, so nothing the user exported for another collector leaks into the child's exports.
_EXPORT_SETTINGS = ("ENDPOINT", "PROTOCOL", "INSECURE", "CERTIFICATE", "HEADERS", "CLIENT_KEY", "CLIENT_CERTIFICATE")
MANAGED = frozenset(
    f"OTEL_EXPORTER_OTLP_{signal}{setting}"
    for signal in ("", *(f"{s}_" for s in SIGNALS))
    for setting in _EXPORT_SETTINGS
) | {f"OTEL_{signal}_EXPORTER" for signal in SIGNALS}
#: Batch delays, in milliseconds, short enough that spans show up about as promptly as with the console
#: exporter (the SDK defaults wait 5 s for spans and 60 s for metrics). Defaults only: a user's own wins.
PROMPT_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BLRP_SCHEDULE_DELAY": "200",
                 "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
#: Exporters reach a receiver bound to every interface on loopback.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]", "": "127.0.0.1"}
_HTTP_PATHS = {"TRACES": "/v1/traces", "LOGS": "/v1/logs", "METRICS": "/v1/metrics"}


def otel_environment(addresses: Sequence[tuple[str, str]], *, service_name: str, token: str | None = None,
                     ca_file: str | os.PathLike[str] | None = None,
                     base_env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The child's environment: ``base_env`` with the exporters pointed at the receivers.

    ``addresses`` is ``OtlpReceivers.addresses`` (``[("grpc", "127.0.0.1:4317"), ("http", …)]``); OTLP/HTTP
    is used when it is there (every SDK supports it; Python's default gRPC exporter is a separate
    package). ``ca_file`` is the receivers' TLS certificate (TLS is on when it is given) and ``token``
    their ``--auth-token``. Returns the environment and the names of the variables the user had set
    that it changed or removed, so the UI can say which.
    """
    transports = dict(addresses)
    if "http" in transports:
        protocol, address = "http/protobuf", transports["http"]
    elif "grpc" in transports:
        protocol, address = "grpc", transports["grpc"]
    else:
        raise ValueError("no receiver to point the program at")
    host, _, port = address.rpartition(":")
    base_url = f"{'https' if ca_file else 'http'}://{_WILDCARDS.get(host, host)}:{port}"

    ours = {"OTEL_EXPORTER_OTLP_ENDPOINT": base_url, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    for signal in SIGNALS:
        ours[f"OTEL_{signal}_EXPORTER"] = "otlp"
        path = _HTTP_PATHS[signal] if protocol != "grpc" else ""
        ours[f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"] = base_url + path
        ours[f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"] = protocol
    # Go's exporter (Ollama) refuses plain http unless told it is meant; with TLS it must verify.
    ours["OTEL_EXPORTER_OTLP_INSECURE"] = ours["OTEL_EXPORTER_OTLP_TRACES_INSECURE"] = "false" if ca_file else "true"
    if ca_file:
        ours["OTEL_EXPORTER_OTLP_CERTIFICATE"] = ours["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE"] = os.fspath(ca_file)
    if token:
        # Header values are URL-encoded in these variables (the spec's W3C-baggage-like format).
        ours["OTEL_EXPORTER_OTLP_HEADERS"] = "authorization=" + quote(f"Bearer {token}", safe="")

    env = {name: value for name, value in base_env.items() if name not in MANAGED}
    env.update(ours)
    for name, value in PROMPT_EXPORT.items():
        env.setdefault(name, value)
    if not _names_service(base_env):
        env["OTEL_SERVICE_NAME"] = service_name
    overridden = sorted(name for name in MANAGED & base_env.keys() if env.get(name) != base_env[name])
    return env, overridden


def _names_service(env: Mapping[str, str]) -> bool:
    """Whether the user named the service already (``OTEL_SERVICE_NAME``, or ``service.name`` in
    ``OTEL_RESOURCE_ATTRIBUTES``, which the SDKs honour when the former is unset)."""
    if env.get("OTEL_SERVICE_NAME", "").strip():
        return True
    pairs = env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
    return any(key.strip() == "service.name" and value.strip() for key, _, value in (p.partition("=") for p in pairs))


#: Interpreters whose program is the script or module they run, not themselves.
_INTERPRETERS = ("python", "node", "bun", "deno", "ruby", "perl")
_INLINE_CODE = frozenset({"-c", "-e", "--eval", "-p", "--print"})
_OPTIONS_WITH_VALUE = frozenset({"-W", "-X", "-r", "--require", "--import"})


def service_name_for(argv: Sequence[str]) -> str:
    """The name a program's spans get by default: the command's name; for an interpreter, the script's
    (``python app.py`` → ``app``, ``python -m pkg.main`` → ``pkg.main``), so two Python apps differ."""
    command = os.path.basename(argv[0]) if argv else "program"
    if not command.startswith(_INTERPRETERS):
        return command
    args = iter(argv[1:])
    for arg in args:
        if arg == "-m":
            return next(args, command)
        if arg in _INLINE_CODE:
            return command
        if arg in _OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-") and arg != "run":  # `deno run app.ts`, `bun run app.ts`
            stem = os.path.splitext(os.path.basename(arg))[0]
            return stem or command
    return command
