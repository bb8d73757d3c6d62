"""`budgetflow run` (a batch of tasks under one hard budget) and `budgetflow report` (its HTML report).

`run` checks everything it can before it creates the run's directory or ledger: the options (typer callbacks), the
source and settings (`runs.prepare_run`), then the model (`llm.check_model`, `llm.probe_model`). Each refusal is one
line naming the option and what to do, exit code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional, get_args

import typer
from rich.markup import escape

from ._common import Command, err, fail, note, number, one_line, one_of, out, safe_url

if TYPE_CHECKING:
    from pydantic import ValidationError

    from ..runs import RunConfig, RunSummary

_WHAT = "What to run"
_MONEY = "Budget and prices"
_SEARCH = "Search per task"
_WHERE = "Where it runs"
_SELECTIVE = "Selective answering"


def register(root: typer.Typer) -> None:
    root.command("run", cls=_RunCommand)(run)
    root.command("report")(report)


# ---------------------------------------------------------------- what the options accept, read from the code


def strategy_catalog() -> tuple[dict[str, tuple[str, ...]], str]:
    """What --strategy accepts: strategy name → the task kinds it handles, and the one-line summary --help shows
    (each kind's default marked). The one place the CLI looks strategies up: the solver registry, through runs,
    plugins included."""
    from ..runs import known_strategies, solver_help

    return known_strategies(), solver_help()


def _config_choices(field: str) -> list[str]:
    """The values the run's settings accept for `field`, read from RunConfig's schema (empty if not a fixed set)."""
    from ..runs import RunConfig

    return [str(v) for v in get_args(RunConfig.model_fields[field].annotation)]


def _sandbox_choices() -> list[str]:
    from ..sandbox import sandbox_kinds

    return list(sandbox_kinds())


def _check_strategy(value: str | None) -> str | None:
    if value is not None:
        known, summary = strategy_catalog()
        if value not in known:
            raise typer.BadParameter(f"{value!r} is not a known strategy; use one of: {summary}")
    return value


def _load_plugins(specs: list[str] | None) -> list[str] | None:
    """--plugin: import each module or .py file now (eager), so its solvers and backends are known to the checks of
    the other options."""
    from .._registry import load_plugins

    for spec in specs or []:
        try:
            load_plugins(spec)
        except Exception as exc:  # the plugin's own error, whatever it is, said in one line
            raise typer.BadParameter(f"cannot load {spec!r}: {one_line(exc)}") from None
    return specs


_CHOICES = {  # option → the current choices, filled into --help when it is shown
    "strategy": lambda: strategy_catalog()[1] + ".",
    "policy": lambda: "One of: " + ", ".join(_config_choices("policy")) + ".",
    "executor": lambda: "One of: " + ", ".join(_config_choices("executor")) + ".",
    "sandbox": lambda: "One of: " + ", ".join(_sandbox_choices()) + ".",
}


class _RunCommand(Command):
    """`run`, whose --help lists the strategies and backends registered when it is shown (plugins included)."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        for param in self.params:
            lookup = _CHOICES.get(param.name or "")
            if lookup is None or getattr(param, "param_type_name", "") != "option":
                continue
            base = self._base_help.setdefault(param.name or "", param.help or "")
            try:
                param.help = f"{base} {lookup()}"
            except Exception as exc:  # a broken plugin must not hide the rest of the help
                param.help = f"{base} (cannot list the choices: {one_line(exc)})"
        super().format_help(ctx, formatter)

    _base_help: dict[str, str] = {}


# ---------------------------------------------------------------- run


def run(
    source: Annotated[Optional[str], typer.Argument(
        help="humaneval | gsm8k100 | quixbugs | a JSONL file of code/math tasks or of SWE-bench instances | a "
             "directory of repo tasks. Not needed with --resume.", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="local/NAME (budgetflow models list), vllm/SERVED@URL (a vLLM server you run), or a "
        "LiteLLM name such as openai/gpt-4o-mini (its API key in the environment).", rich_help_panel=_WHAT,
        show_default=False)] = None,
    budget_usd: Annotated[Optional[float], typer.Option(
        help="The run's hard cap in USD, more than 0: never exceeded.", rich_help_panel=_MONEY, show_default=False,
        callback=number(above=0, hint=", e.g. --budget-usd 0.05"))] = None,
    strategy: Annotated[Optional[str], typer.Option(
        help="How each task is attempted, by task kind:", rich_help_panel=_WHAT, show_default=False,
        callback=_check_strategy)] = None,
    plugin: Annotated[Optional[list[str]], typer.Option(
        help="A module or .py file that registers more strategies or sandbox backends (repeatable); also "
             "$BUDGETFLOW_PLUGINS.", rich_help_panel=_WHAT, show_default=False, is_eager=True,
        callback=_load_plugins)] = None,
    policy: Annotated[Optional[str], typer.Option(
        help="How the budget is split: equal gives each task an equal share of what is left (default); allocate "
             "spends by sampling waves across chunks of code tasks.", rich_help_panel=_MONEY, show_default=False,
        callback=one_of(lambda: _config_choices("policy"), "policy"))] = None,
    concurrency: Annotated[Optional[int], typer.Option(
        "--concurrency", "-j", help="Jobs at once (threads, or Ray workers), at least 1. (default: for a local "
        "engine, enough to keep it batched, sized from its measured speed; else 1)",
        rich_help_panel=_WHERE, show_default=False, callback=number(at_least=1))] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", "-n", help="Only the first N tasks (at least 1).", rich_help_panel=_WHAT, show_default=False,
        callback=number(at_least=1))] = None,
    out_dir: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="Output directory (default: runs/<source>).", rich_help_panel=_WHAT,
        show_default=False)] = None,
    resume: Annotated[bool, typer.Option(
        help="Finish the run in --out with its saved settings (run.json).", rich_help_panel=_WHAT)] = False,
    retry_errors: Annotated[bool, typer.Option(
        help="With --resume: run again the tasks that ended in an error.", rich_help_panel=_WHAT)] = False,
    name: Annotated[Optional[str], typer.Option(
        help="The run's ledger account (default: the --out folder's name).", rich_help_panel=_MONEY,
        show_default=False)] = None,
    ledger: Annotated[Optional[str], typer.Option(
        help="Ledger URL (default: sqlite:///OUT/ledger.db); postgresql://... for --executor ray.",
        rich_help_panel=_MONEY, show_default=False)] = None,
    price_cpu_hour: Annotated[Optional[float], typer.Option(
        help="USD per CPU-hour of engine time for this model, more than 0 (local/ models default to $0.10, said).",
        rich_help_panel=_MONEY, show_default=False, callback=number(above=0, hint=", e.g. --price-cpu-hour 0.1"))
    ] = None,
    price_gpu_hour: Annotated[Optional[float], typer.Option(
        help="USD per GPU-hour of engine time, more than 0.", rich_help_panel=_MONEY, show_default=False,
        callback=number(above=0, hint=", e.g. --price-gpu-hour 2"))] = None,
    prices: Annotated[Optional[Path], typer.Option(
        help="TOML file of price overrides (a \\[models.\"NAME\"] table per model).", rich_help_panel=_MONEY,
        show_default=False)] = None,
    sandbox_cpu_hour: Annotated[Optional[float], typer.Option(
        help="USD per CPU-hour of sandbox runs (visible tests); 0 caps them in CPU-seconds only. (default: 0)",
        rich_help_panel=_MONEY, show_default=False, callback=number(at_least=0))] = None,
    max_samples: Annotated[Optional[int], typer.Option(
        help="Samples per task at most, at least 1. (default: 8)", rich_help_panel=_SEARCH, show_default=False,
        callback=number(at_least=1))] = None,
    max_tokens: Annotated[Optional[int], typer.Option(
        help="Tokens per sample at most, at least 1. (default: 384)", rich_help_panel=_SEARCH, show_default=False,
        callback=number(at_least=1))] = None,
    temperature: Annotated[Optional[float], typer.Option(
        help="Sampling temperature, 0 or more. (default: 0.8)", rich_help_panel=_SEARCH, show_default=False,
        callback=number(at_least=0))] = None,
    wave_size: Annotated[Optional[int], typer.Option(
        help="Samples per model call, at least 1. (default: 1)", rich_help_panel=_SEARCH, show_default=False,
        callback=number(at_least=1))] = None,
    chunk: Annotated[Optional[int], typer.Option(
        help="allocate policy: tasks per allocation, at least 1. (default: 8)", rich_help_panel=_SEARCH,
        show_default=False, callback=number(at_least=1))] = None,
    settings: Annotated[Optional[list[str]], typer.Option(
        "--set", help="A setting of the strategy beyond the flags above, KEY=VALUE (repeatable; VALUE read as JSON "
        "where it parses), e.g. --set width=4.", rich_help_panel=_SEARCH, show_default=False)] = None,
    abstain_below: Annotated[Optional[float], typer.Option(
        help="Withhold an answer whose confidence (vote share, test evidence, ...) is below T, between 0 and 1; "
             "the answer stays in the record, marked abstained. (default: answer all)", metavar="T",
        rich_help_panel=_SELECTIVE, show_default=False,
        callback=number(at_least=0, at_most=1, hint=", e.g. --abstain-below 0.5"))] = None,
    abstain_unknown: Annotated[Optional[bool], typer.Option(
        "--abstain-unknown/--answer-unknown", help="With --abstain-below: withhold answers whose solver gives no "
        "confidence too. (default: answer them)", rich_help_panel=_SELECTIVE, show_default=False)] = None,
    wrong_penalty: Annotated[Optional[float], typer.Option(
        help="Utility of a wrong answer is -P (a right one +1, an abstention 0), 0 or more. (default: 1)",
        metavar="P", rich_help_panel=_SELECTIVE, show_default=False, callback=number(at_least=0))] = None,
    executor: Annotated[Optional[str], typer.Option(
        help="local (threads, default) or ray (a Ray cluster; needs --address and a PostgreSQL --ledger).",
        rich_help_panel=_WHERE, show_default=False, callback=one_of(lambda: _config_choices("executor"), "executor"))
    ] = None,
    address: Annotated[Optional[str], typer.Option(
        help="Ray cluster address HOST:PORT (--executor ray).", rich_help_panel=_WHERE, show_default=False)] = None,
    ray_num_cpus: Annotated[Optional[float], typer.Option(
        help="CPUs each Ray worker reserves, 0 or more. (default: 1)", rich_help_panel=_WHERE, show_default=False,
        callback=number(at_least=0))] = None,
    sandbox: Annotated[Optional[str], typer.Option(
        help="Where candidate programs run (default: process); auto picks the best that works here.",
        rich_help_panel=_WHERE, show_default=False, callback=one_of(_sandbox_choices, "sandbox backend"))] = None,
    progress: Annotated[Optional[bool], typer.Option(
        help="Live progress (default: when on a terminal).", rich_help_panel=_WHERE, show_default=False)] = None,
    report: Annotated[bool, typer.Option(
        help="Write OUT/report.html at the end.", rich_help_panel=_WHERE)] = True,
) -> None:
    """Run a batch of tasks under one hard budget, every task on its own ledger account; resumable, auditable.

    Checks the options, the source and the model first (API key, server reachable, price) and refuses bad input in
    one line before anything is created or spent. Then writes OUT/results.jsonl (one line per task, as each
    finishes), results.csv, ledger.db, candidates/, logs/, run.json and report.html.

    Example: budgetflow run humaneval --model local/qwen2.5-coder-1.5b --budget-usd 0.05 --limit 20 --out runs/demo

    Example: budgetflow run tasks.jsonl --model openai/gpt-4o-mini --budget-usd 2 --strategy best-of-n -j 8

    Example: budgetflow run gsm8k100 --model local/qwen2.5-coder-1.5b --budget-usd 0.1 --strategy beam --set width=4

    Example: budgetflow run --resume --out runs/demo
    """
    if out_dir is None:
        if resume:
            fail("--resume needs --out DIR: the directory of the run to finish")
        out_dir = Path("runs") / (Path(source).stem if source else "run")
    config, tasks, notes = _prepare(dict(
        out=out_dir, resume=resume, source=source, model=model, budget_usd=budget_usd, strategy=strategy,
        policy=policy, concurrency=concurrency, limit=limit, executor=executor, address=address, ledger=ledger,
        name=name, price_cpu_hour=price_cpu_hour, price_gpu_hour=price_gpu_hour,
        prices_file=str(prices) if prices else None, sandbox=sandbox, sandbox_cpu_hour=sandbox_cpu_hour,
        max_samples=max_samples, wave_size=wave_size, max_tokens=max_tokens, temperature=temperature, chunk=chunk,
        ray_num_cpus=ray_num_cpus, solver_options=settings or None, plugins=plugin or None,
        abstain_below=abstain_below, abstain_unknown=abstain_unknown, wrong_penalty=wrong_penalty))
    notes += _check_model(config, resume=resume)
    for text in notes:
        note(text)
    summary = _execute(config, tasks, resume=resume, progress=progress, retry_errors=retry_errors, report=report)
    _print_summary(config, summary)
    if not summary.verify_ok or summary.spent_usd > summary.cap_usd + 1e-12:
        raise typer.Exit(1)


