"""The compare view of two model calls (issue 17): the model (:mod:`tui.model.compare`), what is drawn of it
(:mod:`tui.app.present.compare`) and the screen in a small host app.

Spans come from the committed recordings in ``tests/fixtures/genai`` (see ``tests/test_genai_recordings.py``:
the sky question answered "The sky is **blue**.", the weather call ``get_weather({"city": "Paris"})``) or are
built here with our own GenAI semantic-convention attributes, for completions that differ in chosen words.
"""

from __future__ import annotations

import json
from functools import cache

from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.widgets import Static

from test_genai_recordings import RECORDINGS, Recording, is_model_call, load
from tui.app.present.compare import completion_texts, diff_summary, figure_rows, figures_table, notes_text, title
from tui.app.screens.compare import CompareScreen
from tui.app.textual_compat import screen_lines
from tui.model.compare import (
    BOUNDED_NOTE,
    DELETE,
    EQUAL,
    INSERT,
    MAX_PIECES,
    REPLACE,
    UNCOMPARED,
    Comparison,
    Run,
    Side,
    WordOp,
    comparison,
    describe_spread,
    spread,
)
from tui.model.conventions import (
    CHAT_SERVICE,
    OPERATION_NAME,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PROVIDER_NAME,
    REPLAY_OF,
    REQUEST_MODEL,
)
from tui.model.span import Event, Link, Resource, Span, StatusCode

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SKY = "The sky is **blue**."
PARIS = 'get_weather({"city": "Paris"})'


@cache
def recording(stem: str) -> Recording:
    return load(RECORDINGS / f"{stem}.jsonl")


def model_calls(stem: str) -> list[tuple[Span, tuple[Event, ...]]]:
    """A recording's model calls in recorded order (sky question, weather call, weather answer), each with
    the log records naming it, as events."""
    rec = recording(stem)
    return [(span, tuple(r.as_event() for r in rec.logs if r.span_id and r.span_id == span.span_id))
            for span in sorted(rec.spans, key=lambda s: s.start_ns) if is_model_call(span)]


def compared(left: tuple[Span, tuple[Event, ...]], right: tuple[Span, tuple[Event, ...]]) -> Comparison:
    c = comparison(left[0], right[0], left[1], right[1])
    assert isinstance(c, Comparison), c
    return c


def call(span_id: str, text: str, *, model: str = "llama3.2", provider: str = "ollama", tokens: int | None = None,
         service: str = "app", seconds: float = 1.5, **attributes: object) -> Span:
    """A model call as our own chat spans record it (current GenAI conventions)."""
    a: dict[str, object] = {
        OPERATION_NAME: "chat", PROVIDER_NAME: provider, REQUEST_MODEL: model,
        OUTPUT_MESSAGES: json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": text}],
                                      "finish_reason": "stop"}]),
        **attributes,
    }
    if tokens is not None:
        a[OUTPUT_TOKENS] = tokens
    return Span(TRACE, span_id, f"chat {model}", 0, round(seconds * 1e9), attributes=a,
                resource=Resource({"service.name": service}))


def tone_palette(tone: str) -> Style:
    """Each tone as a style that says its name, so a test can read back which tone a piece of text got."""
    return Style(link=f"tone:{tone}")


def marked(text: Text, tone: str) -> list[str]:
    """The pieces of ``text`` styled with ``tone``."""
    return [text.plain[span.start:span.end] for span in text.spans
            if isinstance(span.style, Style) and span.style.link == f"tone:{tone}"]


# --- comparison of recorded calls --------------------------------------------------------------------

def test_the_same_call_recorded_by_two_conventions_compares_equal() -> None:
    openllmetry = model_calls("openllmetry-openai-attributes")
    otel = model_calls("openai-v2-latest-span")
    sky = compared(openllmetry[0], otel[0])
    assert sky.same_completion and sky.diff == (WordOp(EQUAL, SKY, SKY),)
    assert sky.left.model == sky.right.model == "gpt-4o-mini"
    assert sky.left.remote and sky.right.remote and not sky.left.local
    assert (sky.left.input_tokens, sky.left.output_tokens) == (26, 5)
    assert (sky.right.input_tokens, sky.right.output_tokens) == (26, 5)
    assert sky.notes == ("same model (gpt-4o-mini)",)
    assert diff_summary(sky) == "same completion"
    # the weather call: the same tool call, whatever spacing each convention gave its JSON arguments
    weather = compared(model_calls("openinference-openai-default")[1], otel[2])  # otel: chat, stream, tools
    assert weather.left.tool_calls == weather.right.tool_calls == (PARIS,)
    assert weather.left.completion == weather.right.completion == ""


