"""`solve()`: one call from a task to an answer under a hard budget, through the ready-made graphs, with the spend
of every agent read back from the ledger; `write_predictions()` for SWE-bench-style output."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from ..budget import AccountMissing, Amounts, Budget, Ledger, PriceBook
from ..llm import LLM, get_llm
from ..sandbox import Sandbox
from ..tasks import CodeTask, MathTask, RepoTask
from ..verifiers import program_for
from .checkpoint import sqlite_checkpointer, thread_config
from .config import AgentConfig
from .graphs import build_codegen_graph, build_swe_graph, initial_state
from .state import AgentState, CandidateRecord, Verdict
from .strategies import WaveStrategy

DEFAULT_MODEL = "local/qwen2.5-coder-1.5b"
DEFAULT_LEDGER = Path("runs") / "budgetflow.db"
AGENT_NAMES = ("tester", "solver", "verifier", "selector")


class SolveResult(BaseModel):
    task_id: str
    kind: str  # code | repo
    model: str
    thread_id: str
    account: str  # the task's ledger account
    selected: CandidateRecord | None
    answer: str | None  # the whole program (code) or the unified diff (repo) of the selected candidate
    reason: str  # solved | exhausted | budget
    selection: str | None  # tests | votes | llm | ... (how the candidate was chosen)
    spend: dict[str, Amounts]  # by agent (tester, solver, verifier, selector) and "total", from the ledger
    accounts: dict[str, Amounts] = Field(default_factory=dict)  # every account under the task's, e.g. solver/traj-0
    candidates: list[CandidateRecord] = Field(default_factory=list)
    verdicts: dict[str, Verdict] = Field(default_factory=dict)
    tests: list[str] = Field(default_factory=list)
    tests_source: str = "none"
    notes: list[str] = Field(default_factory=list)
    resumed: bool = False  # this call continued a checkpointed run

    @property
    def patch(self) -> str:
        """The selected unified diff (repo tasks); empty if none."""
        return (self.answer or "") if self.kind == "repo" else ""

    @property
    def solved_visible(self) -> bool:
        """The selected candidate passed every test of the run (given or generated)."""
        v = self.verdicts.get(self.selected.id) if self.selected else None
        return bool(v and v.all_passed)

    def prediction(self, model_name: str | None = None) -> dict:
        """The SWE-bench predictions.jsonl record of this result."""
        name = model_name or self.model.split("@")[0]  # vllm/<model>@<url>: the URL is no part of the name
        return {"instance_id": self.task_id, "model_name_or_path": name, "model_patch": self.patch}


def coerce_task(task: Any) -> CodeTask | RepoTask:
    """A CodeTask or RepoTask from a task object, a dict, or a function prompt string."""
    if isinstance(task, (CodeTask, RepoTask)):
        return task
    if isinstance(task, MathTask):
        raise TypeError("solve() takes code and repository tasks; for a MathTask use budgetflow.search "
                        "(majority_of_n, beam_search, mcts, astar)")
    if isinstance(task, Mapping):
        kind = RepoTask if {"repo", "issue"} <= set(task) else CodeTask
        data = dict(task)
        if kind is CodeTask and "prompt" in data:
            entry = data.get("entry_point") or _entry_point(str(data["prompt"]))
            data.setdefault("entry_point", entry)
            data.setdefault("id", entry)
            if isinstance(data.get("visible_tests"), list):
                data["visible_tests"] = tuple(data["visible_tests"])
        try:
            return kind.model_validate(data)
        except ValidationError as err:
            need = ("instance_id, project, repo, issue, fail_to_pass" if kind is RepoTask
                    else "prompt (and optionally id, entry_point, visible_tests)")
            raise ValueError(f"not a valid {kind.__name__}: {err.error_count()} problem(s): "
                             f"{'; '.join(e['loc'][0].__str__() + ': ' + e['msg'] for e in err.errors()[:4])}. "
                             f"A {kind.__name__} dict needs {need}") from None
    if isinstance(task, str):
        entry = _entry_point(task)
        return CodeTask(id=entry, prompt=task if task.endswith("\n") else task + "\n", entry_point=entry)
    raise TypeError(f"solve() takes a CodeTask, a RepoTask, a dict or a function prompt string, "
                    f"got {type(task).__name__}")


def _entry_point(prompt: str) -> str:
    """The last function a prompt defines (its signature and docstring; the body may be missing)."""
    try:
        tree = ast.parse(prompt.rstrip() + "\n    pass\n" if prompt.rstrip().endswith(('"""', "'''", ":"))
                         else prompt)
    except SyntaxError as err:
        raise ValueError(f"the task prompt is not Python code starting a function: {err.msg} "
                         f"(line {err.lineno})") from None
    names = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not names:
        raise ValueError("the task prompt defines no function: give `def name(...):` with a docstring")
    return names[-1]


