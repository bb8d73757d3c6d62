"""What runs a job, wherever it runs: the driver's threads (local executor) share one WorkerContext; each Ray actor
builds its own from the RunConfig, opening the shared ledger itself. Accounts are opened by the driver and only
reopened here, by name, so every reservation a worker makes is held on the run's account in the shared ledger.

A task is attempted by the solver the registry names for it (`solving.py`) and scored by its kind's scorer; what is
recorded comes straight from the solver's `Result`."""

from __future__ import annotations

import os
import threading
import time
import traceback

from ..budget import SANDBOX_CPU, Account, BudgetExceeded, Ledger, format_usd
from ..search import AllocationConfig, Resources, Result, SamplingParams, allocate, solver_settings, solvers
from ..tasks import kind_of, task_from_dict
from ..verifiers import Score, score, verifiers
from ._config import RunConfig
from ._policy import Job
from ._pricing import book_from
from ._records import JobResult, TaskArtifacts, TaskRecord, amounts_dict
from ._selective import abstains
from ._solving import settings_for, strategy_for

RECORDED_DETAILS = ("cascade",)  # Result.details entries a result line keeps (under `metrics`)


class WorkerContext:
    """The ledger, model, sandbox and verifiers a worker runs jobs with."""

    def __init__(self, config: RunConfig, *, ledger: Ledger | None = None, checkpoint: str | None = None,
                 worker: str | None = None):
        from ..sandbox import get_sandbox

        from .._registry import load_plugins

        for spec in config.plugins:  # a Ray worker is a fresh process: the run's plugins register here too
            load_plugins(spec)
        self.config = config
        self._own_ledger = ledger is None
        self.ledger = ledger if ledger is not None else Ledger(config.ledger)
        self.prices = book_from(config.prices)
        self.checkpoint = checkpoint
        self.worker = worker or f"local:{os.getpid()}"
        self._llm = None
        self._others: dict[str, object] = {}  # models a solver names besides the run's (cascade stages)
        self._lock = threading.Lock()
        self.sandbox = get_sandbox(config.sandbox)

    @property
    def llm(self):
        with self._lock:
            if self._llm is None:
                from ..llm import get_llm

                self._llm = get_llm(self.config.model, prices=self.prices, **dict(self.config.engine_options))
            return self._llm

    def llm_named(self, name: str):
        """Another model, built on first use with the run's prices (a local one starts its own engine)."""
        if name == self.config.model:
            return self.llm
        with self._lock:
            if name not in self._others:
                from ..llm import get_llm

                self._others[name] = get_llm(name, prices=self.prices)
            return self._others[name]

    def verifier_for(self, strategy: str, kind: str):
        """The solver's own verifier if it names one, else the kind's (the first registered for it)."""
        name = solvers.meta(strategy).get("verifier") if strategy in solvers else None
        if name is None:
            name = next((n for n, _, meta in verifiers.items() if kind in meta["kinds"] and n != "judge"), None)
        if name is None:
            return None
        return verifiers.build(name, llm=self.llm, sandbox=self.sandbox, prices=self.prices)

    def close(self) -> None:
        if self._own_ledger:
            self.ledger.close()

    # ------------------------------------------------------------------ jobs

    def run_job(self, job: Job) -> JobResult:
        tasks = [task_from_dict(d) for d in job.tasks]
        if job.chunk is not None:
            return self._run_chunk(job, tasks)
        (task,) = tasks
        record, artifacts = self._run_one(job, task, job.accounts[0], job.scoring[0])
        return JobResult(records=[record], artifacts={record.id: artifacts})

    def _header(self, job: Job, task, account: str, strategy: str) -> list[str]:
        cap = "no cap" if job.cap_usd is None else f"cap {format_usd(job.cap_usd)}"
        where = f"chunk {job.chunk} ({cap})" if job.chunk else cap
        log = [f"{kind_of(task)} task {task.task_id}: strategy {strategy}, model {self.config.model}, "
               f"account {account}, {where}, worker {self.worker}"]
        if job.resumed:
            log.append("resumed: an earlier attempt did not finish (killed in flight, or retried after an error); "
                       "its spend (open reservations recovered by the ledger) stays on this account, under the same cap")
        return log

    def _run_one(self, job: Job, task, account_name: str, scoring_name: str) -> tuple[TaskRecord, TaskArtifacts]:
        started = time.time()
        kind = kind_of(task)
        strategy = strategy_for(self.config, kind)
        log = self._header(job, task, account_name, strategy)
        account = self.ledger.account(account_name, parent=self.config.run_account)
        error = None
        try:
            settings = settings_for(self.config, strategy)
            if job.settings:  # this job's own (cascade calibration, or the order it learned)
                settings = solver_settings(strategy, {**settings.model_dump(), **job.settings})
            solver = solvers.get(strategy)(settings)
            resources = Resources(llm=self.llm, account=account, verifier=self.verifier_for(strategy, kind),
                                  sandbox=self.sandbox, checkpoint=self.checkpoint,
                                  sandbox_usd_per_cpu_second=self.prices.per_second(SANDBOX_CPU, "cpu"),
                                  llm_for=self.llm_named)
            result = solver.solve(task.public(), resources)
        except BudgetExceeded as err:
            result = Result(task_id=task.task_id, kind=kind, reason="budget", notes=[str(err)])
        except Exception as err:  # recorded, not fatal: the run goes on with the other tasks
            error = f"{type(err).__name__}: {err}"
            result = Result(task_id=task.task_id, kind=kind, reason="error")
            log += ["error:", *traceback.format_exc().rstrip().splitlines()]
        return self._finish(job, task, account, scoring_name, strategy, result, log, started, error)

    def _run_chunk(self, job: Job, tasks: list) -> JobResult:
        started = time.time()
        chunk = self.ledger.account(job.chunk, parent=self.config.run_account)
        accounts = {t.task_id: self.ledger.account(name, parent=chunk) for t, name in zip(tasks, job.accounts)}
        s = self.config.search
        cfg = AllocationConfig(wave_size=s.wave_size, max_per_task=s.max_samples)
        settings = settings_for(self.config, "allocate")
        params = SamplingParams(**{k: getattr(settings, k) for k in SamplingParams.model_fields})
        error = None
        try:
            verifier = self.verifier_for("sample", "code")
            batch = allocate(self.llm, [t.public() for t in tasks], verifier, account=chunk, config=cfg,
                             params=params, accounts=accounts)
            results = batch.results
            note = f"allocated with {len(tasks) - 1} other task(s) in {job.chunk}: {len(batch.waves)} waves, {batch.reason}"
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            results = [Result(task_id=t.task_id, kind="code", reason="error") for t in tasks]
            note = "the allocation failed:\n" + traceback.format_exc().rstrip()
        records: list[TaskRecord] = []
        artifacts: dict[str, TaskArtifacts] = {}
        for task, result, scoring_name in zip(tasks, results, job.scoring):
            log = self._header(job, task, accounts[task.task_id].name, "allocate") + [note]
            rec, art = self._finish(job, task, accounts[task.task_id], scoring_name, "allocate", result, log,
                                    started, error)
            records.append(rec)
            artifacts[rec.id] = art
        return JobResult(records=records, artifacts=artifacts)

    def _finish(self, job: Job, task, account: Account, scoring_name: str, strategy: str, result: Result,
                log: list[str], started: float, error: str | None) -> tuple[TaskRecord, TaskArtifacts]:
        log = log + result.log + [f"stopped: {result.reason} after {result.samples} sample(s)"] + \
            [f"note: {n}" for n in result.notes]
        try:
            sc = score(task, result.answer, account=self.ledger.account(scoring_name,
                                                                         parent=self.config.scoring_account),
                       sandbox=self.sandbox)
        except Exception as err:
            sc = Score(solved=None, detail=f"scoring failed: {type(err).__name__}: {err}")
        log.append(f"scoring (hidden, not part of the run's budget): {sc.detail}")
        cfg = self.config
        withheld = abstains(result.confidence, cfg.abstain_below, abstain_unknown=cfg.abstain_unknown)
        if cfg.abstain_below is not None:
            conf = "none" if result.confidence is None else f"{result.confidence:.3f}"
            log.append(f"confidence {conf}: " + (f"abstained (below {cfg.abstain_below:g}); the answer is kept for "
                                                 f"the audit and scored, but not counted as answered"
                                                 if withheld else "answered"))
        spend = {k: amounts_dict(v) for k, v in account.spend_by_part().items()}
        total = spend.get("total", {})
        log.append(f"spent {format_usd(total.get('usd', 0.0))}: " + ", ".join(
            f"{k} {format_usd(v.get('usd', 0.0))}" for k, v in spend.items() if k != "total"))
        finished = time.time()
        record = TaskRecord(
            id=task.task_id, kind=kind_of(task), model=self.config.model, strategy=strategy, solved=sc.solved,
            solved_visible=result.solved_visible, reason=result.reason, selected=result.answer,
            confidence=result.confidence, abstained=withheld,
            samples=result.samples, spend=spend, scoring={**sc.spend, "detail": sc.detail}, account=account.name,
            cap_usd=job.cap_usd, wall_s=finished - started, started=started, finished=finished, resumed=job.resumed,
            worker=self.worker, notes=result.notes, error=error,
            metrics={k: result.details[k] for k in RECORDED_DETAILS if k in result.details})
        candidates = [{**c.model_dump(mode="json", exclude={"meta"}), **c.meta,
                       "selected": result.best is not None and c.id == result.best.id and c.text == result.best.text}
                      for c in result.candidates]
        return record, TaskArtifacts(candidates=candidates, log=log)
