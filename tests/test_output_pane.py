"""The Output pane in the real app: a real child program run with the environment ollama-tui gives it, its
output beside its traces, R to restart it, O to hide the pane, z to zoom it."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from textual.widgets import RichLog, TabbedContent

from support.app import SIZE, screen_text, trace_list_lines, wait_until
from support.receivers import Running
from tui.app.app import OllamaTuiApp
from tui.app.textual_compat import notification_texts
from tui.app.widgets.output import OutputPane, ProgramOutput
from tui.programs import ProgramSet, State

APP = str(Path(__file__).parent / "programs" / "traced_app.py")


def user_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


@contextlib.asynccontextmanager
async def programs_running(running: Running, *args: str, also: list[str] | None = None) -> AsyncIterator[ProgramSet]:
    """The traced app run with ``args`` (and a second one with ``also``), stopped however the test ends."""
    commands = [[sys.executable, APP, *args]] + ([[sys.executable, APP, *also]] if also is not None else [])
    programs = ProgramSet.for_receivers(commands, running.receivers.addresses, base_env=user_env())
    await programs.start_all()
    try:
        yield programs
    finally:
        await programs.stop_all(grace=1.0)


def log_lines(app: OllamaTuiApp) -> list[str]:
    log = app.traces.query_one(ProgramOutput).query_one(RichLog)
    return [strip.text.rstrip() for strip in log.lines]


async def test_the_programs_output_and_its_traces_side_by_side_then_restart(app_receivers: Running) -> None:
    async with programs_running(app_receivers, "--escapes", "--until-term", "flush") as programs:
        app = OllamaTuiApp(app_receivers.receivers, app_receivers.store, programs=programs)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "waiting for SIGTERM" in log_lines(app), timeout=30)
            lines = log_lines(app)
            assert lines[0].startswith("started pid ") and lines[0].endswith("tty True")
            assert "out 1" in lines and "err 1" in lines  # stdout and stderr, both through the terminal
            assert any(line.startswith("beforeafter") for line in lines)  # the clipboard write and moves dropped
            program = programs.programs[0]
            header = screen_text(app)
            assert f"traced_app.py --escapes --until-term flush · pid {program.status.pid} · running" in header
            assert f"{Path(sys.executable).name} " in header  # the interpreter's name, not its whole path
            assert "traced_app ● running" not in header  # one program: no tab row, the status line names it
            # Its spans arrive within the short batch delay the environment set.
            await wait_until(pilot, lambda: any("job" in line for line in trace_list_lines(app)), timeout=30)
            assert "traced_app" in trace_list_lines(app)[0]

            first_pid = program.status.pid
            await pilot.press("R")  # SIGTERM: the program flushes its spans and exits; a new run starts
            await wait_until(pilot, lambda: program.status.run == 2 and program.status.pid != first_pid, timeout=30)
            await wait_until(pilot, lambda: "── restarted: run 2 ──" in log_lines(app), timeout=30)
            before = log_lines(app).index("── restarted: run 2 ──")
            assert "flushed" in log_lines(app)[:before]
            await wait_until(pilot, lambda: log_lines(app).count("waiting for SIGTERM") == 2, timeout=30)


async def test_o_hides_the_pane_and_z_gives_it_the_screen(app_receivers: Running) -> None:
    async with programs_running(app_receivers, "--exit", "3") as programs:
        app = OllamaTuiApp(app_receivers.receivers, app_receivers.store, programs=programs)
        async with app.run_test(size=(80, 24)) as pilot:
            pane = app.traces.query_one(OutputPane)
            await wait_until(pilot, lambda: "exited 3" in screen_text(app), timeout=30)
            assert "traced_app.py --exit 3 · pid " in screen_text(app)
            await pilot.press("O")
            assert not pane.display
            await pilot.press("O")
            assert pane.display
            await pilot.press("tab", "tab")  # list → detail → output
            assert pane.focus_target.has_focus
            await pilot.press("z")
            assert app.traces.zoomed == "output"
            await pilot.pause()
            main = app.traces.query_one("#main")
            assert not main.display and pane.display
            await pilot.press("z")
            await pilot.pause()
            assert main.display


async def test_without_programs_o_and_r_say_how_to_run_one(app_receivers: Running) -> None:
    app = OllamaTuiApp(app_receivers.receivers, app_receivers.store)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("O")
        await pilot.pause()
        assert any("ollama-tui -- COMMAND" in text for text in notification_texts(app))


async def test_several_programs_get_a_tab_each_and_r_restarts_the_one_shown(app_receivers: Running) -> None:
    async with programs_running(app_receivers, "--until-term", "flush", also=["--exit", "3"]) as programs:
        app = OllamaTuiApp(app_receivers.receivers, app_receivers.store, programs=programs)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "traced_app ○ exited 3" in screen_text(app), timeout=30)
            assert "traced_app ● running" in screen_text(app)  # the first tab, its state in its label
            pane = app.traces.query_one(OutputPane)
            first, second = programs.programs
            assert pane.shown is first
            pane.query_one(TabbedContent).active = "program-1"
            await pilot.pause()
            assert pane.shown is second
            await pilot.press("R")  # the exited one starts again; the running one is left alone
            await wait_until(pilot, lambda: second.status.run == 2, timeout=30)
            assert first.status.run == 1 and first.status.alive


async def test_keys_keep_working_while_a_program_is_slow_to_stop(app_receivers: Running) -> None:
    async with programs_running(app_receivers, "--until-term", "ignore") as programs:
        app = OllamaTuiApp(app_receivers.receivers, app_receivers.store, programs=programs)
        async with app.run_test(size=SIZE) as pilot:
            program = programs.programs[0]
            await wait_until(pilot, lambda: "waiting for SIGTERM" in log_lines(app), timeout=30)
            await pilot.press("R")  # it ignores SIGTERM: the restart waits out the grace period
            await wait_until(pilot, lambda: program.status.state is State.STOPPING)
            await pilot.press("e")
            assert app.traces.errors_only and program.status.state is State.STOPPING
            await pilot.press("R")
            assert any("one at a time" in text for text in notification_texts(app))
