"""Every use of Textual's private API, in one place: after a Textual upgrade, check this module."""

from __future__ import annotations

from textual.app import App
from textual.geometry import Size
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.widgets import OptionList


def resize_scroll_area_in_place(view: ScrollView, size: Size) -> None:
    """Set ``view``'s virtual size and update its scrollbars without a layout pass of the screen
    (assigning ``virtual_size`` re-lays out every widget on screen)."""
    view.set_reactive(ScrollView.virtual_size, size)
    view._scroll_update(size)


def screen_lines(screen: Screen[object]) -> list[str]:
    """The screen as the terminal receives it, one string per line (for tests and screenshots)."""
    return [strip.text for strip in screen._compositor.render_strips()]


def notification_texts(app: App[object]) -> list[str]:
    """The messages of the notifications on screen now, titles first (for tests)."""
    return [f"{note.title}: {note.message}" if note.title else note.message for note in app._notifications]


def forget_option_heights(options: OptionList) -> None:
    """Make ``options`` measure its items again: it caches each item's wrapped height at one width and
    would draw a long item cut short (its last line lost) after the width changed."""
    options._clear_caches()