def _prepare(args: dict[str, Any]) -> tuple[RunConfig, list, list[str]]:
    """The run's settings and tasks, validated; nothing is written yet. Bad input: one line, exit 2."""
    from pydantic import ValidationError

    from ..budget import BudgetError
    from ..llm import ModelNotAvailable
    from ..runs import prepare_run
    from ..tasks import DatasetMissing, RepoTaskError

    if args["prices_file"] is not None and not Path(args["prices_file"]).is_file():
        fail(f"--prices {args['prices_file']}: no such file; give a TOML file of price overrides")
    try:
        return prepare_run(**args)
    except ValidationError as exc:
        fail(_field_errors(exc))
    # ValueError: every settings/source error of runs and tasks (RunConfigError, SourceError, TaskFileError,
    # StrategyError, a bad prices file); BudgetError: UnpricedModel
    except (ValueError, BudgetError, ModelNotAvailable, DatasetMissing, RepoTaskError, OSError) as exc:
        fail(one_line(exc))


def _field_errors(exc: ValidationError) -> str:
    """A settings model's validation errors as one line, each named by the option that sets the field."""
    parts = []
    for e in exc.errors():
        field = str(e["loc"][-1]) if e["loc"] else "?"
        option = "SOURCE" if field == "source" else "--" + field.replace("_", "-")
        got = f" (got {e['input']!r})" if "input" in e and not isinstance(e["input"], dict) else ""
        parts.append(f"{option}: {e['msg'].rstrip('.')}{got}")
    return "; ".join(parts)


