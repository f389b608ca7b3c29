"""The compare screen: two model calls side by side (an original and its replay, or any two marked spans).

Title and notes on top, then the figures of both calls in one table, then the two completions, each in its
own scrolling pane with the words only on its side marked; on terminals narrower than :data:`STACK_BELOW`
columns the panes are stacked instead. What is drawn comes from :mod:`tui.app.present.compare`; the colours
from this screen's component classes, so a theme change recolours it.
"""

from __future__ import annotations

from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.app.present.compare import TONES, completion_texts, figures_table, notes_text, side_heading, title
from tui.model.compare import Comparison

#: Below this width the two completions are stacked (side by side each would be under 35 columns).
STACK_BELOW = 70


class CompareScreen(Screen[None]):
    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="compare.close"),
        Binding("s", "swap", "Swap sides", tooltip="Exchange the left and right columns", id="compare.swap"),
    ]
    COMPONENT_CLASSES = {f"compare--{tone}" for tone in TONES}
    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen #compare-title { height: auto; padding: 0 1; text-style: bold; background: $accent 30%; }
    CompareScreen #compare-top { height: auto; max-height: 65%; padding: 0 1; scrollbar-size-vertical: 1; }
    CompareScreen #compare-notes { height: auto; }
    CompareScreen #compare-figures { height: auto; }
    CompareScreen #compare-sides { height: 1fr; min-height: 5; }
    CompareScreen #compare-sides.-stacked { layout: vertical; }
    CompareScreen .compare-side { width: 1fr; height: 1fr; }
    CompareScreen .compare-heading { height: 1; padding: 0 1; text-style: bold; background: $panel; }
    CompareScreen .compare-side VerticalScroll { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    CompareScreen .compare-side VerticalScroll:focus { background-tint: $foreground 5%; }
    CompareScreen > .compare--heading { text-style: bold; }
    CompareScreen > .compare--label { color: $text-muted; }
    CompareScreen > .compare--note { color: $text-muted; }
    CompareScreen > .compare--error { color: $text-error; text-style: bold; }
    CompareScreen > .compare--removed { color: $text-error; background: $error-muted; text-style: strike; }
    CompareScreen > .compare--added { color: $text-success; background: $success-muted; text-style: bold; }
    CompareScreen > .compare--differs { color: $text-warning; text-style: bold; }
    CompareScreen > .compare--uncompared { color: $text-muted; }
    CompareScreen > .compare--muted { color: $text-muted; text-style: italic; }
    """

    def __init__(self, comparison: Comparison) -> None:
        super().__init__()
        self.comparison = comparison

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title", markup=False)
        with VerticalScroll(id="compare-top"):
            yield Static(id="compare-notes", markup=False)
            yield Static(id="compare-figures", markup=False)
        with Horizontal(id="compare-sides"):
            for side in ("left", "right"):
                with Vertical(classes="compare-side"):
                    yield Static(id=f"compare-{side}-heading", classes="compare-heading", markup=False)
                    with VerticalScroll(id=f"compare-{side}-scroll"):
                        yield Static(id=f"compare-{side}", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.show()
        self.query_one("#compare-left-scroll").focus()
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def _theme_changed(self) -> None:
        """The texts hold styles resolved from the old theme: built again once the new one applies."""
        self.call_after_refresh(self.show)

    def on_resize(self, event: events.Resize) -> None:
        self.query_one("#compare-sides").set_class(event.size.width < STACK_BELOW, "-stacked")

    def palette(self, tone: str) -> Style:
        """A tone's style from the current theme."""
        return self.get_component_rich_style(f"compare--{tone}", partial=True)

    def show(self) -> None:
        c = self.comparison
        self.query_one("#compare-title", Static).update(title(c))
        self.query_one("#compare-notes", Static).update(notes_text(c, self.palette))
        self.query_one("#compare-figures", Static).update(figures_table(c, self.palette))
        for which, (side, text) in enumerate(zip(("left", "right"), completion_texts(c, self.palette), strict=True)):
            self.query_one(f"#compare-{side}-heading", Static).update(side_heading(c, which))
            self.query_one(f"#compare-{side}", Static).update(text)

    def action_swap(self) -> None:
        self.comparison = self.comparison.swapped()
        self.show()
