"""``python -m tui`` runs the ``ollama-tui`` command."""

import sys

from tui.cli import main

sys.exit(main())
