"""What the copy key says: where the text went, and what to do when it may not have arrived.

Textual copies with OSC 52, an escape sequence the terminal may ignore without telling anyone
(tmux does by default), so the message never claims more than was done and names the fallbacks.
"""

from __future__ import annotations

from collections.abc import Mapping

FALLBACKS = "Y saves it to a file, o shows it to select by hand"


def copy_report(title: str, characters: int, environ: Mapping[str, str]) -> str:
    what = f"{title!r} ({characters:,} characters)"
    if "TMUX" in environ:
        return (f"Sent {what} to the clipboard, but tmux passes it on only with `set -g set-clipboard on`; "
                f"{FALLBACKS}")
    if "STY" in environ:
        return f"Sent {what} to the clipboard, but GNU screen does not pass it on; {FALLBACKS}"
    return f"Sent {what} to the terminal's clipboard (OSC 52); if it did not arrive, {FALLBACKS}"
