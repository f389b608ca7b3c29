"""The programs of one ollama-tui session (``-- COMMAND`` and each ``--run``), each pointed at the receivers."""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from tui.chat.host import DEFAULT_HOST, normalize_host
from tui.programs.environment import otel_environment, service_name_for
from tui.programs.program import DEFAULT_GRACE, Listener, Program, ProgramStartError, Status


def parse_command(text: str) -> list[str]:
    """``--run 'COMMAND'`` split as a shell splits words (no pipes or ``&&``: wrap those in ``sh -c``)."""
    try:
        argv = shlex.split(text)
    except ValueError as exc:  # an unclosed quote
        raise ProgramStartError(text, str(exc).lower()) from None
    if not argv:
        raise ProgramStartError(text, "empty command")
    return argv


class ProgramSet:
    """Several programs started, followed and stopped together."""

    def __init__(self, programs: Sequence[Program]) -> None:
        self.programs = list(programs)

    @classmethod
    def for_receivers(cls, commands: Sequence[Sequence[str]], addresses: Sequence[tuple[str, str]], *,
                      token: str | None = None, ca_file: str | os.PathLike[str] | None = None,
                      base_env: Mapping[str, str] | None = None, **options: Any) -> ProgramSet:
        """One program per ``argv``, its exporters pointed at ``addresses`` (``OtlpReceivers.addresses``);
        ``options`` go to each :class:`Program`."""
        programs = []
        for argv in commands:
            env, overridden = otel_environment(addresses, service_name=service_name_for(argv), token=token,
                                               ca_file=ca_file, base_env=os.environ if base_env is None else base_env)
            programs.append(Program(argv, env=env, overridden=overridden, **options))
        return cls(programs)

    def add_listener(self, listener: Listener) -> None:
        for program in self.programs:
            program.listeners.append(listener)

    async def start_all(self) -> None:
        """Start each in order; if one cannot be started, stop those that were and raise its error."""
        for program in self.programs:
            try:
                await program.start()
            except ProgramStartError:
                await self.stop_all()
                raise

    async def stop_all(self, grace: float = DEFAULT_GRACE) -> list[Status]:
        """Stop them all at once (each gets the whole grace period). Call it before stopping the receivers,
        so that the spans the programs flush on their way out still have somewhere to go."""
        return list(await asyncio.gather(*(program.stop(grace) for program in self.programs)))

    async def wait_all(self) -> list[Status]:
        return list(await asyncio.gather(*(program.wait() for program in self.programs)))

    @property
    def returncode(self) -> int:
        """The first program's non-zero status, else 0: what ``--print`` exits with once they have ended."""
        return next((code for program in self.programs if (code := program.status.returncode)), 0)

    def ollama_serve(self) -> tuple[Program, str] | None:
        """The ``ollama serve`` among them and the address it listens on (for the chat pane), if any."""
        for program in self.programs:
            if is_ollama_serve(program.argv):
                env = os.environ if program.env is None else program.env
                return program, _connectable(normalize_host(env.get("OLLAMA_HOST") or DEFAULT_HOST))
        return None


def is_ollama_serve(argv: Sequence[str]) -> bool:
    """``ollama serve`` (with any path to the binary and any flags)."""
    words = [arg for arg in argv[1:] if not arg.startswith("-")]
    return bool(argv) and os.path.basename(argv[0]) == "ollama" and words[:1] == ["serve"]


def _connectable(url: str) -> str:
    """A server listening on every interface is reached on loopback."""
    return url.replace("://0.0.0.0:", "://127.0.0.1:").replace("://[::]:", "://[::1]:")