def _check_model(config: RunConfig, *, resume: bool) -> list[str]:
    """The model, before anything is created: known, installed, priced, credentials present (sends nothing), then
    its endpoint answers (no billable request). Returns notes."""
    from ..budget import ModelPrice, PriceBook
    from ..llm import ModelCheckError, check_model, probe_model

    book = PriceBook({n: ModelPrice(**fields) for n, fields in config.prices.items()})  # the run's own prices
    try:
        notes = check_model(config.model, prices=book)
        probe_model(config.model)
    except ModelCheckError as exc:
        after = f"; the run in {config.out} is unchanged: finish it with budgetflow run --resume --out " \
                f"{config.out} once fixed" if resume else ""
        fail(f"--model {config.model}: {one_line(exc)}{after}")
    return notes


def _execute(config: RunConfig, tasks: list, *, resume: bool, progress: bool | None, retry_errors: bool,
             report: bool) -> RunSummary:
    from ..budget import UnpricedModel
    from ..llm import ModelNotAvailable, shutdown
    from ..runs import RayUnavailable, RunConfigError, RunStartError, run_batch

    try:
        return run_batch(config, tasks, resume=resume, console=err, progress=progress, retry_errors=retry_errors,
                         report=report, on_note=lambda m: err.print(escape(m), soft_wrap=True))
    except (RunConfigError, UnpricedModel, RayUnavailable, RunStartError, ModelNotAvailable) as exc:
        fail(one_line(exc))
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted[/yellow]: finished tasks are saved; finish the run with "
                  f"budgetflow run --resume --out {escape(config.out)}", soft_wrap=True)
        raise typer.Exit(130) from None
    finally:
        shutdown()


