"""What the tests share that is not a pytest fixture: real receivers and exporters, event-loop waits,
recorded and hand-built spans, a fake Ollama, and helpers for reading the app under Pilot.

Fixtures stay in ``tests/conftest.py``; test modules import from here (``from support.receivers
import ...``), never from conftest. ``tests/`` is on ``sys.path`` under pytest (rootdir conftest,
prepend import mode) and in ``screenshots/make_screenshots.py``.

gRPC reads ``GRPC_VERBOSITY`` once, when it is first imported; setting it here, before any module of
this package can import grpc, keeps its C-core chatter out of test output.
"""

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")
