"""What runs a job, wherever it runs: the driver's threads (local executor) share one WorkerContext; each Ray actor
builds its own from the RunConfig, opening the shared ledger itself. Accounts are opened by the driver and only
reopened here, by name, so every reservation a worker makes is held on the run's account in the shared ledger."""

from __future__ import annotations

import os
import threading
import time
import traceback

from ..budget import Account, BudgetExceeded, Ledger
from .config import RunConfig
from .policy import Job
from .pricing import book_from
from .records import JobResult, TaskArtifacts, TaskRecord
from .scoring import Score, score
from .solvers import Outcome, RecordingVerifier, outcome_from_search, sampling_params, solver_for, strategy_for
from .sources import load_task, task_id, task_kind
from .spend import task_spend


class _Named:
    """The chunk account as search.allocate sees it, but named `<run>/task`, so the per-task accounts allocate opens
    under it are `<run>/task/<id>`: the same names as under the equal policy."""

    def __init__(self, account: Account, name: str):
        self._account = account
        self.name = name

    def child(self, name: str, budget=None) -> Account:
        return self._account.child(name, budget)

    def __getattr__(self, attr):
        return getattr(self._account, attr)


class WorkerContext:
    """The ledger, model, sandbox and verifiers a worker runs jobs with."""

    def __init__(self, config: RunConfig, *, ledger: Ledger | None = None, checkpoint: str | None = None,
                 worker: str | None = None):
        from ..sandbox import get_sandbox
        from ..verifiers import UnitTestVerifier

        self.config = config
        self._own_ledger = ledger is None
        self.ledger = ledger if ledger is not None else Ledger(config.ledger)
        self.prices = book_from(config.prices)
        self.checkpoint = checkpoint
        self.worker = worker or f"local:{os.getpid()}"
        self._llm = None
        self._lock = threading.Lock()
        self.sandbox = get_sandbox(config.sandbox)
        usd_cpu = config.sandbox_cpu_hour / 3600
        self.verifier = RecordingVerifier(UnitTestVerifier(self.sandbox, usd_per_cpu_second=usd_cpu))
        self.scorer = UnitTestVerifier(self.sandbox)  # scoring: CPU-seconds on the scoring account

    @property
    def llm(self):
        with self._lock:
            if self._llm is None:
                from ..llm import get_llm

                self._llm = get_llm(self.config.model, prices=self.prices, **dict(self.config.engine_options))
            return self._llm

    def close(self) -> None:
        if self._own_ledger:
            self.ledger.close()

    # ------------------------------------------------------------------ jobs

    def run_job(self, job: Job) -> JobResult:
        tasks = [load_task(d) for d in job.tasks]
        if job.chunk is not None:
            return self._run_chunk(job, tasks)
        (task,) = tasks
        record, artifacts = self._run_one(job, task, job.accounts[0], job.scoring[0])
        return JobResult(records=[record], artifacts={record.id: artifacts})

    def _header(self, job: Job, task, account: str, strategy: str) -> list[str]:
        cap = "no cap" if job.cap_usd is None else f"cap ${job.cap_usd:.6f}"
        where = f"chunk {job.chunk} ({cap})" if job.chunk else cap
        log = [f"{task_kind(task)} task {task_id(task)}: strategy {strategy}, model {self.config.model}, "
               f"account {account}, {where}, worker {self.worker}"]
        if job.resumed:
            log.append("resumed: an earlier attempt did not finish (killed in flight, or retried after an error); "
                       "its spend (open reservations recovered by the ledger) stays on this account, under the same cap")
        return log

    def _run_one(self, job: Job, task, account_name: str, scoring_name: str) -> tuple[TaskRecord, TaskArtifacts]:
        started = time.time()
        kind = task_kind(task)
        strategy = strategy_for(self.config, kind)
        log = self._header(job, task, account_name, strategy)
        account = self.ledger.account(account_name, parent=self.config.run_account)
        error = None
        try:
            outcome = solver_for(self.config, kind)(self, task, account)
        except BudgetExceeded as err:
            outcome = Outcome(reason="budget", notes=[str(err)])
        except Exception as err:  # recorded, not fatal: the run goes on with the other tasks
            error = f"{type(err).__name__}: {err}"
            outcome = Outcome(reason="error")
            log += ["error:", *traceback.format_exc().rstrip().splitlines()]
        return self._finish(job, task, account_name, scoring_name, strategy, outcome, log, started, error)

    def _run_chunk(self, job: Job, tasks: list) -> JobResult:
        from ..search import AllocationConfig, allocate

        started = time.time()
        chunk = self.ledger.account(job.chunk, parent=self.config.run_account)
        s = self.config.search
        cfg = AllocationConfig(wave_size=s.wave_size, max_per_task=s.max_samples)
        error = None
        try:
            batch = allocate(self.llm, [t.public() for t in tasks], self.verifier,
                             account=_Named(chunk, f"{self.config.run_account}/task"), config=cfg,
                             params=sampling_params(self.config))
            outcomes = [outcome_from_search(r, t, self.verifier.take(name))
                        for r, t, name in zip(batch.results, tasks, job.accounts)]
            note = f"allocated with {len(tasks) - 1} other task(s) in {job.chunk}: {len(batch.waves)} waves, {batch.reason}"
        except Exception as err:
            error = f"{type(err).__name__}: {err}"
            outcomes = [Outcome(reason="error") for _ in tasks]
            note = "the allocation failed:\n" + traceback.format_exc().rstrip()
        records: list[TaskRecord] = []
        artifacts: dict[str, TaskArtifacts] = {}
        for task, outcome, name, scoring_name in zip(tasks, outcomes, job.accounts, job.scoring):
            log = self._header(job, task, name, "allocate") + [note]
            rec, art = self._finish(job, task, name, scoring_name, "allocate", outcome, log, started, error)
            records.append(rec)
            artifacts[rec.id] = art
        return JobResult(records=records, artifacts=artifacts)

    def _finish(self, job: Job, task, account_name: str, scoring_name: str, strategy: str, outcome: Outcome,
                log: list[str], started: float, error: str | None) -> tuple[TaskRecord, TaskArtifacts]:
        log = log + outcome.log + [f"stopped: {outcome.reason} after {outcome.samples} sample(s)"] + \
            [f"note: {n}" for n in outcome.notes]
        try:
            sc = score(self, task, outcome.selected, self.ledger.account(scoring_name,
                                                                          parent=self.config.scoring_account))
        except Exception as err:
            sc = Score(solved=None, detail=f"scoring failed: {type(err).__name__}: {err}")
        log.append(f"scoring (hidden, not part of the run's budget): {sc.detail}")
        spend = task_spend(self.ledger, account_name)
        total = spend.get("total", {})
        log.append(f"spent ${total.get('usd', 0.0):.6f}: " + ", ".join(
            f"{k} ${v.get('usd', 0.0):.6f}" for k, v in spend.items() if k != "total"))
        finished = time.time()
        record = TaskRecord(
            id=task_id(task), kind=task_kind(task), model=self.config.model, strategy=strategy, solved=sc.solved,
            solved_visible=outcome.solved_visible, reason=outcome.reason, selected=outcome.selected,
            samples=outcome.samples, spend=spend, scoring={**sc.spend, "detail": sc.detail}, account=account_name,
            cap_usd=job.cap_usd, wall_s=finished - started, started=started, finished=finished, resumed=job.resumed,
            worker=self.worker, notes=outcome.notes, error=error)
        return record, TaskArtifacts(candidates=outcome.candidates, log=log)
