"""Where a model call ran: on a hosted service, or on a local Ollama. The replay form and the compare view
both say it (a replay of a remote call runs on a local model, so its answer differs by model too)."""

from __future__ import annotations

import re

from tui.model.conventions import CHAT_SERVICE
from tui.model.genai import GenAIView
from tui.model.span import Span

#: Providers (``gen_ai.provider.name`` and the older ``gen_ai.system`` values, lower-cased) that are hosted
#: services. A framework's name (strands' ``strands-agents``) is neither local nor remote.
REMOTE_PROVIDERS = frozenset({
    "openai", "anthropic", "cohere", "deepseek", "groq", "mistral_ai", "mistralai", "perplexity", "x_ai", "xai",
    "gemini", "vertex_ai", "bedrock", "ibm.watsonx.ai", "az.ai.inference", "az.ai.openai",
})
_REMOTE_PROVIDER_PREFIXES = ("aws.", "gcp.", "azure.", "az.")
#: Model names only hosted services answer to, for spans that name no provider (gpt-oss is an Ollama model).
_REMOTE_MODEL = re.compile(r"^(gpt-[345]|chatgpt|o[134](-|$)|claude|gemini-)", re.IGNORECASE)
LOCAL_PROVIDER = "ollama"
#: Ollama's port: an OpenAI client pointed at Ollama's ``/v1`` records provider ``openai`` but this port.
OLLAMA_PORT = 11434


def runs_locally(span: Span, view: GenAIView) -> bool:
    """Provider ``ollama``, the chat pane's own span, or any client talking to Ollama's port (an address alone
    tells nothing: a loopback one may be a proxy to a hosted service)."""
    return (view.provider.lower() == LOCAL_PROVIDER or span.service_name == CHAT_SERVICE
            or span.attributes.get("server.port") == OLLAMA_PORT)


def runs_remotely(span: Span, view: GenAIView) -> bool:
    """A hosted provider, or (naming none) a model only hosted services have; never a local call."""
    provider = view.provider.lower()
    return not runs_locally(span, view) and (
        provider in REMOTE_PROVIDERS or provider.startswith(_REMOTE_PROVIDER_PREFIXES)
        or bool(_REMOTE_MODEL.match(view.model)))

