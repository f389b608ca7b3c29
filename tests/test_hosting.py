"""Where a model call ran, as the replay form and the compare view both say it."""

from __future__ import annotations

import pytest

from tui.model.conventions import CHAT_SERVICE, OPERATION_NAME, PROVIDER_NAME, REQUEST_MODEL
from tui.model.genai import GenAIView
from tui.model.hosting import runs_locally, runs_remotely
from tui.model.span import Resource, Span


def where(provider: str, model: str, service: str = "app", **attributes: object) -> tuple[bool, bool]:
    span = Span("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "chat", 0, 1,
                resource=Resource({"service.name": service}),
                attributes={OPERATION_NAME: "chat", REQUEST_MODEL: model,
                            **({PROVIDER_NAME: provider} if provider else {}), **attributes})
    view = GenAIView.from_span(span)
    assert view is not None
    return runs_locally(span, view), runs_remotely(span, view)


@pytest.mark.parametrize(("provider", "model", "service", "attributes", "expected"), [
    ("ollama", "llama3.2", "app", {}, (True, False)),
    ("Ollama", "llama3.2", "app", {}, (True, False)),  # OpenLLMetry's capital
    ("openai", "gpt-4o-mini", "app", {}, (False, True)),
    ("openai", "llama3.2", "app", {"server.address": "localhost", "server.port": 11434}, (True, False)),  # Ollama's /v1
    ("", "gpt-4o", "app", {}, (False, True)),  # no provider: a model only hosted services have
    ("", "gpt-oss:20b", "app", {}, (False, False)),  # an Ollama model with a GPT-like name
    ("strands-agents", "llama3.2", "app", {}, (False, False)),  # a framework's name is neither
    ("aws.bedrock", "claude-3", "app", {}, (False, True)),
    ("", "llama3.2", CHAT_SERVICE, {}, (True, False)),  # the chat pane's own span
])
def test_where_a_call_ran(provider: str, model: str, service: str, attributes: dict[str, object],
                          expected: tuple[bool, bool]) -> None:
    assert where(provider, model, service, **attributes) == expected
