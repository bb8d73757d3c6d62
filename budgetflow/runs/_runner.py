"""The driver of a batch run: validate everything before spending, open the run's accounts, hand jobs to an executor,
record each task the moment it finishes, and finish with the CSV and the report.

    config, tasks = prepare_run(source="humaneval", model="local/qwen2.5-coder-1.5b", budget_usd=0.05, limit=20,
                                out="runs/demo")
    summary = run_batch(config, tasks)

A killed run is finished by `prepare_run(out=..., resume=True)` + `run_batch(..., resume=True)`: tasks with a result
line are skipped, a task that was in flight is redone on its reopened account (the ledger charged its dead
reservations when it was reopened), and the run's cap covers both attempts.
"""

from __future__ import annotations

import re
import time
from collections import deque
from pathlib import Path

from pydantic import BaseModel
from rich.console import Console

from ..budget import AccountMismatch, Budget, Ledger, LedgerMissing, UnpricedModel, format_usd, resolve_url
from ._config import RunConfig, RunConfigError, SearchSettings, load_config, merge_for_resume, save_config
from ._executor_ray import RayUnavailable
from ._policy import Job, Planner
from ._pricing import resolve_prices
from ._progress import RunProgress
from ._records import JobResult, TaskArtifacts, TaskRecord
from ._selective import Selective, run_selective
from .._registry import load_plugins
from ..tasks import Task, kind_of
from ._cascade_batch import CascadeCalibration, price_stage_models
from ._solving import check_strategy, options_from, strategy_for
from ._sources import load_source, resolve_source
from ._store import RunDir


class RunStartError(RuntimeError):
    """The model engine, the sandbox or the cluster could not be started or reached (nothing was spent)."""


class RunSummary(BaseModel):
    out: str
    total: int
    done: int
    solved: int
    scored: int  # tasks with a scoring verdict
    errors: int
    spent_usd: float
    cap_usd: float
    held_usd: float
    scoring_usd: float
    scoring_cpu_seconds: float = 0.0
    wall_s: float
    executor: str
    recovered: int  # reservations of a killed earlier attempt that the ledger settled on opening
    verify_ok: bool
    verify: str
    report: str | None = None
    notes: list[str] = []
    selective: Selective | None = None  # the risk-coverage curve (also DIR/selective.json)


def default_name(out: str | Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(out).resolve().name).strip("-.") or "run"
    return name[:60]


def prepare_run(*, out: str | Path, resume: bool = False, source: str | None = None, model: str | None = None,
                budget_usd: float | None = None, strategy: str | None = None, policy: str | None = None,
                concurrency: int | None = None, limit: int | None = None, executor: str | None = None,
                address: str | None = None, ledger: str | None = None, name: str | None = None,
                price_cpu_hour: float | None = None, price_gpu_hour: float | None = None,
                prices_file: str | None = None, sandbox: str | None = None, sandbox_cpu_hour: float | None = None,
                max_samples: int | None = None, wave_size: int | None = None, max_tokens: int | None = None,
                temperature: float | None = None, chunk: int | None = None, ray_num_cpus: float | None = None,
                engine_options: dict | None = None, solver_options: list[str] | dict | None = None,
                plugins: list[str] | None = None, abstain_below: float | None = None,
                abstain_unknown: bool | None = None, wrong_penalty: float | None = None
                ) -> tuple[RunConfig, list[Task], list[str]]:
    """Build (or, with resume, reload) the run's settings and load and validate its tasks. Nothing is written and
    nothing is spent here: a bad source or setting fails before the run touches its directory or ledger."""
    out = Path(out).expanduser().resolve()
    notes: list[str] = []
    plugins = [_plugin_spec(p) for p in plugins or []]
    for spec in plugins:
        load_plugins(spec)  # its solvers, verifiers and backends are known to every check below
    search_asked = dict(max_samples=max_samples, wave_size=wave_size, max_tokens=max_tokens,
                        temperature=temperature, chunk=chunk)
    if resume:
        saved = load_config(out)
        asked = dict(source=resolve_source(source) if source else None, model=model, budget_usd=budget_usd,
                     strategy=strategy, policy=policy, concurrency=concurrency, limit=limit, executor=executor,
                     address=address, ledger=resolve_url(ledger) if ledger else None, name=name,
                     sandbox=sandbox, ray_num_cpus=ray_num_cpus, abstain_below=abstain_below,
                     abstain_unknown=abstain_unknown, wrong_penalty=wrong_penalty, **search_asked)
        if solver_options:
            raise RunConfigError("--resume keeps the run's saved solver settings (run.json); drop --set")
        if any(v is not None for v in (price_cpu_hour, price_gpu_hour, prices_file, sandbox_cpu_hour)):
            raise RunConfigError("--resume keeps the run's saved prices (run.json); drop the price flags")
        config = merge_for_resume(saved, asked)
    else:
        if RunDir(out).has_run():
            raise RunConfigError(f"{out} already holds a run: pass --resume to finish it, or choose another --out")
        if source is None or model is None or budget_usd is None:
            raise RunConfigError("a new run needs SOURCE, --model and --budget-usd")
        if strategy == "allocate":
            policy = policy or "allocate"
        overrides, note = resolve_prices(model, cpu_hour=price_cpu_hour, gpu_hour=price_gpu_hour,
                                         prices_file=prices_file, sandbox_cpu_hour=sandbox_cpu_hour)
        if note:
            notes.append(note)
        from .. import __version__

        options = dict(engine_options or {})
        if model.startswith("local/"):
            from ..llm import LOCAL_MODELS, serving_context  # the model's own context, as the KV cache holds it

            # an unknown name is left to the model check, whose refusal names the known ones
            if "max_model_len" not in options and model.removeprefix("local/") in LOCAL_MODELS:
                options["max_model_len"], why = serving_context(model)
                notes.append(f"{model}: served with a context of {why}; longer prompts are shrunk or refused")
        search = SearchSettings(**{k: v for k, v in search_asked.items() if v is not None})
        config = RunConfig(
            source=resolve_source(source), limit=limit, model=model, budget_usd=budget_usd, strategy=strategy,
            policy=policy or "equal", search=search, name=name or default_name(out), out=str(out),
            ledger=resolve_url(ledger or out / "ledger.db"), prices=overrides, price_note=note,
            engine_options=options, sandbox=sandbox or "process",
            solver_options=dict(options_from(solver_options) if isinstance(solver_options, list)
                                else solver_options or {}), plugins=plugins,
            concurrency=concurrency, executor=executor or "local", address=address, abstain_below=abstain_below,
            abstain_unknown=bool(abstain_unknown), wrong_penalty=1.0 if wrong_penalty is None else wrong_penalty,
            ray_num_cpus=1.0 if ray_num_cpus is None else ray_num_cpus, version=__version__)
    if config.executor == "ray":
        if not config.address:
            raise RunConfigError("--executor ray needs --address HOST:PORT of the Ray cluster (ray start --head ...)")
        if not config.ledger.startswith(("postgresql", "postgres")):
            raise RunConfigError("--executor ray needs a shared ledger every node can reach: --ledger "
                                 "postgresql://USER@HOST/DB (a SQLite file lives on one machine)")
    tasks = load_source(config.source, config.limit)
    check_strategy(config, {kind_of(t) for t in tasks})
    if not resume:
        notes += price_stage_models(config)
    return config, tasks, notes


