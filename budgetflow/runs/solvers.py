"""Per-task solvers: how one task is attempted on its account, by kind and strategy.

    code  sample (default: search.sample_until_pass, early stop on the visible tests) | best-of-n | graph
          (the agents' codegen graph) | allocate (the `allocate` policy: search.allocate across a chunk of tasks)
    math  majority (default: search.majority_of_n) | beam | mcts | astar
    repo  graph (the agents' SWE graph)

Solvers see the task's public view only (no hidden tests; a math task without its answer). Scoring happens after, in
scoring.py, on an account of its own.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from ..budget import Account
from ..search import SamplingParams, SearchResult
from ..tasks import CodeTask, MathTask, RepoTask
from ..verifiers.code import program_for
from .config import RunConfig

STRATEGIES: dict[str, tuple[str, ...]] = {
    "code": ("sample", "best-of-n", "graph", "allocate"),
    "math": ("majority", "beam", "mcts", "astar"),
    "repo": ("graph",),
}
DEFAULTS = {"code": "sample", "math": "majority", "repo": "graph"}


class StrategyError(ValueError):
    """A strategy that no task of the run can use, or one whose parts are not installed."""


def strategy_for(config: RunConfig, kind: str) -> str:
    """The strategy a task of `kind` runs with: --strategy where it applies to the kind, else the kind's default."""
    if config.strategy in STRATEGIES[kind]:
        return config.strategy
    if kind == "code" and config.policy == "allocate":
        return "allocate"
    return DEFAULTS[kind]


def check_strategy(config: RunConfig, kinds: set[str]) -> None:
    """Before anything is spent: the strategy fits some task of the run, and what it needs is importable."""
    if config.strategy is not None and not any(config.strategy in STRATEGIES[k] for k in kinds):
        valid = ", ".join(f"{k}: {'|'.join(STRATEGIES[k])}" for k in sorted(kinds))
        raise StrategyError(f"--strategy {config.strategy} fits no task of this source ({valid})")
    if config.strategy == "allocate" and config.policy != "allocate":
        raise StrategyError("--strategy allocate is the allocate policy: drop --policy equal")
    if config.policy == "allocate" and "code" in kinds and strategy_for(config, "code") != "allocate":
        raise StrategyError("the allocate policy spends by sampling waves (search.allocate) across code tasks; use it "
                            "with the default --strategy sample (or --strategy allocate)")
    if any(strategy_for(config, k) == "graph" for k in kinds):
        try:
            from .. import agents  # noqa: F401
        except ImportError as err:
            raise StrategyError(f"--strategy graph (and repository tasks) need budgetflow.agents and LangGraph, "
                                f"which cannot be imported here: {err}") from None


class Outcome(BaseModel):
    """What a solver selected, before scoring."""

    reason: str
    selected: str | None = None  # completion (code), answer (math), unified diff (repo)
    solved_visible: bool | None = None
    samples: int = 0
    notes: list[str] = Field(default_factory=list)
    candidates: list[dict] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)


class RecordingVerifier:
    """Wraps the unit-test verifier to keep every candidate a strategy checks (by the account it was checked on), so
    a task's candidates file holds all of them, not only the selected one."""

    def __init__(self, inner):
        self.inner = inner
        self._lock = threading.Lock()
        self._seen: dict[str, list[dict]] = {}

    def run(self, program: str, tests, *, account: Account):
        report = self.inner.run(program, tests, account=account)
        entry = {"program": program, "visible": f"{report.passed}/{report.total}",
                 "passed_visible": report.all_passed, "loaded": report.loaded}
        if report.load_error:
            entry["error"] = report.load_error[:300]
        with self._lock:
            self._seen.setdefault(account.name, []).append(entry)
        return report

    def take(self, task_account: str) -> list[dict]:
        """Pop what was checked on `task_account` and the accounts under it."""
        with self._lock:
            keys = [k for k in self._seen if k == task_account or k.startswith(task_account + "/")]
            return [e for k in keys for e in self._seen.pop(k)]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def sampling_params(config: RunConfig) -> SamplingParams:
    return SamplingParams(max_tokens=config.search.max_tokens, temperature=config.search.temperature)


def outcome_from_search(res: SearchResult, task: CodeTask, checked: list[dict]) -> Outcome:
    selected = res.best.text if res.best is not None else None
    program = program_for(task, selected) if selected is not None else None
    candidates, marked = [], False
    for c in checked:  # the first candidate with the selected program (identical samples are common)
        hit = not marked and c["program"] == program
        marked |= hit
        candidates.append({**c, "selected": hit})
    if program is not None and not marked:
        candidates.append({"program": program, "selected": True, "visible": res.best.meta.get("visible", "?"),
                           "passed_visible": res.best.passed_visible})
    log = [f"sample {i + 1}: visible tests {c['visible']}" + (f" ({c['error']})" if c.get("error") else "")
           for i, c in enumerate(checked)]
    return Outcome(reason=res.reason, selected=selected, solved_visible=res.solved_visible, samples=res.samples,
                   notes=list(res.notes), candidates=candidates, log=log)


# ------------------------------------------------------------------ code


def solve_code_sample(ctx, task: CodeTask, account: Account) -> Outcome:
    from ..search import sample_until_pass

    s = ctx.config.search
    res = sample_until_pass(ctx.llm, task.public(), ctx.verifier, account=account, max_samples=s.max_samples,
                            wave_size=s.wave_size, params=sampling_params(ctx.config))
    return outcome_from_search(res, task, ctx.verifier.take(account.name))


