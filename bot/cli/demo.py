"""``ballast demo``: the closed loop with real Prometheus, Alertmanager and an AI service."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table


def demo(
    scenario: Annotated[
        str,
        typer.Option(
            help="Fault to inject: tool-failure, groundedness, or ladder (the first mitigation "
            "does not help and the ladder moves on)."
        ),
    ] = "tool-failure",
    timeout: Annotated[float, typer.Option(help="Seconds the loop may take.")] = 90.0,
    measure_runs: Annotated[
        int, typer.Option(help="Then time Ballast's share (webhook → OFREP) over N incidents.")
    ] = 0,
    keep: Annotated[
        bool,
        typer.Option(help="Keep the temp dir (logs, data, postmortem) instead of removing it."),
    ] = False,
    stay: Annotated[
        bool,
        typer.Option(
            help="After the loop, keep everything running (the web console too) until Ctrl-C."
        ),
    ] = False,
) -> None:
    """Start Ballast, a simulated AI service, Prometheus and Alertmanager on loopback, break the
    service, and watch the loop close: alert, incident, mitigation, recovery, postmortem.

    Finds Prometheus and Alertmanager on PATH (alertmanager or Debian's
    prometheus-alertmanager) or at BALLAST_DEMO_PROMETHEUS / BALLAST_DEMO_ALERTMANAGER. The
    postmortem draft is copied into the current folder."""
    from bot.demo import SCENARIOS, MissingBinary, Stack, StepResult, run_loop
    from bot.demo.loop import LoopTimeout, format_seconds, keep_postmortem
    from bot.demo.stack import StackError, find_binaries

    console = Console()
    if scenario not in SCENARIOS:
        console.print(f"[red]unknown scenario {scenario!r}[/]; one of {', '.join(SCENARIOS)}")
        raise typer.Exit(2)
    try:
        find_binaries()
    except MissingBinary as err:
        console.print(f"[red]ballast demo needs Prometheus and Alertmanager.[/] {err}")
        raise typer.Exit(1) from None

    chosen = SCENARIOS[scenario]
    workdir = Path(tempfile.mkdtemp(prefix="ballast-demo-"))
    stack = Stack(workdir)
    code = 0
    closed = False  # the loop closed (a Ctrl-C while --stay keeps it running is then no error)
    with Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        tasks: dict[str, TaskID] = {}
        stage: dict[str, TaskID] = {}

        def started(name: str, seconds: float) -> None:
            progress.console.print(f"  [dim]started[/] {name} [dim]({format_seconds(seconds)})[/]")

        def waiting(name: str, title: str) -> None:
            tasks[name] = progress.add_task(f"waiting: {title}", total=1)

        def done(step: StepResult) -> None:
            progress.update(
                tasks[step.name],
                completed=1,
                description=(
                    f"[bold]{step.title}[/] [cyan]+{format_seconds(step.elapsed)}[/] {step.detail}"
                ),
            )
            progress.stop_task(tasks[step.name])

        try:
            stage["start"] = progress.add_task("Starting the stack on loopback", total=1)
            stack.start(on_started=started)
            progress.update(stage["start"], completed=1)
            progress.stop_task(stage["start"])
            progress.console.print(
                f"  Ballast {stack.ballast}  assistant {stack.assistant}  "
                f"Prometheus {stack.prometheus}  Alertmanager {stack.alertmanager}"
            )
            progress.console.print(
                f"  [dim]binaries: {stack.binaries['prometheus']}, "
                f"{stack.binaries['alertmanager']}[/]"
            )
            progress.console.print(
                f"  Web console [bold]{stack.ballast}/ui/[/] (sign in with this demo's "
                f"reader token: {stack.reader_token})"
            )
            progress.console.print(f"[bold red]Injecting fault:[/] POST {chosen.fault}")
            result = run_loop(stack, chosen, timeout=timeout, on_wait=waiting, on_done=done)
            closed = True
            if measure_runs:
                from bot.demo.measure import measure

                task = progress.add_task(
                    f"Timing Ballast's share over {measure_runs} runs", total=1
                )
                began = time.monotonic()
                share = measure(stack.ballast, stack.credentials, measure_runs)
                progress.update(
                    task,
                    completed=1,
                    description=(
                        f"Ballast's share (webhook → OFREP): p50 {share.p50:.1f} ms, "
                        f"p99 {share.p99:.1f} ms over {measure_runs} runs "
                        f"(took {format_seconds(time.monotonic() - began)})"
                    ),
                )
                progress.stop_task(task)
            if stay:
                progress.console.print(
                    f"Still running: the web console is at {stack.ballast}/ui/. "
                    "Ctrl-C stops everything."
                )
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: stopping everything[/]")
            code = 0 if stay and closed else 130
        except (LoopTimeout, StackError) as err:
            console.print(f"[red]the loop did not close:[/] {err}")
            keep, code = True, 1
        finally:
            stack.stop()
    if code:
        if keep:
            console.print(f"logs kept in {workdir}")
        raise typer.Exit(code)
    table = Table(title=f"Closed loop: {chosen.name}", show_header=True)
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for phase, seconds in result.phases().items():
        table.add_row(phase.replace("_", " "), f"{seconds:.1f}")
    console.print(table)
    console.print(f"Runbook matched: [bold]{result.runbook_id}[/]")
    console.print(f"Mitigation applied: [bold]{result.mitigation}[/]")
    for line in result.narration:  # did it work: each verdict and ladder step, in order
        if line.startswith("ladder: "):
            console.print(f"Ladder: {line.removeprefix('ladder: ')}", markup=False)
        else:
            console.print(f"Verified: {line}", markup=False)
    for change in result.changes:
        previous = f"{change['previous']} → " if change.get("previous") else ""
        mark = ", likely cause per the runbook" if change["likely_cause"] else ""
        console.print(
            f"Recent AI change: {change['kind']} {previous}{change['version']} by {change['by']}, "
            f"{change['minutes_before']:g} min before the first alert{mark}",
            markup=False,
        )
    for trace in result.traces:
        # soft_wrap: a long URL stays on one line, so a terminal can still open it
        console.print(
            f"Traces: {trace['title']}: {trace['url'] or trace.get('note')}",
            soft_wrap=True,
            markup=False,
        )
    draft = result.postmortem
    if draft is not None and draft.is_file():
        console.print(f"[dim]{draft.read_text(encoding='utf-8')[:600]}…[/]")
    if keep:
        console.print(f"Postmortem draft: {draft}")
        console.print(f"Stopped everything. Files kept in {workdir}")
        return
    kept = keep_postmortem(draft, Path.cwd())
    shutil.rmtree(workdir, ignore_errors=True)
    if kept is not None:
        console.print(f"Postmortem draft: {kept}")
    else:
        console.print(
            "The postmortem draft was in the demo's temp folder, which is now removed "
            "(the current folder could not take a copy): run with --keep to keep it."
        )
    console.print("Stopped everything.")
