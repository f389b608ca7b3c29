"""The model, receiver and chat layers must not import Textual (they run headless and in --print)."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["tui.model", "tui.receiver", "tui.chat.session", "tui.chat.tracing", "tui.console.run", "tui.cli"])
def test_layer_does_not_import_textual(module: str) -> None:
    code = f"import sys, {module}; bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} pulled in {out}"


def test_model_imports_no_network_stack() -> None:
    code = "import sys, tui.model; print([m for m in ('grpc', 'aiohttp', 'google.protobuf') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