def _plugin_spec(spec: str) -> str:
    """A plugin as run.json keeps it: a module name as is, a .py file by its absolute path (workers run elsewhere)."""
    if spec.endswith(".py") or "/" in spec:
        return str(Path(spec).expanduser().resolve())
    return spec


def _make_executor(config: RunConfig, ledger: Ledger, tasks: list[Task]):
    if config.executor == "ray":
        from ._executor_ray import RayExecutor

        return RayExecutor(config)
    from ._executor_local import LocalExecutor

    graph = any(strategy_for(config, kind_of(t)) == "graph" for t in tasks)
    checkpoint = str(Path(config.out) / "checkpoints.db") if graph else None
    return LocalExecutor(config, ledger, checkpoint=checkpoint)


def _error_result(job: Job, err: BaseException, config: RunConfig) -> JobResult:
    """A job the executor lost (a worker died): each of its tasks is recorded as an error (--retry-errors reruns it)."""
    now = time.time()
    records = [TaskRecord(id=tid, kind=t["kind"], model=config.model, strategy="-", solved=None, reason="error",
                          account=acct, cap_usd=job.cap_usd, started=now, finished=now, resumed=job.resumed,
                          error=f"{type(err).__name__}: {err}")
               for tid, t, acct in zip(job.ids, job.tasks, job.accounts)]
    arts = {r.id: TaskArtifacts(log=[f"the executor lost this job: {type(err).__name__}: {err}"]) for r in records}
    return JobResult(records=records, artifacts=arts)


def open_run_accounts(ledger: Ledger, config: RunConfig, *, resume: bool) -> None:
    """The run's account (its cap is the run's budget) and the scoring account beside it. A new run refuses a name
    the ledger already has (a shared ledger holds many runs); a resumed run refuses a ledger that lacks it (it
    would start over with a fresh cap)."""
    exists = any(b.name == config.run_account for b in ledger.accounts())
    if exists and not resume:
        raise RunConfigError(f"the ledger {config.ledger} already has an account {config.run_account!r}: pass "
                             f"--name to give this run another one, or --resume to finish that run")
    if resume and not exists:
        raise RunConfigError(f"--resume: the ledger {config.ledger} has no account {config.run_account!r}, so it is "
                             f"not the ledger this run spent on (moved, deleted, or another --ledger); resuming "
                             f"there would start over with a fresh cap. Point --ledger at the run's ledger.")
    try:
        ledger.root(config.run_account, Budget(usd=config.budget_usd))
        ledger.root(config.scoring_account, Budget())  # scoring is outside the run's budget, on purpose
    except AccountMismatch as err:
        raise RunConfigError(f"{err}") from None


