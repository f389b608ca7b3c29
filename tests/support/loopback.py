"""Serving an aiohttp app on loopback for a test's fake server (Ollama, an OpenAI-compatible API)."""

from __future__ import annotations

from aiohttp import web


async def serve_on_loopback(app: web.Application, port: int = 0) -> tuple[web.AppRunner, int]:
    """``app`` listening on 127.0.0.1 (``port`` 0 picks a free one): its runner, to clean up, and its port."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