def _print_summary(config: RunConfig, summary: RunSummary) -> None:
    from ..budget import format_usd

    solved = f"{summary.solved}/{summary.scored} solved (hidden tests)" if summary.scored else "not scored"
    out.print(
        f"run [bold]{escape(config.name)}[/bold]: {summary.done}/{summary.total} tasks done, {solved}; "
        f"spent [bold]{format_usd(summary.spent_usd)}[/bold] of {format_usd(summary.cap_usd)}"
        + (f" (+{format_usd(summary.held_usd)} held)" if summary.held_usd else "")
        + f"; hidden-test scoring (outside the budget) {format_usd(summary.scoring_usd)}, "
          f"{summary.scoring_cpu_seconds:.2f} CPU-s; {summary.wall_s:.0f} s", soft_wrap=True)
    if summary.errors:
        first = _first_error(config)
        out.print(f"[yellow]{summary.errors} task(s) ended in an error[/yellow]"
                  + (f", e.g. {escape(first)}" if first else "")
                  + f" (see logs/); once fixed, run them again with: budgetflow run --resume --retry-errors --out "
                    f"{escape(config.out)}", soft_wrap=True)
    _print_selective(summary)
    colour = "green" if summary.verify_ok else "red"
    out.print(f"ledger: [{colour}]{escape(summary.verify)}[/{colour}]", soft_wrap=True)
    if summary.report:
        out.print(f"report: {escape(os.path.relpath(summary.report))}", soft_wrap=True)
    out.print(f"results: {escape(os.path.relpath(Path(summary.out) / 'results.jsonl'))}; ledger: budgetflow "
              f"ledger show --db {escape(safe_url(config.ledger))}", soft_wrap=True)


