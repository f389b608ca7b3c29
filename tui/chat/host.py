"""Where Ollama is: ``--ollama-host``, else ``OLLAMA_HOST``, else ``http://127.0.0.1:11434``.

Accepts the short forms the ``ollama`` CLI accepts (``0.0.0.0``, ``:11434``, ``host:port``,
``[::1]:11434``, with or without a scheme).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434


def resolve_ollama_host(flag: str | None = None, environ: dict[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return normalize_host(flag or env.get("OLLAMA_HOST") or DEFAULT_HOST)


def normalize_host(value: str) -> str:
    """``0.0.0.0:11434`` → ``http://0.0.0.0:11434``; ``https://x`` → ``https://x:443``."""
    value = value.strip()
    if "://" not in value:
        value = "http://" + value
    parts = urlsplit(value)
    scheme = parts.scheme or "http"
    host = parts.hostname or "127.0.0.1"
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid Ollama address {value!r}: bad port") from None
    if port is None:
        port = 443 if scheme == "https" and ":" not in parts.netloc.rsplit("]", 1)[-1] else DEFAULT_PORT
    if ":" in host:
        host = f"[{host}]"
    path = parts.path.rstrip("/")
    return f"{scheme}://{host}:{port}{path}"