def run_batch(config: RunConfig, tasks: list[Task], *, resume: bool = False, console: Console | None = None,
              progress: bool | None = None, retry_errors: bool = False, report: bool = True,
              on_note=None) -> RunSummary:
    """Run every task not finished yet; returns when all are recorded. See the module doc."""
    console = console or Console(stderr=True)
    say = on_note or (lambda msg: console.print(msg))
    store = RunDir(config.out)
    store.create()
    store.repair()
    t0 = time.monotonic()
    try:  # opening settles reservations a killed earlier attempt left open
        ledger = Ledger(config.ledger, create=not resume)
    except LedgerMissing as err:
        raise RunConfigError(f"--resume: {err}; a resumed run must spend on the ledger it started on") from None
    notes: list[str] = []
    if ledger.recovered:
        notes.append(f"the ledger settled {len(ledger.recovered)} reservation(s) left open by a killed attempt "
                     f"(charged as reserved: {format_usd(sum(r.charged.usd for r in ledger.recovered))})")
        say(notes[-1])
    executor = None
    try:
        open_run_accounts(ledger, config, resume=resume)
        if not resume:  # written once the run's accounts exist: a run.json always names a ledger that has them
            save_config(config, config.out)
        ids = [t.task_id for t in tasks]
        store.write_task_ids(ids)
        done = {k: v for k, v in store.done(retry_errors=retry_errors).items() if k in set(ids)}
        finished = set(done)
        planner = Planner(ledger, config, tasks)
        queue = deque(planner.pending(finished))
        run_account = planner.run
        calibration = CascadeCalibration.for_run(config, tasks, store)  # --set calibrate=N: a gate on the queue
        solved = sum(1 for r in done.values() if r.solved)
        if queue:
            executor = _make_executor(config, ledger, tasks)
            say(f"starting {len(ids) - len(finished)} task(s) of {len(ids)}"
                + (f" ({len(finished)} already done)" if finished else "") + f" with {config.model}")
            try:
                where = executor.start()
            except (RunConfigError, UnpricedModel, RayUnavailable):
                raise
            except Exception as err:  # no engine, weights missing, cluster unreachable: say so, keep what is done
                raise RunStartError(f"cannot start the run's workers: {type(err).__name__}: {err}. Fix it and "
                                    f"finish the run with: budgetflow run --resume --out {config.out}") from err
            say(where)
            with RunProgress(console, total=len(ids), done=len(finished), solved=solved, cap_usd=config.budget_usd,
                             enabled=progress) as bar:
                while queue or executor.in_flight:
                    while queue and executor.in_flight < executor.capacity and (
                            calibration is None or calibration.may_start(queue[0], finished, run_account)):
                        job = planner.open(queue.popleft(), finished)
                        if calibration is not None:
                            job.settings = calibration.job_settings(job.ids)
                        executor.submit(job)
                    for job, result in executor.poll(timeout=0.5):
                        if isinstance(result, BaseException):
                            result = _error_result(job, result, config)
                        for rec in result.records:
                            store.append(rec, result.artifacts.get(rec.id))
                            finished.add(rec.id)
                            solved += bool(rec.solved)
                        bal = run_account.balance()
                        bar.update(done=len(finished), solved=solved, spent=bal.committed.usd,
                                   left=bal.left.usd, finished=result.records)
            executor.close()
            executor = None
        records = _ordered(store, ids)
        store.write_csv(records)
        selective = run_selective(records, penalty=config.wrong_penalty, abstain_unknown=config.abstain_unknown,
                                  threshold=config.abstain_below)
        store.write_selective(selective)
        bal = run_account.balance()
        scoring = ledger.account(config.scoring_account).spent()
        report_path = None
        if report:
            from ._report import build_report

            report_path = str(build_report(config.out, ledger=ledger))
        check = ledger.verify()
        return RunSummary(
            out=config.out, total=len(ids), done=len(records), solved=sum(1 for r in records if r.solved),
            scored=sum(1 for r in records if r.solved is not None), errors=sum(1 for r in records if r.error),
            spent_usd=bal.committed.usd, cap_usd=config.budget_usd, held_usd=bal.reserved.usd,
            scoring_usd=scoring.usd, scoring_cpu_seconds=scoring.cpu_seconds, wall_s=time.monotonic() - t0,
            executor=config.executor, recovered=len(ledger.recovered), verify_ok=check.ok, verify=check.summary(),
            report=report_path, notes=notes + ([config.price_note] if config.price_note else []),
            selective=selective)
    finally:
        if executor is not None:
            executor.close(wait_running=False)
        ledger.close()


def _ordered(store: RunDir, ids: list[str]) -> list[TaskRecord]:
    done = store.done()
    return [done[i] for i in ids if i in done]


__all__ = ["RunConfigError", "RunStartError", "RunSummary", "open_run_accounts", "prepare_run", "run_batch"]
