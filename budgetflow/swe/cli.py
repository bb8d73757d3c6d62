"""`budgetflow swe ...`: make SWE-style repository tasks."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help=(
        "SWE-style tasks: a repository, an issue, and the tests that must go from failing to passing.\n\n"
        "Tasks are directories: task.json (the RepoTask), repo/ (a git repository at the buggy state) and "
        "solution.patch (a reference fix, for scoring only). Load them with budgetflow.tasks.repo.load_repo_task."
    ),
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True)


@app.command("make-task")
def make_task(
    source: Annotated[Path, typer.Argument(
        help="A project's source distribution (NAME-VERSION.tar.gz, e.g. from `pip download --no-deps "
             "--no-binary :all: inflection==0.5.1`) or an unpacked project directory, test suite included.",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the task directories into.",
                                      show_default=False)],
    count: Annotated[int, typer.Option("--count", "-n", min=1, help="How many tasks to make.")] = 3,
    seed: Annotated[int, typer.Option(help="Orders the candidate mutations: another seed, other bugs.")] = 0,
    test_cmd: Annotated[str | None, typer.Option(
        "--test-cmd", help="The command that runs the suite, run at the project root in the sandbox (default: "
                           "python3 -m pytest -q -p no:cacheprovider). Must be pytest: outcomes are read per test.")
    ] = None,
    max_tries: Annotated[int | None, typer.Option(
        "--max-tries", min=1, help="Mutants to run at most (default 8 x count + 8); each costs one suite run.")] = None,
    max_failing: Annotated[int, typer.Option(
        "--max-failing", min=1, help="Keep a mutant only if at most this many tests catch it.")] = 5,
    timeout: Annotated[float, typer.Option(
        "--test-timeout", min=0.1, help="Seconds one test may run (pytest-timeout); mutants that hang are dropped.")
    ] = 5.0,
    project: Annotated[str | None, typer.Option(help="Project name for the task ids (default: from PKG-INFO).")
                       ] = None,
) -> None:
    """Make tasks by injecting one small bug into a real project and keeping it when the project's tests catch it.

    How: the suite runs once on the original source in the sandbox; then candidate mutations (a flipped
    comparison, an off-by-one constant, and/or swapped, a negated condition, + and - swapped, another variable
    returned) are applied one at a time, changing only the mutated tokens. A mutant becomes a task when 1 to
    --max-failing tests that passed on the original now fail (fail_to_pass; the other passing tests are
    pass_to_pass). The issue text is written from the failing tests' output only.

    Example:

        pip download --no-deps --no-binary :all: inflection==0.5.1 -d sdists

        budgetflow swe make-task sdists/inflection-0.5.1.tar.gz --out tasks --count 3
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ..sandbox import SandboxUnavailable
    from .make_task import ARCHIVES, MakeTaskError, make_tasks

    command = None
    if test_cmd is not None:
        command = shlex.split(test_cmd)
        if not command:
            err.print("[red]error:[/red] --test-cmd is empty")
            raise typer.Exit(2)
    if not source.exists():
        err.print(f"[red]error:[/red] {escape(str(source))} does not exist: give an sdist (.tar.gz) or a project "
                  "directory")
        raise typer.Exit(2)
    if not source.is_dir() and not source.name.endswith(ARCHIVES):
        err.print(f"[red]error:[/red] {escape(str(source))} is not a source distribution: expected NAME-VERSION.tar.gz"
                  " (from `pip download --no-deps --no-binary :all: NAME==VERSION`) or a project directory")
        raise typer.Exit(2)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("kept {task.fields[kept]}"), TimeElapsedColumn(), console=err,
                      transient=False) as bar:
            job = bar.add_task("starting", total=None, kept=0)

            def report(stage: str, done: int, total: int, kept: int) -> None:
                bar.update(job, description=escape(stage[-60:]), completed=done, total=total, kept=kept)

            result = make_tasks(source, out, count=count, seed=seed, test_command=command, max_tries=max_tries,
                                max_failing=max_failing, per_test_timeout_s=timeout, project=project,
                                progress=report)
    except (MakeTaskError, SandboxUnavailable) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1)
    table = Table(title=f"{len(result.tasks)} task(s) from {result.project} in {out} "
                        f"({len(result.attempts)} mutants tried, {result.seconds:.0f} s)")
    for col in ("task", "fail_to_pass", "pass_to_pass", "issue"):
        table.add_column(col)
    for t in result.tasks:
        table.add_row(t.instance_id, str(len(t.fail_to_pass)), str(len(t.pass_to_pass)),
                      escape(t.issue.splitlines()[0][:80]))
    console.print(table)
    if len(result.tasks) < count:
        err.print(f"[yellow]only {len(result.tasks)} of {count} tasks found[/yellow] "
                  f"(rejected: {', '.join(f'{v} {k}' for k, v in result.rejected().items())}); "
                  "try --max-tries or another --seed")


@app.command("fixtures")
def fixtures(
    root: Annotated[Path | None, typer.Option(help="Where to put the made tasks (default: <cache>/swe-tasks).")] = None,
    quixbugs: Annotated[bool, typer.Option(help="Also build the QuixBugs tasks (<cache>/quixbugs).")] = True,
) -> None:
    """Build the ready-made repository tasks once (reused afterwards): QuixBugs from the pyimprove wheel, and tasks
    injected into the pinned projects' sdists (downloaded into <cache>/sdists). <cache> is $BUDGETFLOW_CACHE or
    ~/.cache/budgetflow."""
    from ..tasks.loaders import DatasetMissing
    from ..tasks.repo import RepoTaskError, load_quixbugs, quixbugs_report
    from .make_task import SWE_PROJECTS, MakeTaskError, ensure_swe_fixtures

    def say(stage: str, done: int, total: int, kept: int) -> None:
        err.print(f"  {escape(stage)} ({done}/{total}, kept {kept})", highlight=False)

    try:
        if quixbugs:
            qb = load_quixbugs(progress=lambda done, total, name: None)
            dropped = quixbugs_report().get("dropped", {})
            console.print(f"QuixBugs: {len(qb)} tasks" + (f" ({len(dropped)} programs dropped)" if dropped else ""))
        tasks = ensure_swe_fixtures(root, progress=say)
    except (MakeTaskError, RepoTaskError, DatasetMissing) as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(1)
    console.print(f"made tasks: {len(tasks)} from {len(SWE_PROJECTS)} projects ("
                  + ", ".join(f"{n}=={v}" for n, v, _, _ in SWE_PROJECTS) + ")")
