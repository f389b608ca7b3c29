"""The help screen: every key, generated from the bindings themselves so it can never go stale."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEY_NAMES = {"pageup": "PgUp", "pagedown": "PgDn", "question_mark": "?", "slash": "/", "escape": "Esc",
             "enter": "Enter", "tab": "Tab", "up": "↑", "down": "↓", "left": "←", "right": "→",
             "home": "Home", "end": "End", "ctrl+c": "Ctrl+C", "ctrl+p": "Ctrl+P", "greater_than_sign": ">",
             "number_sign": "#"}


def key_label(keys: str) -> str:
    return " ".join(KEY_NAMES.get(k, k) for k in keys.split(","))


def bindings_table(sections: Iterable[tuple[str, Iterable[BindingType]]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for title, bindings in sections:
        table.add_row("", "")
        table.add_row(f"[b]{title}[/b]", "")
        for binding in bindings:
            if isinstance(binding, Binding):
                table.add_row(key_label(binding.key), binding.tooltip or binding.description)
    return table


INTRO = (
    "ollama-tui shows OpenTelemetry traces as they arrive. Select a trace or span on the left;"
    " its LLM prompt, completion and tokens, attributes, events and timeline are on the right.\n"
)


#: The filter bar's query language (see ``tui/model/query.py``): (what is typed, what it finds).
QUERY_TERMS = (
    ("text  \"two words\"", "text in span names, attributes, events, prompts, services (any case); "
                            "a trace or span id, or its first 8+ hex digits"),
    ("service:NAME", "the span's service, whole, any case; * is a wildcard (service:check*)"),
    ("name:TEXT", "text in the span's name"),
    ("model:NAME", "request or response model, whole, * wildcard; llama3.2 also finds llama3.2:latest"),
    ("status:error|ok|unset", "the span's status"),
    ("kind:server|client|…", "the span's kind (internal, producer, consumer, unspecified too)"),
    ("dur>500ms  dur<2s", "the span's duration (> >= < <=; ns us ms s m h)"),
    ("tokens>1000", "the span's tokens, input + output (1k, 1.5k)"),
    ("in_tokens>  out_tokens>", "its input / output tokens"),
    ("ttft>1s", "its time to first token"),
    ("key=value", "an attribute (span, event, link, resource) with exactly that value"),
    ("key~text", "an attribute whose value contains the text, any case"),
    ("has:key", "the span or its resource has that attribute"),
    ("-term", "not that term"),
    ("a b  /  a OR b", "both (the default) / either; OR binds loosest: a b OR c = (a b) OR c"),
)
QUERY_NOTE = ("A trace is listed when one of its spans matches the whole query; expanded, its matching spans are "
              "marked ◆. A query that does not parse is shown in red under the bar, and the filter stays as it "
              "was. > sorts the list: newest, oldest, longest, most tokens, slowest first token, errors first.")


def query_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    table.add_row("", "")
    table.add_row("[b]Filter queries (/)[/b]", "")
    for typed, meaning in QUERY_TERMS:
        table.add_row(typed, meaning)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; height: 90%; background: $surface; border: thick $accent;
                                  padding: 0 2; }
    """

    def __init__(self, sections: list[tuple[str, Sequence[BindingType]]], intro: str = INTRO) -> None:
        super().__init__()
        self.sections = sections
        self.intro = intro

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.intro, markup=False)
            yield Static(bindings_table(self.sections))
            yield Static(query_table())
            yield Static("\n" + QUERY_NOTE, markup=False)