def test_two_different_calls_differ_in_their_words_and_figures() -> None:
    sky, _, answer = model_calls("pydantic-ai-default")
    c = compared(sky, answer)
    assert c.left.completion == SKY and c.right.completion == "It is 18°C and sunny in Paris."
    assert "".join(op.left for op in c.diff) == c.left.completion
    assert "".join(op.right for op in c.diff) == c.right.completion
    assert not c.same_completion
    rows = {name: (a, b) for name, a, b in figure_rows(c)}
    assert rows["tokens in"] == ("26", "51") and rows["tokens out"] == ("5", "7")
    assert rows["model"] == ("gpt-4o-mini", "gpt-4o-mini") and rows["finish"] == ("stop", "stop")
    assert "tool calls" not in rows and "first token" not in rows  # neither side has one


def test_recorded_request_parameters_and_first_token_are_figures() -> None:
    openlit = model_calls("openlit-default")[0]
    ollama = model_calls("openinference-ollama-default")[0]
    c = compared(openlit, ollama)
    assert c.left.options == {"temperature": 1.0, "top_p": 1.0, "seed": 0} and c.right.options == {}
    rows = {name: (a, b) for name, a, b in figure_rows(c)}
    assert rows["parameters"] == ("temperature 1, top_p 1, seed 0", "–")
    table = figures_table(c, tone_palette)
    marked_rows = [str(name) for name, cell in zip(table.columns[0].cells, table.columns[2].cells, strict=True)
                   if cell.style.link == "tone:differs"]
    assert marked_rows == ["model", "provider", "parameters", "finish"]  # not the timings, which always differ
    assert rows["first token"][0].endswith("ms") and rows["first token"][1] == "–"
    assert rows["provider"] == ("openai (remote)", "ollama (local)")
    assert c.left.tokens_per_second is not None and c.left.time_to_first_token_s is not None


def test_a_remote_call_against_the_local_ollama_says_so() -> None:
    c = compared(model_calls("openai-v2-latest-span")[0], model_calls("openinference-ollama-default")[0])
    assert c.left.remote and c.right.local and not c.right.remote
    assert c.notes == (
        "the left ran on gpt-4o-mini (openai); the right ran on llama3.2 on the local Ollama: answers differ by "
        "model as well as by chance",
        "different models: gpt-4o-mini and llama3.2",
    )
    assert c.same_completion  # the fake servers answered alike


def test_a_framework_named_as_provider_is_neither_remote_nor_local() -> None:
    strands = compared(model_calls("strands-default")[0], model_calls("openllmetry-ollama-attributes")[0])
    assert not strands.left.remote and not strands.left.local and strands.left.provider == "strands-agents"
    assert strands.right.local  # OpenLLMetry's "Ollama", capitalised
    assert strands.notes == ("same model (llama3.2)",)


def test_a_replay_on_the_local_model_names_the_original_and_the_replay() -> None:
    original, events = model_calls("openllmetry-openai-attributes")[0]
    replay = call("00f067aa0ba902b7", "The sky is blue because of Rayleigh scattering.", provider="ollama",
                  service=CHAT_SERVICE, **{REPLAY_OF: original.span_id})
    c = compared((original, events), (replay, ()))
    assert c.names == ("original", "replay")
    assert c.notes[:2] == (
        "the right is a replay of the left",
        "the original ran on gpt-4o-mini (openai); the replay ran on llama3.2 on the local Ollama: answers "
        "differ by model as well as by chance",
    )
    swapped = c.swapped()
    assert swapped.names == ("replay", "original")
    assert swapped.notes[0] == "the left is a replay of the right"
    assert [op.kind for op in swapped.diff] == [op.kind for op in c.diff]  # both sides had words replaced
    assert "".join(op.left for op in swapped.diff) == c.right.completion
    # the span link alone says so too, and the chat pane's own span is local whatever its provider says
    linked = Span(TRACE, "00f067aa0ba902b8", "chat llama3.2", 0, 1, attributes=replay.attributes | {
        REPLAY_OF: "", PROVIDER_NAME: ""}, links=(Link(original.trace_id, original.span_id),),
        resource=Resource({"service.name": CHAT_SERVICE}))
    via_link = compared((original, events), (linked, ()))
    assert via_link.names == ("original", "replay") and via_link.right.local