def _ledger(ledger: Ledger | str | Path | None, checkpoint: str | Path | None) -> tuple[Ledger, bool]:
    """The caller's ledger, or by default one beside the checkpoint (so a resume from any directory finds it), or
    ./runs/budgetflow.db without a checkpoint."""
    if isinstance(ledger, Ledger):
        return ledger, False
    if ledger is None:
        ledger = Path(checkpoint).with_suffix(".ledger.db") if checkpoint is not None else DEFAULT_LEDGER
    return Ledger(ledger), True


def _run_account(led: Ledger, thread_id: str, budget: Budget, checkpoint: str | Path | None):
    """The run's root account. A thread the checkpoint already knows must find it in this ledger: resuming on a
    ledger without it would start over with a fresh cap."""
    if checkpoint is not None and Path(checkpoint).exists():
        with sqlite_checkpointer(checkpoint) as saver:
            known = saver.get_tuple(thread_config(thread_id)) is not None
        if known:
            try:
                led.account(thread_id)
            except AccountMissing:
                raise ValueError(f"thread {thread_id!r} has checkpoints in {checkpoint}, but the ledger {led.url} "
                                 f"has no account {thread_id!r}: resume with the ledger the run started on "
                                 f"(ledger=...), or use a new thread_id") from None
    return led.root(thread_id, budget)


def _llm(model: str | LLM, prices: PriceBook | None, model_options: Mapping | None) -> LLM:
    if isinstance(model, str):
        return get_llm(model, prices=prices, **dict(model_options or {}))
    if not isinstance(model, LLM):
        raise TypeError(f"model must be a model name (e.g. {DEFAULT_MODEL!r}) or an LLM, got {type(model).__name__}")
    return model


def solve(task: Any, *, model: str | LLM = DEFAULT_MODEL, budget: Budget | float = 0.05,
          strategy: str | WaveStrategy = "sample", ledger: Ledger | str | Path | None = None,
          checkpoint: str | Path | None = None, thread_id: str | None = None, sandbox: Sandbox | None = None,
          prices: PriceBook | None = None, config: AgentConfig | None = None,
          model_options: Mapping | None = None) -> SolveResult:
    """Solve a code task (complete a function) or a repository task (produce a patch) under a hard budget.

    budget: a Budget, or a number of US dollars. The run's account (named by `thread_id`) holds the cap; the task's
    account `<thread_id>/<task id>` and its agents' accounts (`.../solver`, `.../tester`, ...) spend under it.
    ledger: a Ledger, or the path of a SQLite ledger (default: beside the checkpoint, CHECKPOINT.ledger.db, or
    ./runs/budgetflow.db without one). Resuming a checkpointed thread needs the ledger it started on.
    checkpoint: a SQLite file for LangGraph checkpoints. Calling solve() again with the same checkpoint, ledger and
    thread_id continues a run that was killed (finished nodes are not paid for again) or returns the finished one.
    model: a name for get_llm (local models need a price: `prices.set("local/...", cpu_hour=...)`) or an LLM.
    """
    task = coerce_task(task)
    task_id = task.id if isinstance(task, CodeTask) else task.instance_id
    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        budget = Budget(usd=float(budget))
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget or a number of dollars, got {type(budget).__name__}")
    thread_id = thread_id or f"{task_id}-{uuid.uuid4().hex[:8]}"
    llm = _llm(model, prices, model_options)
    led, owned = _ledger(ledger, checkpoint)
    try:
        run = _run_account(led, thread_id, budget, checkpoint)
        account = run.child(f"{thread_id}/{task_id}")
        build = build_codegen_graph if isinstance(task, CodeTask) else build_swe_graph
        kwargs = {"strategy": strategy} if isinstance(task, CodeTask) else {}
        cfg = thread_config(thread_id)
        if checkpoint is None:
            graph = build(llm, ledger=led, sandbox=sandbox, config=config, **kwargs)
            final = graph.invoke(initial_state(task, account), cfg)
            resumed = False
        else:
            with sqlite_checkpointer(checkpoint) as saver:
                graph = build(llm, ledger=led, sandbox=sandbox, config=config, checkpointer=saver, **kwargs)
                final, resumed = run_or_resume(graph, initial_state(task, account), cfg)
        return result_from_state(AgentState.model_validate(final), led, model=llm.name, thread_id=thread_id,
                                 resumed=resumed)
    finally:
        if owned:
            led.close()


