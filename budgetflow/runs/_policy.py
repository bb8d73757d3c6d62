"""Budget policies: how the run's budget is split into task accounts, and the jobs a run is cut into.

- `equal`: each task runs on its own account `<run>/task/<id>` whose cap is an equal share of what is still free when
  it starts: (run cap − spent by finished tasks − caps held by unfinished ones) / tasks not yet started. Money a
  finished task did not spend flows to the tasks after it; the run's cap holds whatever the shares are, because every
  reservation is also held on the run's account.
- `allocate`: code tasks are cut into fixed chunks of `search.chunk` tasks (by position in the source, so a resumed
  run cuts them alike); a chunk gets a share as above (weighted by its size) on `<run>/alloc/<k>` and
  `search.allocate` spends it across the chunk's tasks, one wave at a time, where the next wave gains most. Each task
  still spends through `<run>/task/<id>`, under the chunk's account. Other kinds run as under `equal`.

An account that already exists (the task was in flight when the run was killed) is reopened with its old cap, never
recreated: the cap covers both attempts.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..budget import Ledger, usd_share
from ..tasks import Task, kind_of, task_to_dict
from ._config import RunConfig


class Job(BaseModel):
    """Work handed to an executor: one task (or one allocation chunk), its accounts already opened by the driver."""

    index: int
    tasks: list[dict]  # dump_task() of each task, hidden tests included (the worker scores after selecting)
    accounts: list[str]  # each task's account
    scoring: list[str]  # each task's scoring account (outside the run's budget)
    chunk: str | None = None  # allocate: the chunk account the tasks share
    cap_usd: float | None = None  # the cap of the job's account (task or chunk)
    resumed: bool = False  # the account already existed: a previous attempt was killed mid-job
    settings: dict = Field(default_factory=dict)  # solver settings for this job beyond the run's (cascade calibration)

    @property
    def ids(self) -> list[str]:
        return [t["data"].get("id") or t["data"].get("instance_id") for t in self.tasks]


class Unit(BaseModel):
    """A planned job before its accounts are opened."""

    task_ids: list[str]
    chunk: int | None = None


def plan_units(config: RunConfig, tasks: list[Task]) -> list[Unit]:
    """Every unit of the run (finished or not), in source order."""
    if config.policy == "equal":
        return [Unit(task_ids=[t.task_id]) for t in tasks]
    units: list[Unit] = []
    code = [t for t in tasks if kind_of(t) == "code"]
    chunks: dict[int, Unit] = {}
    for i, t in enumerate(code):
        k = i // config.search.chunk
        if k not in chunks:
            chunks[k] = Unit(task_ids=[], chunk=k)
            units.append(chunks[k])
        chunks[k].task_ids.append(t.task_id)
    units += [Unit(task_ids=[t.task_id]) for t in tasks if kind_of(t) != "code"]
    return units


class Planner:
    """Opens the accounts of each job as it is dispatched, with the policy's share of what is still free."""

    def __init__(self, ledger: Ledger, config: RunConfig, tasks: list[Task]):
        self.ledger = ledger
        self.config = config
        self.tasks = {t.task_id: t for t in tasks}
        self.units = plan_units(config, tasks)
        self.run = ledger.account(config.run_account)
        self.scoring = ledger.account(config.scoring_account)
        self._next = 0

    def unit_account(self, unit: Unit) -> str:
        if unit.chunk is not None:
            return self.config.chunk_account(unit.chunk)
        return self.config.task_account(unit.task_ids[0])

    def pending(self, finished: set[str]) -> list[Unit]:
        """Units with tasks still to run, each cut down to those tasks."""
        out = []
        for u in self.units:
            left = [i for i in u.task_ids if i not in finished]
            if left:
                out.append(u.model_copy(update={"task_ids": left}))
        return out

    def _open_units(self, finished: set[str]) -> tuple[dict, list, int]:
        """(balances by name, balances of units whose account is open, tasks of units not opened yet), from one
        ledger snapshot."""
        balances = {b.name: b for b in self.ledger.accounts()}
        opened, unopened = [], 0
        for unit in self.units:
            if all(i in finished for i in unit.task_ids):
                continue
            bal = balances.get(self.unit_account(unit))
            if bal is None:
                unopened += len([i for i in unit.task_ids if i not in finished])
            else:
                opened.append(bal)
        return balances, opened, unopened

    def open(self, unit: Unit, finished: set[str]) -> Job:
        """Create (or reopen) the unit's accounts and return the job to dispatch."""
        name = self.unit_account(unit)
        balances, opened, unopened = self._open_units(finished)
        resumed = name in balances
        if resumed:
            account = self.ledger.account(name, parent=self.run)
            cap = balances[name].budget
        else:
            cap = usd_share(balances[self.config.run_account], opened, len(unit.task_ids), unopened)
            account = self.run.child(name, cap)
        accounts, scoring = [], []
        for tid in unit.task_ids:
            task_name = self.config.task_account(tid)
            if unit.chunk is not None:
                account.child(task_name)  # under the chunk: search.allocate reopens it by this name
            accounts.append(task_name)
            scoring.append(self.scoring.child(self.config.scoring_child(tid)).name)
        job = Job(index=self._next, tasks=[task_to_dict(self.tasks[i]) for i in unit.task_ids], accounts=accounts,
                  scoring=scoring, chunk=name if unit.chunk is not None else None, cap_usd=cap.usd, resumed=resumed)
        self._next += 1
        return job