def test_a_call_that_recorded_no_content_or_failed_says_so() -> None:
    empty = compared(model_calls("openai-v2-capture-true")[0], model_calls("openai-v2-latest-span")[0])
    assert empty.left.completion == "" and empty.notes[-1] == (
        "the left span recorded no completion (its instrumentation may not capture content)")
    failed = Span(TRACE, "00f067aa0ba902b9", "chat llama3.2", 0, 10, status_code=StatusCode.ERROR,
                  attributes={OPERATION_NAME: "chat", PROVIDER_NAME: "ollama", REQUEST_MODEL: "llama3.2",
                              "error.type": "http.404"})
    c = compared(model_calls("openinference-ollama-default")[0], (failed, ()))
    assert "the right call failed: http.404" in c.notes
    assert ("status", "ok", "failed: http.404") in figure_rows(c)
    table = figures_table(c, tone_palette)
    names = [str(cell) for cell in table.columns[0].cells]
    status, model = names.index("status"), names.index("model")
    cells = [list(column.cells) for column in table.columns[1:]]
    assert [cells[0][status].style.link, cells[1][status].style.link] == [None, "tone:error"]
    assert [cells[0][model].style.link, cells[1][model].style.link] == [None, None]  # llama3.2 on both sides
    right = completion_texts(c, tone_palette)[1]
    assert marked(right, "error") == ["failed: http.404\n"] and right.plain.endswith("(no completion recorded)")


# --- what cannot be compared ---------------------------------------------------------------------------

def test_a_span_that_is_no_model_call_gives_the_reason() -> None:
    rec = recording("strands-default")
    by_name = {span.name: span for span in rec.spans}
    sky = model_calls("strands-default")[0][0]
    assert comparison(by_name["execute_event_loop_cycle"], sky) == (
        "the left span is a chain step, not a model call: compare two LLM spans")
    assert comparison(sky, by_name["execute_tool get_weather"]) == (
        "the right span is a tool execution, not a model call: compare two LLM spans")
    assert comparison(sky, by_name["invoke_agent weather"]) == (
        "the right span is an agent run, not a model call: compare two LLM spans")
    plain = Span(TRACE, "00f067aa0ba90200", "GET /", 0, 1, attributes={"http.method": "GET"})
    assert comparison(plain, sky) == "the left span carries no LLM data: compare two LLM spans"
    assert comparison(sky, sky) == "both sides are the same span: mark another LLM span to compare it with"


# --- the word diff -----------------------------------------------------------------------------------

def test_the_diff_marks_exactly_the_changed_words() -> None:
    left = call("00f067aa0ba90201", "The sky is blue because air scatters short waves.\nThat is all.")
    right = call("00f067aa0ba90202", "The sky looks blue because air scatters blue light.\nThat is all.\nBye.")
    c = comparison(left, right)
    assert isinstance(c, Comparison)
    assert c.diff == (
        WordOp(EQUAL, "The sky ", "The sky "),
        WordOp(REPLACE, "is ", "looks "),
        WordOp(EQUAL, "blue because air scatters ", "blue because air scatters "),
        WordOp(REPLACE, "short waves.\n", "blue light.\n"),
        WordOp(EQUAL, "That is all.", "That is all.\n"),
        WordOp(INSERT, "", "Bye."),
    )
    a, b = completion_texts(c, tone_palette)
    assert a.plain == c.left.completion and b.plain == c.right.completion
    assert marked(a, "removed") == ["is", "short waves."] and marked(a, "added") == []
    assert marked(b, "added") == ["looks", "blue light.", "Bye."] and marked(b, "removed") == []
    assert diff_summary(c) == "3 words only in the left, 4 words only in the right"