def _print_selective(summary: RunSummary) -> None:
    """The run's risk-coverage table (when some solver gave a confidence) and what abstaining bought."""
    from rich.table import Table

    sel = summary.selective
    if sel is None or sel.unknown == sel.scored:
        return
    table = Table(title=f"selective answering (utility: +1 right, -{sel.penalty:g} wrong, 0 abstained)",
                  title_justify="left")
    for col in ("answer when confidence", "answered", "coverage", "risk", "utility"):
        table.add_column(col, justify="left" if col.startswith("answer ") else "right")
    step = max(1, len(sel.curve) // 20)  # a long curve: every step-th threshold, the best and the last
    shown = [o for i, o in enumerate(sel.curve) if i % step == 0 or o == sel.best or i == len(sel.curve) - 1]
    for o in shown:
        label = "above all" if o.threshold is None else f">= {o.threshold:.3f}"
        table.add_row(label + (" (best)" if o == sel.best else ""), str(o.answered), f"{o.coverage:.2f}",
                      "-" if o.risk is None else f"{o.risk:.2f}", f"{o.utility:+.2f}")
    out.print(table)
    line = f"always answering: utility {sel.always.utility:+.2f}; best threshold: utility {sel.best.utility:+.2f}"
    if sel.as_run is not None and sel.run_threshold is not None:
        ran = sel.as_run
        line += (f"; this run (--abstain-below {sel.run_threshold:g}): answered {ran.answered}, abstained "
                 f"{ran.abstained}, utility {ran.utility:+.2f}")
    out.print(f"{line} ({escape(os.path.relpath(Path(summary.out) / 'selective.json'))})", soft_wrap=True)


def _first_error(config: RunConfig) -> str | None:
    """The first task error of the run, to say in the summary what went wrong (e.g. the provider is unreachable)."""
    from ..runs import RunDir

    for record in RunDir(config.out).done().values():
        if record.error:
            return record.error
    return None


# ---------------------------------------------------------------- report


def report(
    run_dir: Annotated[Path, typer.Argument(help="A run's output directory (its --out).", show_default=False)],
    ledger: Annotated[Optional[str], typer.Option(help="Ledger URL (default: the run's, from run.json).",
                                                  show_default=False)] = None,
) -> None:
    """Rebuild OUT/report.html from OUT/results.jsonl and the ledger (also for a run that is going or was killed).

    Example: budgetflow report runs/demo
    """
    from ..runs import RunConfigError, RunDir, build_report

    if not run_dir.is_dir():
        fail(f"{run_dir}: no such directory; give the --out directory of a budgetflow run, e.g. budgetflow report "
             f"runs/demo")
    if not RunDir(run_dir).has_run():
        fail(f"{run_dir} holds no run (no run.json); give the --out directory of a budgetflow run, e.g. budgetflow "
             f"report runs/demo")
    try:
        path = build_report(run_dir, ledger_url=ledger)
    except RunConfigError as exc:
        fail(one_line(exc))
    out.print(f"wrote {escape(str(path))}", soft_wrap=True)