def run_or_resume(graph, start: dict, config: dict) -> tuple[dict, bool]:
    """Run the graph for `config`'s thread from `start`, or — if the thread already has checkpoints — continue it
    from the last finished node (or return its final state if it finished). Checkpoints are written before the next
    node starts (durability "sync"), so a kill loses at most the node that was running."""
    snapshot = graph.get_state(config)
    if snapshot.values:
        if snapshot.values.get("task") != start["task"] or snapshot.values.get("account") != start["account"]:
            raise ValueError(f"thread {config['configurable']['thread_id']!r} of this checkpoint is a run of another "
                             f"task; pick another thread_id (or checkpoint file) for this one")
        if snapshot.next:
            return graph.invoke(None, config, durability="sync"), True
        return snapshot.values, True
    return graph.invoke(start, config, durability="sync"), False


def agent_spend(ledger: Ledger, task_account: str) -> tuple[dict[str, Amounts], dict[str, Amounts]]:
    """(spend by agent + total, spend of every account under the task), from the ledger."""
    accounts: dict[str, Amounts] = {}
    for bal in ledger.accounts():
        if bal.name == task_account or bal.name.startswith(task_account + "/"):
            accounts[bal.name.removeprefix(task_account).lstrip("/") or "total"] = bal.committed
    by_agent = {a: accounts.get(a, Amounts()) for a in AGENT_NAMES}
    by_agent["total"] = accounts.get("total", Amounts())
    return by_agent, {k: v for k, v in accounts.items() if k != "total"}


def result_from_state(state: AgentState, ledger: Ledger, *, model: str, thread_id: str,
                      resumed: bool = False) -> SolveResult:
    selected = state.candidate(state.selected)
    answer = None
    if selected is not None:
        if state.kind == "code":
            answer = program_for(CodeTask.model_validate(state.task).public(), selected.text)
        else:
            answer = selected.text
    by_agent, accounts = agent_spend(ledger, state.account)
    task_id = state.task.get("id") or state.task.get("instance_id")
    return SolveResult(task_id=task_id, kind=state.kind, model=model, thread_id=thread_id, account=state.account,
                       selected=selected, answer=answer, reason=state.stop_reason or "budget",
                       selection=state.selection, spend=by_agent, accounts=accounts, candidates=state.candidates,
                       verdicts=state.verdicts, tests=state.tests, tests_source=state.tests_source,
                       notes=state.notes, resumed=resumed)


def write_predictions(results: Iterable[SolveResult], path: str | Path, *, model_name: str | None = None,
                      append: bool = False) -> Path:
    """Write SWE-bench predictions (one JSON object per line: instance_id, model_name_or_path, model_patch) for
    the repository results; code results are skipped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w") as f:
        for r in results:
            if r.kind == "repo":
                f.write(json.dumps(r.prediction(model_name)) + "\n")
    return path