def test_whitespace_alone_is_no_difference_and_texts_rebuild_exactly() -> None:
    left = call("00f067aa0ba90203", "  one two\nthree ")
    right = call("00f067aa0ba90204", "one  two three\n\n")
    c = comparison(left, right)
    assert isinstance(c, Comparison)
    assert c.same_completion
    assert "".join(op.left for op in c.diff) == "  one two\nthree "
    assert "".join(op.right for op in c.diff) == "one  two three\n\n"


def test_words_only_on_one_side_are_deletions_or_insertions() -> None:
    c = comparison(call("00f067aa0ba90205", "a b c d"), call("00f067aa0ba90206", "a c d e"))
    assert isinstance(c, Comparison)
    assert [(op.kind, op.left, op.right) for op in c.diff] == [
        (EQUAL, "a ", "a "), (DELETE, "b ", ""), (EQUAL, "c d", "c d "), (INSERT, "", "e")]


def test_a_very_long_or_repetitive_completion_stays_bounded_and_says_so() -> None:
    # 15,000 words alternating two words: few enough words, but 112 M pairs of equal words to look at
    left, right = "a b " * 7_500 + "the end.", "b a " * 7_500 + "the end."
    repetitive = comparison(call("00f067aa0ba90207", left), call("00f067aa0ba90208", right))
    assert isinstance(repetitive, Comparison)
    assert repetitive.diff_note == BOUNDED_NOTE and BOUNDED_NOTE in repetitive.notes
    assert [op.kind for op in repetitive.diff] == [UNCOMPARED, EQUAL] and repetitive.diff[1].left == "the end."
    assert "".join(op.left for op in repetitive.diff) == left
    assert "".join(op.right for op in repetitive.diff) == right
    # as many lines as words: too many to compare line by line, so word by word, and too repetitive for that
    many = comparison(call("00f067aa0ba90211", "yes\n" * 30_000), call("00f067aa0ba90212", "no\n" + "yes\n" * 30_000))
    assert isinstance(many, Comparison) and many.diff_note == ""
    assert [(op.kind, op.right) for op in many.diff if op.kind != EQUAL] == [(INSERT, "no\n")]
    # many more words than the limit, on lines: compared line by line, words marked inside the changed line
    lines = [f"line {n} says something about item {n}." for n in range(MAX_PIECES // 2)]
    changed = list(lines)
    for n in (0, 5_000, len(lines) - 1):  # the common beginning and end alone leave 70,000 words between them
        changed[n] = lines[n].replace("something", "nothing")
    c = comparison(call("00f067aa0ba90209", "\n".join(lines)), call("00f067aa0ba9020a", "\n".join(changed)))
    assert isinstance(c, Comparison)
    assert c.diff_note == ""
    assert [(op.left, op.right) for op in c.diff if op.kind != EQUAL] == [("something ", "nothing ")] * 3
    # a million characters on each side: drawn up to the limit, the rest counted
    huge = "word " * 200_000
    big = comparison(call("00f067aa0ba9020b", huge), call("00f067aa0ba9020c", huge + "more"))
    assert isinstance(big, Comparison)
    a, b = completion_texts(big, limit=1_000)
    assert len(a.plain) < 1_100 and a.plain.endswith("… 999,000 more characters not shown")
    assert b.plain.endswith("… 999,004 more characters not shown")


def test_span_text_is_shown_as_typed_never_as_markup_or_escapes() -> None:
    hostile = "\x1b[2J[bold]boom[/] \x07"
    c = comparison(call("00f067aa0ba9020d", hostile, model="[red]x[/]"), call("00f067aa0ba9020e", "calm"))
    assert isinstance(c, Comparison)
    a, _ = completion_texts(c)
    assert a.plain == "\\e[2J[bold]boom[/] \\x07"
    assert "[red]x[/]" in title(c) and "\x1b" not in notes_text(c).plain


# --- the spread of N runs ------------------------------------------------------------------------------

def test_spread_of_runs() -> None:
    runs = [Run("The sky is blue.", 10, 0.81), Run(" The sky is blue.\n", 12, 1.02), Run("Blue.", 20, 1.5),
            Run("It is blue.", 11, 0.9), Run("Blue.", 15, 1.2)]
    s = spread(runs)
    assert (s.runs, s.distinct, s.output_tokens, s.latency) == (5, 3, (10, 12, 20), (0.81, 1.02, 1.5))
    assert describe_spread(s) == ("5 runs · 3 distinct completions · output tokens 10 / 12 / 20 "
                                  "(min / median / max) · latency 0.81 / 1.02 / 1.50 s")
    partial = spread([Run("a", 10, 1.0), Run("a", None, 2.0), Run("b", 11, 3.0), Run("b", None, 4.0)])
    assert describe_spread(partial) == ("4 runs · 2 distinct completions · output tokens 10 / 10.5 / 11 "
                                        "(min / median / max of 2 runs) · latency 1.00 / 2.50 / 4.00 s")
    assert describe_spread(spread([Run("a", None, 0.5)])) == (
        "1 run · 1 distinct completion · output tokens not reported · latency 0.50 / 0.50 / 0.50 s")
    assert describe_spread(spread([])) == "no runs"


def test_runs_from_recorded_calls() -> None:
    sides = [Side.from_span(span, events) for span, events in model_calls("openlit-default")]
    runs = [Run(side.completion, side.output_tokens, side.duration_s) for side in sides if isinstance(side, Side)]
    s = spread(runs)
    assert (s.runs, s.distinct, s.output_tokens) == (3, 3, (5, 7, 12))  # sky answer, tool call (no text), weather


# --- the screen ----------------------------------------------------------------------------------------

class Host(App[None]):
    """Opens the compare screen over an empty default screen."""

    def __init__(self, c: Comparison) -> None:
        super().__init__()
        self.comparison = c

    def on_mount(self) -> None:
        self.push_screen(CompareScreen(self.comparison))


def replay_comparison() -> Comparison:
    original, events = model_calls("openllmetry-openai-attributes")[0]
    replay = call("00f067aa0ba90210", "The sky is blue because of Rayleigh scattering.", tokens=9,
                  service=CHAT_SERVICE, **{REPLAY_OF: original.span_id})
    return compared((original, events), (replay, ()))


async def test_compare_screen_at_80x24_shows_both_models_and_the_marked_words() -> None:
    host = Host(replay_comparison())
    async with host.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = host.screen
        assert isinstance(screen, CompareScreen)
        text = "\n".join(screen_lines(screen))
        assert "gpt-4o-mini" in text and "llama3.2" in text
        assert "a replay of the left" in text and "local Ollama" in text
        assert "original: openai.chat (gpt-4o-mini)" in text and "replay: chat llama3.2" in text
        left = screen.query_one("#compare-left", Static).content
        right = screen.query_one("#compare-right", Static).content
        assert isinstance(left, Text) and isinstance(right, Text)
        removed, added = screen.palette("removed"), screen.palette("added")
        assert removed != added and removed.strike
        assert [left.plain[s.start:s.end] for s in left.spans if s.style == removed] == ["**blue**."]
        assert [right.plain[s.start:s.end] for s in right.spans if s.style == added] == [
            "blue because of Rayleigh scattering."]
        assert "Rayleigh" in text
        sides = screen.query_one("#compare-sides")
        assert not sides.has_class("-stacked")
        assert screen.query_one("#compare-left-scroll").region.width < 42  # side by side, each half
        host.theme = "textual-light" if host.theme != "textual-light" else "nord"  # colours follow the theme
        await pilot.pause()
        assert screen.palette("removed") != removed
        left = screen.query_one("#compare-left", Static).content
        assert isinstance(left, Text) and screen.palette("removed") in [s.style for s in left.spans]
        await pilot.press("s")
        assert "replay: chat llama3.2" in screen.query_one("#compare-left-heading", Static).content
        await pilot.press("escape")
        assert not isinstance(host.screen, CompareScreen)


async def test_compare_screen_stacks_the_completions_on_a_narrow_terminal() -> None:
    host = Host(replay_comparison())
    async with host.run_test(size=(60, 30)) as pilot:
        await pilot.pause()
        screen = host.screen
        assert screen.query_one("#compare-sides").has_class("-stacked")
        left, right = screen.query_one("#compare-left-scroll"), screen.query_one("#compare-right-scroll")
        assert left.region.y < right.region.y and left.region.width > 50
        await pilot.press("q")
        assert not isinstance(host.screen, CompareScreen)
