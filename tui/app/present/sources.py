"""What the Sources screen says: one row per exporter, then the doctor's diagnoses.

Peer addresses, service names and SDK names come from the network, so they are cut and made safe
here, once, like any span text, and handed to the table as Rich ``Text``: a plain string in a
``DataTable`` cell would be read as markup.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from tui.model.text import format_age, safe_text
from tui.receiver.doctor import Diagnosis
from tui.receiver.sources import Source

#: The Sources table's columns, in order (``source_cells`` fills them).
COLUMNS = ("host", "transport", "service", "SDK", "signals", "accepted", "refused", "spans", "seen")
_CELL = 40


def _cut(text: str, width: int = _CELL) -> str:
    text = safe_text(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def source_cells(source: Source, now: float) -> tuple[Text, ...]:
    """One row of the table; a service of "" is a request refused before its body was read."""
    sdk = " ".join(part for part in (source.sdk_language, source.sdk_version) if part)
    refused = ", ".join(f"{n:,} {reason}" for reason, n in source.refused.most_common())
    cells = (_cut(source.host), source.transport, _cut(source.service) or "(unknown)", _cut(sdk) or "–",
             ", ".join(sorted(source.signals)) or "–", f"{source.accepted:,}", _cut(refused, 60) or "–",
             f"{source.spans:,}", f"{format_age(now - source.last_seen)} ago")
    return tuple(Text(cell) for cell in cells)


def diagnosis_line(diagnosis: Diagnosis, now: float) -> str:
    """The problem and its fix, then how often and how lately it was seen."""
    times = "once" if diagnosis.count == 1 else f"{diagnosis.count:,} times"
    return f"{safe_text(diagnosis.text)} ({times}, last {format_age(now - diagnosis.last_seen)} ago)"


def sources_intro(sources: Sequence[Source], problems: Sequence[Diagnosis], dropped: int) -> str:
    """The line above the table: how many exporters, and whether any of them is failing."""
    if not sources and not problems:
        return "No exporter has sent anything yet. Point one at the addresses in the header."
    line = f"{len(sources):,} source{'s' if len(sources) != 1 else ''} (peer host, transport and service.name)"
    if dropped:
        line += f"; {dropped:,} least recently seen dropped from the table"
    if problems:
        line += f". {len(problems):,} problem{'s' if len(problems) != 1 else ''} below, each with its fix."
    return line