def solve_code_best_of_n(ctx, task: CodeTask, account: Account) -> Outcome:
    from ..search import best_of_n

    res = best_of_n(ctx.llm, task.public(), ctx.verifier, account=account, n=ctx.config.search.max_samples,
                    params=sampling_params(ctx.config))
    return outcome_from_search(res, task, ctx.verifier.take(account.name))


def _agent_config(ctx, kind: str):
    from ..agents import AgentConfig

    s = ctx.config.search
    usd_cpu = ctx.config.sandbox_cpu_hour / 3600
    if kind == "repo":
        return AgentConfig(usd_per_cpu_second=usd_cpu)
    wave = s.wave_size if s.wave_size > 1 else min(4, s.max_samples)
    return AgentConfig(wave_size=wave, max_waves=max(1, math.ceil(s.max_samples / wave)),
                       params=sampling_params(ctx.config), usd_per_cpu_second=usd_cpu)


def _run_graph(ctx, task: CodeTask | RepoTask, account: Account):
    """Run (or, with a checkpoint file, resume) the agents' graph for the task on its account."""
    from ..agents import (
        AgentState,
        build_codegen_graph,
        build_swe_graph,
        initial_state,
        result_from_state,
        run_or_resume,
        sqlite_checkpointer,
        thread_config,
    )

    kind = "code" if isinstance(task, CodeTask) else "repo"
    build = build_codegen_graph if kind == "code" else build_swe_graph
    kwargs = {"strategy": "sample"} if kind == "code" else {}
    public = task.public() if isinstance(task, CodeTask) else task
    start, cfg = initial_state(public, account), thread_config(account.name)
    common = dict(ledger=ctx.ledger, sandbox=ctx.sandbox, config=_agent_config(ctx, kind), **kwargs)
    if ctx.checkpoint:
        with sqlite_checkpointer(ctx.checkpoint) as saver:
            graph = build(ctx.llm, checkpointer=saver, **common)
            final, resumed = run_or_resume(graph, start, cfg)
    else:
        final, resumed = build(ctx.llm, **common).invoke(start, cfg), False
    res = result_from_state(AgentState.model_validate(final), ctx.ledger, model=ctx.llm.name,
                            thread_id=account.name, resumed=resumed)
    selected_id = res.selected.id if res.selected else None
    candidates = [{**c.model_dump(mode="json"), "selected": c.id == selected_id,
                   "verdict": res.verdicts[c.id].model_dump(mode="json") if c.id in res.verdicts else None}
                  for c in res.candidates]
    log = [f"tests: {res.tests_source} ({len(res.tests)})", f"selection: {res.selection}"]
    log += [f"candidate {c['id']} ({c['source']}): "
            + (f"{c['verdict']['passed']}/{c['verdict']['total']} tests" if c["verdict"] else "not verified")
            for c in candidates]
    if resumed:
        log.append("resumed from the graph's checkpoint")
    return res, candidates, log


def solve_code_graph(ctx, task: CodeTask, account: Account) -> Outcome:
    res, candidates, log = _run_graph(ctx, task, account)
    return Outcome(reason=res.reason, selected=res.selected.text if res.selected else None,
                   solved_visible=res.solved_visible, samples=len(res.candidates), notes=list(res.notes),
                   candidates=candidates, log=log)


# ------------------------------------------------------------------ repo


def solve_repo_graph(ctx, task: RepoTask, account: Account) -> Outcome:
    res, candidates, log = _run_graph(ctx, task, account)
    return Outcome(reason=res.reason, selected=res.patch or None, solved_visible=res.solved_visible,
                   samples=len(res.candidates), notes=list(res.notes), candidates=candidates, log=log)


# ------------------------------------------------------------------ math


def solve_math(ctx, task: MathTask, account: Account, strategy: str) -> Outcome:
    from ..search import astar, beam_search, majority_of_n, mcts

    public = task.model_copy(update={"answer": ""})  # the answer is for scoring only
    gen = account.child(f"{account.name}/generate")
    s = ctx.config.search
    if strategy == "majority":
        wave = s.wave_size if s.wave_size > 1 else min(4, s.max_samples)
        res = majority_of_n(ctx.llm, public, account=gen, n=s.max_samples, max_tokens=s.max_tokens,
                            temperature=s.temperature, wave_size=wave)
    else:
        search = {"beam": beam_search, "mcts": mcts, "astar": astar}[strategy]
        res = search(ctx.llm, public, account=gen)
    candidates = [{"answer": res.answer, "solution": res.solution, "selected": True}]
    log = [f"{strategy}: answer {res.answer!r} after {res.steps} samples/steps, {res.expansions} expansions, "
           f"stopped: {res.reason}"]
    return Outcome(reason=res.reason, selected=res.answer, samples=res.steps, candidates=candidates, log=log)


def solver_for(config: RunConfig, kind: str) -> Callable[[Any, Any, Account], Outcome]:
    strategy = strategy_for(config, kind)
    if kind == "code":
        return {"sample": solve_code_sample, "best-of-n": solve_code_best_of_n, "graph": solve_code_graph,
                "allocate": solve_code_sample}[strategy]
    if kind == "math":
        return lambda ctx, task, account: solve_math(ctx, task, account, strategy)
    return solve_repo_graph
