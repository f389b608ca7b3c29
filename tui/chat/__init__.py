"""The chat pane's engine: traced requests to Ollama with the official ``ollama`` package.

Never imports Textual: a chat turn is an async generator of events the UI renders.
"""
