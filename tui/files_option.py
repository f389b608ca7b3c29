"""The ``--load`` / ``--save`` options as the app and ``--print`` receive them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileOptions:
    #: (display name, bytes) of every ``--load`` file, read before start-up.
    sources: list[tuple[str, bytes]] = field(default_factory=list)
    save: Path | None = None
