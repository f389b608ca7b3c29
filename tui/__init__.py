"""ollama-tui: a live OpenTelemetry span viewer for the terminal."""

__version__ = "0.1.0"
