"""Ready-made LangGraph graphs (codegen, SWE) and the pieces to build your own.

    START ─▶ tester? ─▶ solver ─▶ verifier ─┬─▶ selector ─▶ END
                          ▲                  │
                          └──── another wave ┘   (while unsolved, under the wave cap, and affordable)

The tester is skipped when the task gives its tests. Any node the budget refuses routes to the selector, which
returns the best candidate so far with the reason "budget". With a checkpointer, every finished node is saved
under the run's thread_id: a killed run resumes at the next node without paying again for finished work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.graph import END, START, StateGraph

from ..budget import Account, Ledger
from ..llm import LLM
from ..sandbox import Sandbox
from ..tasks import CodeTask, RepoTask
from ._codegen_nodes import CodeSolver, CodeTester, CodeVerifier
from ._config import AgentConfig
from ._context import AgentContext
from ._routing import (
    route_after_solver,
    route_after_tester,
    route_after_verifier,
    route_start,
)
from ._selector import Selector
from ._state import AgentState
from ._strategies import WaveStrategy
from ._swe_nodes import RepoSolver, RepoTester, RepoVerifier

NODES = ("tester", "solver", "verifier", "selector")


def agent_graph(ctx: AgentContext, nodes: Mapping[str, Any], *, checkpointer=None):
    """Wire tester/solver/verifier/selector nodes (callables: AgentState -> update dict) with the budget-aware
    routing and compile. Swap any node for your own to customise a ready-made graph."""
    missing = [n for n in NODES if n not in nodes]
    if missing:
        raise ValueError(f"agent_graph needs nodes {', '.join(NODES)}; missing {', '.join(missing)}")
    g = StateGraph(AgentState)
    for name in NODES:
        g.add_node(name, nodes[name])
    g.add_conditional_edges(START, route_start(ctx), {"tester": "tester", "solver": "solver"})
    g.add_conditional_edges("tester", route_after_tester, {"solver": "solver", "selector": "selector"})
    g.add_conditional_edges("solver", route_after_solver, {"verifier": "verifier"})
    g.add_conditional_edges("verifier", route_after_verifier(ctx), {"solver": "solver", "selector": "selector"})
    g.add_edge("selector", END)
    # each wave is two steps (solver, verifier); leave room for the tester and the selector
    return g.compile(checkpointer=checkpointer).with_config(recursion_limit=2 * ctx.config.max_waves + 8)


def _context(llm: LLM, ledger: Ledger | None, account: Account | None, sandbox: Sandbox | None,
             config: AgentConfig | None) -> AgentContext:
    if ledger is None:
        if account is None:
            raise ValueError("give the ledger (or an account on it) the graph spends through")
        ledger = account.ledger
    return AgentContext(llm=llm, ledger=ledger, config=config or AgentConfig(), sandbox=sandbox)


def build_codegen_graph(llm: LLM, *, ledger: Ledger | None = None, account: Account | None = None,
                        sandbox: Sandbox | None = None, strategy: str | WaveStrategy = "sample",
                        config: AgentConfig | None = None, checkpointer=None):
    """The codegen graph for CodeTask inputs: strategy `sample` (sample_until_pass in waves) or `best_of_n`, or a
    callable (attempt, k) -> None. Invoke it with `initial_state(task, account)`."""
    ctx = _context(llm, ledger, account, sandbox, config)
    nodes = {"tester": CodeTester(ctx), "solver": CodeSolver(ctx, strategy), "verifier": CodeVerifier(ctx),
             "selector": Selector(ctx)}
    return agent_graph(ctx, nodes, checkpointer=checkpointer)


def build_swe_graph(llm: LLM, *, ledger: Ledger | None = None, account: Account | None = None,
                    sandbox: Sandbox | None = None, config: AgentConfig | None = None, checkpointer=None):
    """The SWE graph for RepoTask inputs: a wave is `config.wave_size` tool-using trajectories in parallel, each
    with `config.attempts` attempts of `config.max_turns` turns. Invoke it with `initial_state(task, account)`."""
    ctx = _context(llm, ledger, account, sandbox, config)
    nodes = {"tester": RepoTester(ctx), "solver": RepoSolver(ctx), "verifier": RepoVerifier(ctx),
             "selector": Selector(ctx)}
    return agent_graph(ctx, nodes, checkpointer=checkpointer)


def initial_state(task: CodeTask | RepoTask, account: Account | str) -> dict:
    """The graph input for `task`, spending on `account` (the task's account; agents get sub-accounts of it)."""
    name = account.name if isinstance(account, Account) else str(account)
    task = task.public()  # the state is what the agents see: never the scorer's hidden parts
    if isinstance(task, CodeTask):
        tests = list(task.visible_tests)
        return {"kind": "code", "task": task.model_dump(mode="json"), "account": name, "tests": tests,
                "tests_source": "given" if tests else "none"}
    if isinstance(task, RepoTask):
        tests = [] if task.hidden_tests else [*task.fail_to_pass, *task.pass_to_pass]
        return {"kind": "repo", "task": task.model_dump(mode="json"), "account": name, "tests": tests,
                "tests_source": "given" if tests else "none"}
    raise TypeError(f"the agent graphs take a CodeTask or a RepoTask, got {type(task).__name__}")
