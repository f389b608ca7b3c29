"""Widgets of the ollama-tui screen."""
