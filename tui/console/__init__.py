"""Headless output for ``ollama-tui --print``: no Textual, just the receivers and stdout."""
