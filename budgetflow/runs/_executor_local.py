"""The local executor: jobs run on threads of the driver process, sharing one ledger connection, one model client
(the engine batches their requests) and one sandbox."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from ..budget import Ledger
from ._concurrency import pick_concurrency
from ._config import RunConfig
from ._policy import Job
from ._records import JobResult
from ._worker import WorkerContext


class LocalExecutor:
    def __init__(self, config: RunConfig, ledger: Ledger, *, checkpoint: str | None = None):
        self.config = config
        self.capacity = config.concurrency or 1
        self.ledger = ledger
        self.ctx = WorkerContext(config, ledger=ledger, checkpoint=checkpoint)
        self._pool: ThreadPoolExecutor | None = None
        self._futures: dict[Future, Job] = {}

    def start(self) -> str:
        """Start the model (a local one is prepared and served here) before any task runs: fails fast."""
        llm = self.ctx.llm
        why = f"{self.capacity} task(s) at once (-j)"
        if self.config.concurrency is None:  # size it from the engine's own speed (measured once per machine)
            calibrate = getattr(llm, "calibrate", None)
            if calibrate is not None:
                calibrate(self.ledger.account(self.config.run_account))
            self.capacity, why = pick_concurrency(llm, self.config.search.wave_size)
        self._pool = ThreadPoolExecutor(self.capacity, thread_name_prefix="budgetflow-task")
        return f"local: {why}; model {llm.name}"

    @property
    def in_flight(self) -> int:
        return len(self._futures)

    def submit(self, job: Job) -> None:
        self._futures[self._pool.submit(self.ctx.run_job, job)] = job

    def poll(self, timeout: float) -> list[tuple[Job, JobResult | BaseException]]:
        if not self._futures:
            return []
        done, _ = wait(list(self._futures), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            job = self._futures.pop(fut)
            err = fut.exception()
            out.append((job, err if err is not None else fut.result()))
        return out

    def close(self, *, wait_running: bool = True) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait_running, cancel_futures=True)
        self.ctx.close()
