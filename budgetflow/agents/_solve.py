"""`solve()`: one call from a task to an answer under a hard budget, through the ready-made graphs, with the spend
of every agent read back from the ledger; `write_predictions()` for SWE-bench-style output."""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..budget import AccountMissing, Budget, Ledger, PriceBook
from ..llm import LLM, get_llm
from ..sandbox import Sandbox
from ..search import Result
from ..tasks import CodeTask, MathTask, RepoTask
from ..verifiers import program_for
from ._checkpoint import sqlite_checkpointer, thread_config
from ._config import AgentConfig
from ._graph_solver import run_graph
from ._strategies import WaveStrategy

DEFAULT_MODEL = "local/qwen2.5-coder-1.5b"
DEFAULT_LEDGER = Path("runs") / "budgetflow.db"


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
          model_options: Mapping | None = None) -> Result:
    """Solve a code task (complete a function) or a repository task (produce a patch) under a hard budget, through
    the ready-made agents' graph; returns the search `Result` (answer: the selected completion or diff; spend by
    agent: tester, solver, verifier, selector and total, read from the ledger).

    budget: a Budget, or a number of US dollars. The run's account (named by `thread_id`) holds the cap; the task's
    account `<thread_id>/<task id>` and its agents' accounts (`.../solver`, `.../tester`, ...) spend under it.
    ledger: a Ledger, or the path of a SQLite ledger (default: beside the checkpoint, CHECKPOINT.ledger.db, or
    ./runs/budgetflow.db without one). Resuming a checkpointed thread needs the ledger it started on.
    checkpoint: a SQLite file for LangGraph checkpoints. Calling solve() again with the same checkpoint, ledger and
    thread_id continues a run that was killed (finished nodes are not paid for again) or returns the finished one.
    model: a name for get_llm (local models need a price: `prices.set("local/...", cpu_hour=...)`) or an LLM.
    """
    task = coerce_task(task)
    if isinstance(budget, (int, float)) and not isinstance(budget, bool):
        budget = Budget(usd=float(budget))
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget or a number of dollars, got {type(budget).__name__}")
    thread_id = thread_id or f"{task.task_id}-{uuid.uuid4().hex[:8]}"
    llm = _llm(model, prices, model_options)
    led, owned = _ledger(ledger, checkpoint)
    try:
        run = _run_account(led, thread_id, budget, checkpoint)
        account = run.child(f"{thread_id}/{task.task_id}")
        res = run_graph(llm, task.public(), account, sandbox=sandbox, config=config, strategy=strategy,
                        checkpoint=checkpoint, thread_id=thread_id)
        details = {**res.details, "model": llm.name, "thread_id": thread_id}
        if isinstance(task, CodeTask) and res.answer is not None:
            details["program"] = program_for(task.public(), res.answer)  # the whole function, ready to run
        return res.model_copy(update={"details": details})
    finally:
        if owned:
            led.close()


def prediction(result: Result, model_name: str | None = None) -> dict:
    """The SWE-bench predictions.jsonl record of a repository task's result."""
    name = model_name or str(result.details.get("model", "budgetflow")).split("@")[0]  # a URL is no part of a name
    return {"instance_id": result.task_id, "model_name_or_path": name, "model_patch": result.answer or ""}


def write_predictions(results: Iterable[Result], path: str | Path, *, model_name: str | None = None,
                      append: bool = False) -> Path:
    """Write SWE-bench predictions (one JSON object per line: instance_id, model_name_or_path, model_patch) for
    the repository results; code results are skipped."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w") as f:
        for r in results:
            if r.kind == "repo":
                f.write(json.dumps(prediction(r, model_name)) + "\n")
    return path
