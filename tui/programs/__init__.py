"""Programs run under ollama-tui (``ollama-tui -- COMMAND``, ``--run``), their exporters pointed at the receivers.

Never imports Textual or Rich: the same engine serves the Output pane and ``--print``.
"""

from tui.programs.environment import otel_environment, service_name_for
from tui.programs.output import OutputBuffer, OutputLine, TextStyle
from tui.programs.program import DEFAULT_GRACE, Listener, Program, ProgramStartError, State, Status
from tui.programs.program_set import ProgramSet, is_ollama_serve, parse_command

__all__ = ["otel_environment", "service_name_for", "OutputBuffer", "OutputLine", "TextStyle", "DEFAULT_GRACE",
           "Listener", "Program", "ProgramStartError", "State", "Status", "ProgramSet", "is_ollama_serve",
           "parse_command"]
