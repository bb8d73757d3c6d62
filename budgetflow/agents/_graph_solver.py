"""The one way a ready-made graph is run on a task — by `solve()` and, as the registered solver `graph`, by
`budgetflow run` — checkpointed when given a checkpoint file, and read back as a search `Result`."""

from __future__ import annotations

import json
from pathlib import Path

from ..budget import Account, Amounts, SpendIndex
from ..llm import LLM
from ..sandbox import Sandbox
from ..search import Candidate, Resources, Result, checked_confidence, solver
from ..tasks import CodeTask, RepoTask, kind_of
from ._checkpoint import sqlite_checkpointer, thread_config
from ._config import AgentConfig
from ._graphs import build_codegen_graph, build_swe_graph, initial_state
from ._state import AgentState
from ._strategies import WaveStrategy

AGENT_NAMES = ("tester", "solver", "verifier", "selector")


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


def run_graph(llm: LLM, task: CodeTask | RepoTask, account: Account, *, sandbox: Sandbox | None = None,
              config: AgentConfig | None = None, strategy: str | WaveStrategy = "sample",
              checkpoint: str | Path | None = None, thread_id: str | None = None) -> Result:
    """Run the codegen or SWE graph for `task` (its public view: hand it `task.public()`) spending on `account`;
    with `checkpoint`, resume the thread (default: the account's name) where a killed run stopped."""
    kind = kind_of(task)
    build = {"code": build_codegen_graph, "repo": build_swe_graph}.get(kind)
    if build is None:
        raise TypeError(f"the agent graphs take code and repo tasks, not {kind} tasks")
    kwargs = {"strategy": strategy} if kind == "code" else {}
    common = dict(ledger=account.ledger, sandbox=sandbox, config=config, **kwargs)
    start, cfg = initial_state(task, account), thread_config(thread_id or account.name)
    if checkpoint is None:
        final, resumed = build(llm, **common).invoke(start, cfg), False
    else:
        with sqlite_checkpointer(checkpoint) as saver:
            final, resumed = run_or_resume(build(llm, checkpointer=saver, **common), start, cfg)
    return result_from_state(AgentState.model_validate(final), account, resumed=resumed)


def result_from_state(state: AgentState, account: Account, *, resumed: bool = False) -> Result:
    """A finished graph's state as a `Result`: the selected candidate is the answer, every candidate carries its
    verdict, and the spend by agent is read from the ledger."""
    candidates = [Candidate(text=c.text, score=c.score, passed_visible=c.passed_visible, verdict=state.verdicts.get(c.id),
                            id=c.id, source=c.source, meta={**c.meta, "wave": c.wave}) for c in state.candidates]
    best = next((c for c in candidates if c.id == state.selected), None)
    if best is not None and best.verdict is not None:
        best = best.model_copy(update={"passed_visible": best.verdict.passed})
    balances = account.ledger.accounts()
    spend = SpendIndex(balances).parts(account.name)
    for agent in AGENT_NAMES:
        spend.setdefault(agent, Amounts())
    under = {b.name.removeprefix(account.name + "/"): b.committed for b in balances
             if b.name.startswith(account.name + "/")}
    task_id = state.task.get("id") or state.task.get("instance_id")
    # confidence: the selected candidate's test evidence × the share of verified candidates that do as well on the
    # same tests (given or generated) — whichever way the selector chose it
    confidence = checked_confidence(best.verdict if best else None, [c.verdict for c in candidates if c.verdict],
                                    answered=best is not None)
    return Result(task_id=task_id, kind=state.kind, reason=state.stop_reason or "budget", best=best,
                  answer=best.text if best is not None else None, confidence=confidence, candidates=candidates,
                  samples=len(candidates),
                  spend=spend, account=account.name, notes=list(state.notes), resumed=resumed,
                  log=[f"tests: {state.tests_source} ({len(state.tests)})", f"selection: {state.selection}"]
                  + [f"candidate {c.id} ({c.source}): " + (f"{c.verdict.passed_checks}/{c.verdict.checks} tests"
                                                            if c.verdict else "not verified") for c in candidates]
                  # one machine-readable line: the run's records read the agents' measurements from it
                  + ([f"metrics: {json.dumps(state.metrics, sort_keys=True)}"] if state.metrics else []),
                  details={"selection": state.selection, "tests": list(state.tests),
                           "tests_source": state.tests_source, "wave": state.wave, "accounts": under,
                           "metrics": state.metrics, "regression_tests": len(state.regression_tests)})


class GraphSettings(AgentConfig):
    """The graph's settings (AgentConfig); `strategy` is how the codegen solver samples each wave."""

    strategy: str = "sample"


@solver("graph", kinds=("code", "repo"), settings=GraphSettings)
class GraphSolver:
    """The agents' graph (tester → solver ⇄ verifier → selector) as a solver; resumes from `resources.checkpoint`."""

    def __init__(self, settings: GraphSettings):
        self.settings = settings

    def solve(self, task: CodeTask | RepoTask, resources: Resources) -> Result:
        config = AgentConfig(**{k: getattr(self.settings, k) for k in AgentConfig.model_fields})
        if resources.sandbox_usd_per_cpu_second and not config.usd_per_cpu_second:
            config = config.model_copy(update={"usd_per_cpu_second": resources.sandbox_usd_per_cpu_second})
        return run_graph(resources.llm, task, resources.account, sandbox=resources.sandbox, config=config,
                         strategy=self.settings.strategy, checkpoint=resources.checkpoint)
