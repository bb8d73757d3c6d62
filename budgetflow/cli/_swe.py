"""`budgetflow swe make-task | fixtures`: make SWE-style repository tasks."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ._common import Typer, err, fail, number, one_line, out, show

app = Typer(
    help=(
        "SWE-style tasks: a repository, an issue, and the tests that must go from failing to passing.\n\n"
        "Tasks are directories: task.json (the RepoTask), repo/ (a git repository at the buggy state) and "
        "solution.patch (a reference fix, for scoring only). Run them with budgetflow run DIR, or load them with "
        "budgetflow.tasks.load_repo_tasks.\n\n"
        "Example: budgetflow swe make-task sdists/inflection-0.5.1.tar.gz --out tasks --count 3"
    ),
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="swe")


@app.command("make-task")
def make_task(
    source: Annotated[Path, typer.Argument(
        help="A project's source distribution (NAME-VERSION.tar.gz, e.g. from `pip download --no-deps "
             "--no-binary :all: inflection==0.5.1`) or an unpacked project directory, test suite included.",
        show_default=False)],
    dest: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the task directories into.",
                                       show_default=False)],
    count: Annotated[int, typer.Option("--count", "-n", help="How many tasks to make (at least 1).",
                                       callback=number(at_least=1))] = 3,
    seed: Annotated[int, typer.Option(help="Orders the candidate mutations: another seed, other bugs.")] = 0,
    test_cmd: Annotated[Optional[str], typer.Option(
        "--test-cmd", help="The command that runs the suite, run at the project root in the sandbox (default: "
                           "python3 -m pytest -q -p no:cacheprovider). Must be pytest: outcomes are read per test.",
        show_default=False)] = None,
    max_tries: Annotated[Optional[int], typer.Option(
        "--max-tries", help="Mutants to run at most (default 8 x count + 8); each costs one suite run.",
        callback=number(at_least=1), show_default=False)] = None,
    max_failing: Annotated[int, typer.Option(
        "--max-failing", help="Keep a mutant only if at most this many tests catch it.",
        callback=number(at_least=1))] = 5,
    timeout: Annotated[float, typer.Option(
        "--test-timeout", help="Seconds one test may run (pytest-timeout); mutants that hang are dropped.",
        callback=number(at_least=0.1))] = 5.0,
    project: Annotated[Optional[str], typer.Option(help="Project name for the task ids (default: from PKG-INFO).",
                                                   show_default=False)] = None,
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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..sandbox import SandboxUnavailable
    from ..swe import ARCHIVES, MakeTaskError, make_tasks

    command = None
    if test_cmd is not None:
        command = shlex.split(test_cmd)
        if not command:
            fail("--test-cmd is empty; give the command that runs the suite, e.g. --test-cmd 'python3 -m pytest -q'")
    if not source.exists():
        fail(f"{source} does not exist: give an sdist (.tar.gz) or a project directory")
    if not source.is_dir() and not source.name.endswith(ARCHIVES):
        fail(f"{source} is not a source distribution: expected NAME-VERSION.tar.gz (from `pip download --no-deps "
             "--no-binary :all: NAME==VERSION`) or a project directory")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("kept {task.fields[kept]}"), TimeElapsedColumn(), console=err,
                      transient=False) as bar:
            job = bar.add_task("starting", total=None, kept=0)

            def report(stage: str, done: int, total: int, kept: int) -> None:
                bar.update(job, description=escape(stage[-60:]), completed=done, total=total, kept=kept)

            result = make_tasks(source, dest, count=count, seed=seed, test_command=command, max_tries=max_tries,
                                max_failing=max_failing, per_test_timeout_s=timeout, project=project,
                                progress=report)
    except (MakeTaskError, SandboxUnavailable) as exc:
        fail(one_line(exc), code=1)
    table = Table(title=f"{len(result.tasks)} task(s) from {escape(result.project)} in {escape(str(dest))} "
                        f"({len(result.attempts)} mutants tried, {result.seconds:.0f} s)")
    for col in ("task", "fail_to_pass", "pass_to_pass", "issue"):
        table.add_column(col, overflow="fold")
    for t in result.tasks:
        table.add_row(t.instance_id, str(len(t.fail_to_pass)), str(len(t.pass_to_pass)),
                      escape(t.issue.splitlines()[0][:80]))
    show(table)
    if len(result.tasks) < count:
        err.print(f"[yellow]only {len(result.tasks)} of {count} tasks found[/yellow] "
                  f"(rejected: {', '.join(f'{v} {k}' for k, v in result.rejected().items())}); "
                  "try --max-tries or another --seed", soft_wrap=True)


@app.command("fixtures")
def fixtures(
    root: Annotated[Optional[Path], typer.Option(help="Where to put the made tasks (default: <cache>/swe-tasks-<format>).",
                                                 show_default=False)] = None,
    quixbugs: Annotated[bool, typer.Option(help="Also build the QuixBugs tasks (<cache>/quixbugs).")] = True,
) -> None:
    """Build the ready-made repository tasks once (reused afterwards): QuixBugs from the pyimprove wheel, and tasks
    injected into the pinned projects' sdists (downloaded into <cache>/sdists). <cache> is $BUDGETFLOW_CACHE or
    ~/.cache/budgetflow.

    Example: budgetflow swe fixtures --no-quixbugs
    """
    from ..swe import SWE_PROJECTS, MakeTaskError, ensure_swe_fixtures, load_quixbugs, quixbugs_report
    from ..tasks import DatasetMissing, RepoTaskError

    def say(stage: str, done: int, total: int, kept: int) -> None:
        err.print(f"  {escape(stage)} ({done}/{total}, kept {kept})", highlight=False)

    try:
        if quixbugs:
            qb = load_quixbugs(progress=lambda done, total, name: None)
            dropped = quixbugs_report().get("dropped", {})
            out.print(f"QuixBugs: {len(qb)} tasks" + (f" ({len(dropped)} programs dropped)" if dropped else ""))
        tasks = ensure_swe_fixtures(root, progress=say)
    except (MakeTaskError, RepoTaskError, DatasetMissing) as exc:
        fail(one_line(exc), code=1)
    out.print(f"made tasks: {len(tasks)} from {len(SWE_PROJECTS)} projects ("
              + ", ".join(f"{n}=={v}" for n, v, _, _ in SWE_PROJECTS) + ")")
