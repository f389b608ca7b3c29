"""Every GenAI / LLM attribute key and event name the project reads or writes, in one place.

The chat engine writes spans that the LLM view, the trace-list row summaries and the ``--print``
tree then read back. Naming each key once keeps them agreeing: a key renamed here is renamed for
the writer and every reader alike. Where instrumentations disagree, a tuple lists the keys in the
order they are tried, current semantic conventions first.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: Name prefixes of GenAI semantic conventions and of OpenLLMetry / OpenInference attributes.
GENAI_PREFIX: Final = "gen_ai."
LLM_PREFIXES: Final = (GENAI_PREFIX, "llm.")

# --- what the call was ------------------------------------------------------------------------------

OPERATION_NAME: Final = "gen_ai.operation.name"
OPERATION_KEYS: Final = (OPERATION_NAME, "llm.request.type")

#: Operation names of one request to a model (GenAI conventions, OpenLLMetry's ``llm.request.type``).
MODEL_OPERATIONS: Final = frozenset({"chat", "text_completion", "generate_content", "completion", "embeddings", "llm"})
#: Operation names of an agent run, and of one tool execution.
AGENT_OPERATIONS: Final = frozenset({"invoke_agent", "create_agent"})
EXECUTE_TOOL_OPERATION: Final = "execute_tool"
#: An agent's and a tool's names, a tool call's id, arguments and result, and an agent or chain step's input
#: and output, in every convention (GenAI, pydantic-ai, strands, OpenInference, Traceloop).
AGENT_NAME_KEYS: Final = ("gen_ai.agent.name", "agent_name", "agent.name")
TOOL_NAME_KEYS: Final = ("gen_ai.tool.name", "tool.name", "tool_name")
TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
TOOL_ARGUMENT_KEYS: Final = ("gen_ai.tool.call.arguments", "tool_arguments", "input.value", "traceloop.entity.input")
TOOL_RESULT_KEYS: Final = ("gen_ai.tool.call.result", "tool_response", "output.value", "traceloop.entity.output")
STEP_INPUT_KEYS: Final = ("input.value", "traceloop.entity.input")
STEP_OUTPUT_KEYS: Final = ("final_result", "output.value", "traceloop.entity.output")
ERROR_TYPE: Final = "error.type"
#: Traceloop's span kind attribute (``workflow``, ``task``, ``agent``, ``tool``).
TRACELOOP_SPAN_KIND: Final = "traceloop.span.kind"

PROVIDER_NAME: Final = "gen_ai.provider.name"
PROVIDER_KEYS: Final = (PROVIDER_NAME, "gen_ai.system", "llm.provider", "llm.system")

REQUEST_MODEL: Final = "gen_ai.request.model"
LLM_MODEL_NAME: Final = "llm.model_name"
REQUEST_MODEL_KEYS: Final = (REQUEST_MODEL, LLM_MODEL_NAME, "llm.request.model")

#: The model an agent span names (pydantic-ai's ``invoke_agent``); read for the LLM view only, not for the
#: trace row (whose model comes from the calls).
AGENT_MODEL_KEYS: Final = ("model_name",)

RESPONSE_MODEL: Final = "gen_ai.response.model"
RESPONSE_MODEL_KEYS: Final = (RESPONSE_MODEL, "llm.response.model")

#: The model a trace row names: the one that answered, else the one asked for.
SUMMARY_MODEL_KEYS: Final = (*RESPONSE_MODEL_KEYS, *REQUEST_MODEL_KEYS)

#: OpenInference's span kind attribute; the value ``LLM`` marks a model call.
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"

# --- usage and timing -------------------------------------------------------------------------------

INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
INPUT_TOKENS_KEYS: Final = (INPUT_TOKENS, PROMPT_TOKENS, "llm.usage.prompt_tokens", "llm.token_count.prompt")

OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
OUTPUT_TOKENS_KEYS: Final = (OUTPUT_TOKENS, COMPLETION_TOKENS, "llm.usage.completion_tokens",
                             "llm.token_count.completion")

#: An agent span's usage summed over its run (pydantic-ai); read for the LLM view only, never summed with
#: the calls' own counts.
AGGREGATED_INPUT_TOKENS_KEYS: Final = ("gen_ai.aggregated_usage.input_tokens",)
AGGREGATED_OUTPUT_TOKENS_KEYS: Final = ("gen_ai.aggregated_usage.output_tokens",)

TOTAL_TOKENS_KEYS: Final = ("llm.usage.total_tokens", "gen_ai.usage.total_tokens", "llm.token_count.total")

#: Seconds from the request to the first streamed token (strands sends ``gen_ai.server.time_to_first_token``
#: in milliseconds: :func:`tui.model.genai.first_token_seconds` is the one rule that tells).
TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
TTFT_KEYS: Final = (TIME_TO_FIRST_CHUNK, "gen_ai.server.time_to_first_token", "llm.response.time_to_first_token")

#: Span events marking the first token, when no time-to-first-token attribute is given.
FIRST_TOKEN_EVENTS: Final = ("gen_ai.content.first_token", "first_token", "llm.first_token",
                             "First Token Stream Event")

FINISH_REASONS: Final = "gen_ai.response.finish_reasons"

#: Ollama's final-chunk timings: field of its chat response → span attribute (nanoseconds).
OLLAMA_TIMINGS: Final[Mapping[str, str]] = MappingProxyType({
    "load_duration": "ollama.load_duration",
    "prompt_eval_duration": "ollama.prompt_eval_duration",
    "eval_duration": "ollama.eval_duration",
    "total_duration": "ollama.total_duration",
})
#: Output tokens per second of generation, as the chat engine computes it from the timings.
OLLAMA_EVAL_RATE: Final = "ollama.eval_rate"

# --- messages ---------------------------------------------------------------------------------------

#: Current conventions: JSON (or structured) lists in the "parts" format.
SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
INPUT_MESSAGES: Final = "gen_ai.input.messages"
OUTPUT_MESSAGES: Final = "gen_ai.output.messages"

#: Per-message GenAI events (deprecated but common), and the role each implies.
MESSAGE_EVENTS: Final[Mapping[str, str]] = MappingProxyType({
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
})
CHOICE_EVENT: Final = "gen_ai.choice"
#: Where a log record names its event when it has no ``event_name`` field (older SDKs, OpenLLMetry).
EVENT_NAME_ATTRIBUTE: Final = "event.name"
#: One event carrying the whole exchange, with the same attributes as the span-level messages.
DETAILS_EVENT: Final = "gen_ai.client.inference.operation.details"

#: OpenLLMetry's flattened messages: ``gen_ai.prompt.<N>.<field>``, ``gen_ai.completion.<N>.<field>``.
OPENLLMETRY_PROMPT: Final = "gen_ai.prompt"
OPENLLMETRY_COMPLETION: Final = "gen_ai.completion"
#: OpenInference's flattened messages: ``llm.input_messages.<N>.message.<field>`` and the output twin.
OPENINFERENCE_INPUT: Final = "llm.input_messages"
OPENINFERENCE_OUTPUT: Final = "llm.output_messages"
#: OpenInference's unstructured fallback: the call's input and output as one value each.
INPUT_VALUE: Final = "input.value"
OUTPUT_VALUE: Final = "output.value"

# --- request parameters and tool definitions (read to replay a call, issue 17) -----------------------

#: Recorded request parameters → the Ollama ``options`` field each becomes.
REQUEST_OPTIONS: Final[Mapping[str, str]] = MappingProxyType({
    "gen_ai.request.temperature": "temperature",
    "gen_ai.request.top_p": "top_p",
    "gen_ai.request.top_k": "top_k",
    "gen_ai.request.max_tokens": "num_predict",
    "gen_ai.request.seed": "seed",
    "gen_ai.request.stop_sequences": "stop",
})
#: OpenInference's request parameters as one JSON object, and its names → the Ollama option each becomes.
INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
INVOCATION_OPTIONS: Final[Mapping[str, str]] = MappingProxyType({
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "max_tokens": "num_predict",
    "max_completion_tokens": "num_predict",
    "num_predict": "num_predict",
    "seed": "seed",
    "stop": "stop",
})
#: Tools offered to the model: a JSON list (GenAI), OpenLLMetry's ``llm.request.functions.<N>.<field>``,
#: OpenInference's ``llm.tools.<N>.tool.json_schema``.
TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"
OPENLLMETRY_FUNCTIONS: Final = "llm.request.functions"
OPENINFERENCE_TOOLS: Final = "llm.tools"

# --- ollama-tui's own chat spans ------------------------------------------------------------------------

#: The service name of chat-pane traces.
CHAT_SERVICE: Final = "ollama-tui chat"
#: On a replay's span: the span id of the recorded span it replays (also linked with an OpenTelemetry span link).
REPLAY_OF: Final = "ollama_tui.replay_of"

# --- byte markers: cheap tests on a span's raw payload before decoding it ---------------------------

#: Present in the payload of any span with a GenAI / OpenInference attribute or GenAI event.
LLM_MARKERS: Final = tuple(prefix.encode() for prefix in LLM_PREFIXES)
#: Present in the payload of any span carrying a key of :data:`SUMMARY_MODEL_KEYS` or a token count.
USAGE_MARKERS: Final = (b"gen_ai.usage.", b"gen_ai.request.model", b"gen_ai.response.model", b"llm.model_name",
                        b"llm.usage.", b"llm.token_count.", b"llm.request.model", b"llm.response.model")
