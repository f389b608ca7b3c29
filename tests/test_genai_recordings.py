"""Real OTLP output of GenAI instrumentation libraries (``tests/fixtures/genai/*.jsonl``) through the receiver path.

The recordings were made by ``tests/fixtures/genai/record.py`` (by hand, in a virtualenv with the libraries)
against the fake Ollama and OpenAI servers; see ``tests/fixtures/genai/README.md``. These tests only check that
every recording loads through the real receiver code and still holds what it held when recorded (model calls,
models, log records), so a broken or truncated fixture fails here and not in a display test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tui.model.span import Span
from tui.model.telemetry import LogRecord
from tui.receiver.decode import ExportLogsServiceRequest, logs_from_request, parse_json, spans_from_request
from tui.receiver.files import SourceReport, read_requests

RECORDINGS = Path(__file__).parent / "fixtures" / "genai"

#: Operation names of a model call (GenAI semantic conventions, OpenLLMetry's ``llm.request.type``).
_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion"})


@dataclass(frozen=True)
class Facts:
    """What a recording holds, read from it when it was made."""

    spans: int
    traces: int
    model_calls: int
    models: frozenset[str]
    log_records: int = 0


# file stem -> Facts(spans, traces, model calls, models of the model calls, log records), as recorded
EXPECTED: dict[str, Facts] = {
    'openai-v2-capture-true': Facts(4, 4, 4, frozenset(['gpt-4o-mini'])),
    'openai-v2-latest-event': Facts(4, 4, 4, frozenset(['gpt-4o-mini']), 4),
    'openai-v2-latest-span-and-event': Facts(4, 4, 4, frozenset(['gpt-4o-mini']), 4),
    'openai-v2-latest-span': Facts(4, 4, 4, frozenset(['gpt-4o-mini'])),
    'openinference-langchain-default': Facts(16, 2, 3, frozenset(['gpt-4o-mini'])),
    'openinference-ollama-default': Facts(3, 3, 3, frozenset(['llama3.2'])),
    'openinference-openai-default': Facts(3, 3, 3, frozenset(['gpt-4o-mini'])),
    'openlit-default': Facts(6, 3, 3, frozenset(['gpt-4o-mini']), 3),
    'openllmetry-ollama-attributes': Facts(3, 3, 3, frozenset(['llama3.2'])),
    'openllmetry-ollama-events': Facts(3, 3, 3, frozenset(['llama3.2']), 11),
    'openllmetry-openai-attributes': Facts(3, 3, 3, frozenset(['gpt-4o-mini'])),
    'openllmetry-openai-events': Facts(3, 3, 3, frozenset(['gpt-4o-mini']), 11),
    'pydantic-ai-default': Facts(6, 2, 3, frozenset(['gpt-4o-mini'])),
    'strands-default': Facts(9, 2, 3, frozenset(['llama3.2'])),
    'strands-latest': Facts(9, 2, 3, frozenset(['llama3.2'])),
}


@dataclass
class Recording:
    spans: list[Span]
    logs: list[LogRecord]
    report: SourceReport


def load(path: Path) -> Recording:
    data = path.read_bytes()
    report = SourceReport(path.name)
    spans = [span for request in read_requests(path.name, data, report)
             for span in spans_from_request(request).spans]
    logs: list[LogRecord] = []
    for line in data.decode("utf-8").splitlines():
        if '"resourceLogs"' in line[:40]:
            logs.extend(logs_from_request(parse_json(ExportLogsServiceRequest, line.encode())))
    return Recording(spans, logs, report)


def is_model_call(span: Span) -> bool:
    """One request to a model, whichever convention says so (not an agent, chain, tool or workflow span)."""
    a = span.attributes
    return (a.get("gen_ai.operation.name") in _MODEL_OPERATIONS or a.get("llm.request.type") in _MODEL_OPERATIONS
            or a.get("openinference.span.kind") == "LLM")


def models(spans: list[Span]) -> frozenset[str]:
    found = set()
    for span in spans:
        for key in ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name"):
            value = span.attributes.get(key)
            if isinstance(value, str) and value:
                found.add(value)
    return frozenset(found)


def facts(recording: Recording) -> Facts:
    calls = [s for s in recording.spans if is_model_call(s)]
    return Facts(len(recording.spans), len({s.trace_id for s in recording.spans}), len(calls), models(calls),
                 len(recording.logs))


def test_every_recording_is_listed() -> None:
    on_disk = sorted(p.stem for p in RECORDINGS.glob("*.jsonl"))
    assert on_disk == sorted(EXPECTED)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_recording_loads_with_its_spans_models_and_logs(stem: str) -> None:
    recording = load(RECORDINGS / f"{stem}.jsonl")
    assert recording.spans, "no spans"
    assert not recording.report.damaged, recording.report.damaged
    assert recording.report.other_lines == 0
    assert facts(recording) == EXPECTED[stem]


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_lines_are_otlp_export_requests_as_received(stem: str) -> None:
    for number, line in enumerate((RECORDINGS / f"{stem}.jsonl").read_text("utf-8").splitlines(), 1):
        document = json.loads(line)
        assert list(document) in (["resourceSpans"], ["resourceLogs"]), f"line {number}: {list(document)}"


def main() -> None:  # prints EXPECTED as read from the recordings, after re-recording: python tests/test_genai_...
    for path in sorted(RECORDINGS.glob("*.jsonl")):
        f = facts(load(path))
        print(f"    {path.stem!r}: Facts({f.spans}, {f.traces}, {f.model_calls}, frozenset({sorted(f.models)!r})"
              + (f", {f.log_records}" if f.log_records else "") + "),")


if __name__ == "__main__":
    main()
