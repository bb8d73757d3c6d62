"""`budgetflow run` and `budgetflow report` (registered on the main CLI in budgetflow/cli.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

console = Console()
err = Console(stderr=True)

_PANEL_WHAT = "What to run"
_PANEL_MONEY = "Budget and prices"
_PANEL_SEARCH = "Search per task"
_PANEL_WHERE = "Where it runs"


def run(
    source: Annotated[Optional[str], typer.Argument(
        help="humaneval | gsm8k100 | quixbugs | a JSONL file of code/math tasks | a directory of repo tasks. "
             "Not needed with --resume.", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="local/NAME, vllm/SERVED@URL or a LiteLLM "
                                                 "name.", rich_help_panel=_PANEL_WHAT)] = None,
    budget_usd: Annotated[Optional[float], typer.Option(help="The run's hard cap in USD: never exceeded.",
                                                        rich_help_panel=_PANEL_MONEY)] = None,
    strategy: Annotated[Optional[str], typer.Option(help="code: sample (default) | best-of-n | allocate | graph; "
                                                    "math: majority (default) | beam | mcts | astar; repo: graph.",
                                                    rich_help_panel=_PANEL_WHAT)] = None,
    policy: Annotated[Optional[str], typer.Option(help="equal: each task gets an equal share of what is left "
                                                  "(default); allocate: search.allocate across chunks of code tasks.",
                                                  rich_help_panel=_PANEL_MONEY)] = None,
    concurrency: Annotated[Optional[int], typer.Option("--concurrency", "-j", min=1,
                                                       help="Jobs at once (threads, or Ray workers). (default: 1)",
                                                       rich_help_panel=_PANEL_WHERE)] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", "-n", min=1, help="Only the first N tasks.",
                                                 rich_help_panel=_PANEL_WHAT)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output directory (default: runs/<source>).",
                                                rich_help_panel=_PANEL_WHAT)] = None,
    resume: Annotated[bool, typer.Option(help="Finish the run in --out with its saved settings (run.json).",
                                         rich_help_panel=_PANEL_WHAT)] = False,
    retry_errors: Annotated[bool, typer.Option(help="With --resume: run again the tasks that ended in an error.",
                                               rich_help_panel=_PANEL_WHAT)] = False,
    name: Annotated[Optional[str], typer.Option(help="The run's ledger account (default: the --out folder's name).",
                                                rich_help_panel=_PANEL_MONEY)] = None,
    ledger: Annotated[Optional[str], typer.Option(help="Ledger URL (default: sqlite:///OUT/ledger.db); "
                                                  "postgresql://... for --executor ray.",
                                                  rich_help_panel=_PANEL_MONEY)] = None,
    price_cpu_hour: Annotated[Optional[float], typer.Option(help="USD per CPU-hour of engine time for this model "
                                                            "(local/ models default to $0.10 with a note).",
                                                            rich_help_panel=_PANEL_MONEY)] = None,
    price_gpu_hour: Annotated[Optional[float], typer.Option(help="USD per GPU-hour of engine time.",
                                                            rich_help_panel=_PANEL_MONEY)] = None,
    prices: Annotated[Optional[Path], typer.Option(help="TOML file of price overrides (a models.NAME table per model).",
                                                   rich_help_panel=_PANEL_MONEY)] = None,
    sandbox_cpu_hour: Annotated[Optional[float], typer.Option(
        help="USD per CPU-hour of sandbox runs (visible tests); 0 caps them in CPU-seconds only. (default: 0)",
        rich_help_panel=_PANEL_MONEY)] = None,
    max_samples: Annotated[Optional[int], typer.Option(min=1, help="Samples per task at most. (default: 8)",
                                                       rich_help_panel=_PANEL_SEARCH)] = None,
    max_tokens: Annotated[Optional[int], typer.Option(min=1, help="Tokens per sample at most. (default: 384)",
                                                      rich_help_panel=_PANEL_SEARCH)] = None,
    temperature: Annotated[Optional[float], typer.Option(min=0, help="Sampling temperature. (default: 0.8)",
                                                         rich_help_panel=_PANEL_SEARCH)] = None,
    wave_size: Annotated[Optional[int], typer.Option(min=1, help="Samples per model call. (default: 1)",
                                                     rich_help_panel=_PANEL_SEARCH)] = None,
    chunk: Annotated[Optional[int], typer.Option(min=1, help="allocate policy: tasks per allocation. (default: 8)",
                                                 rich_help_panel=_PANEL_SEARCH)] = None,
    executor: Annotated[Optional[str], typer.Option(help="local (threads) | ray. (default: local)",
                                                    rich_help_panel=_PANEL_WHERE)] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address HOST:PORT (--executor ray).",
                                                   rich_help_panel=_PANEL_WHERE)] = None,
    ray_num_cpus: Annotated[Optional[float], typer.Option(help="CPUs each Ray worker reserves. (default: 1)",
                                                          rich_help_panel=_PANEL_WHERE)] = None,
    sandbox: Annotated[Optional[str], typer.Option(help="process | docker | auto. (default: process)",
                                                   rich_help_panel=_PANEL_WHERE)] = None,
    progress: Annotated[Optional[bool], typer.Option(help="Live progress (default: when on a terminal).",
                                                     rich_help_panel=_PANEL_WHERE)] = None,
    report: Annotated[bool, typer.Option(help="Write OUT/report.html at the end.",
                                         rich_help_panel=_PANEL_WHERE)] = True,
) -> None:
    """Run a batch of tasks under one hard budget, every task on its own ledger account; resumable, auditable.

    Writes OUT/results.jsonl (one line per task, as each finishes), results.csv, ledger.db, candidates/, logs/,
    run.json and report.html.

    Example: budgetflow run humaneval --model local/qwen2.5-coder-1.5b --budget-usd 0.05 --limit 20 --out runs/demo
    """
    from ..budget import UnpricedModel
    from ..llm.models import ModelNotAvailable
    from ..tasks.jsonl import TaskFileError
    from .config import RunConfigError
    from .executor_ray import RayUnavailable
    from .runner import RunStartError, prepare_run, run_batch
    from .solvers import StrategyError
    from .sources import SourceError

    if out is None:
        if resume:
            err.print("[red]error:[/red] --resume needs --out DIR (the run to finish)")
            raise typer.Exit(2)
        out = Path("runs") / (Path(source).stem if source else "run")
    for value, choices, flag in ((policy, ("equal", "allocate"), "--policy"), (executor, ("local", "ray"), "--executor"),
                                 (sandbox, ("process", "docker", "auto"), "--sandbox")):
        if value is not None and value not in choices:
            err.print(f"[red]error:[/red] {flag} must be one of {', '.join(choices)}, not {value!r}")
            raise typer.Exit(2)
    known = (RunConfigError, SourceError, TaskFileError, StrategyError, UnpricedModel, RayUnavailable,
             ModelNotAvailable, FileNotFoundError, RunStartError)
    try:
        config, tasks, notes = prepare_run(
            out=out, resume=resume, source=source, model=model, budget_usd=budget_usd, strategy=strategy,
            policy=policy, concurrency=concurrency, limit=limit, executor=executor, address=address, ledger=ledger,
            name=name, price_cpu_hour=price_cpu_hour, price_gpu_hour=price_gpu_hour,
            prices_file=str(prices) if prices else None, sandbox=sandbox, sandbox_cpu_hour=sandbox_cpu_hour,
            max_samples=max_samples, wave_size=wave_size, max_tokens=max_tokens, temperature=temperature,
            chunk=chunk, ray_num_cpus=ray_num_cpus)
    except known as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    for note in notes:
        err.print(f"[yellow]note:[/yellow] {escape(note)}")
    try:
        summary = run_batch(config, tasks, resume=resume, console=err, progress=progress, retry_errors=retry_errors,
                            report=report, on_note=lambda m: err.print(escape(m)))
    except known as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted[/yellow]: finished tasks are saved; finish the run with "
                  f"budgetflow run --resume --out {escape(config.out)}")
        raise typer.Exit(130)
    finally:
        from ..llm import shutdown

        shutdown()
    solved = f"{summary.solved}/{summary.scored} solved (hidden tests)" if summary.scored else "not scored"
    console.print(
        f"run [bold]{escape(config.name)}[/bold]: {summary.done}/{summary.total} tasks done, {solved}; "
        f"spent [bold]${summary.spent_usd:.6f}[/bold] of ${summary.cap_usd:g}"
        + (f" (+${summary.held_usd:.6f} held)" if summary.held_usd else "")
        + f"; hidden-test scoring (outside the budget) ${summary.scoring_usd:.6f}, "
          f"{summary.scoring_cpu_seconds:.2f} CPU-s; {summary.wall_s:.0f} s")
    if summary.errors:
        console.print(f"[yellow]{summary.errors} task(s) ended in an error[/yellow] (see logs/); rerun them with "
                      f"--resume --retry-errors")
    console.print(f"ledger: {'[green]' if summary.verify_ok else '[red]'}{escape(summary.verify)}"
                  f"{'[/green]' if summary.verify_ok else '[/red]'}")
    if summary.report:
        console.print(f"report: {escape(os.path.relpath(summary.report))}")
    from .report import safe_url

    console.print(f"results: {escape(os.path.relpath(Path(summary.out) / 'results.jsonl'))}; ledger: budgetflow "
                  f"ledger show --db {escape(safe_url(config.ledger))}")
    if not summary.verify_ok or summary.spent_usd > summary.cap_usd + 1e-12:
        raise typer.Exit(1)


def report(
    out: Annotated[Path, typer.Argument(help="A run's output directory.")],
    ledger: Annotated[Optional[str], typer.Option(help="Ledger URL (default: the run's, from run.json).")] = None,
) -> None:
    """Rebuild OUT/report.html from OUT/results.jsonl and the ledger (also for a run that is going or was killed).

    Example: budgetflow report runs/demo
    """
    from .config import RunConfigError
    from .report import build_report

    try:
        path = build_report(out, ledger_url=ledger)
    except RunConfigError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2)
    console.print(f"wrote {escape(str(path))}")
