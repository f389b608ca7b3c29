"""The headless layers never import Textual or the UI: they run in --print, in benchmarks and in tests
without a terminal, and the UI depends on them, never the other way round."""

import json
import subprocess
import sys

HEADLESS = ["tui.model", "tui.model.live", "tui.model.conventions", "tui.receiver", "tui.receiver.files",
            "tui.chat.session", "tui.chat.tracing", "tui.console.run", "tui.console.printer", "tui.cli",
            "tui.programs", "tui.chat.replay", "tui.model.compare", "tui.model.replays", "tui.model.request",
            "tui.model.hosting"]
#: The UI's text builders: Rich only, so they are unit-tested without an app.
PRESENT = ["tui.app.present.detail", "tui.app.present.header", "tui.app.present.empty_state",
           "tui.app.present.sources", "tui.app.present.compare", "tui.app.present.conversation",
           "tui.app.present.stats"]


def imported(modules: list[str], packages: list[str]) -> list[str]:
    """Which of ``packages`` (or their submodules) a fresh interpreter holds after importing ``modules``."""
    code = (f"import json, sys\nfor m in {modules!r}: __import__(m)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if any(m == p or m.startswith(p + '.') "
            f"for p in {packages!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_headless_layers_import_neither_textual_nor_the_ui() -> None:
    assert imported(HEADLESS, ["textual", "tui.app"]) == []


def test_text_builders_import_no_textual() -> None:
    assert imported(PRESENT, ["textual"]) == []


def test_model_imports_no_network_stack() -> None:
    assert imported(["tui.model"], ["grpc", "aiohttp", "google.protobuf"]) == []
