"""Agents: LangGraph graphs of a solver, a tester, a verifier and a selector that spend test-time compute under a
hard budget, checkpointed so a killed run resumes without paying twice.

    from budgetflow.agents import solve
    result = solve(task, model=llm, budget=0.05)            # ready-made, one call

    graph = build_codegen_graph(llm, ledger=ledger, checkpointer=saver)   # or build and run the graph yourself
    graph.invoke(initial_state(task, account), {"configurable": {"thread_id": "t1"}})
"""

from ._actions import PROTOCOL, Action, parse_action
from ._checkpoint import sqlite_checkpointer, thread_config
from ._codegen_nodes import CodeSolver, CodeTester, CodeVerifier
from ._config import AgentConfig
from ._context import AgentContext, anytime, next_wave_estimate
from ._graphs import agent_graph, build_codegen_graph, build_swe_graph, initial_state
from ._routing import affordable, route_after_verifier, route_start
from ._selector import Selector, parse_choice, rank, selection_prompt
from ._graph_solver import AGENT_NAMES, GraphSettings, GraphSolver, result_from_state, run_graph, run_or_resume
from ._solve import coerce_task, prediction, solve, write_predictions
from ._state import AgentState, CandidateRecord, counted_verdict
from ._strategies import STRATEGIES, WaveStrategy, best_of_n_wave, sample_wave
from ._swe_nodes import RepoSolver, RepoTester, RepoVerifier
from ._tools import ToolBox, run_command
from ._trajectory import Trajectory, TrajectoryOutcome
from ._workcopy import ToolError, WorkingCopy

__all__ = [
    "PROTOCOL",
    "AGENT_NAMES",
    "GraphSettings",
    "GraphSolver",
    "STRATEGIES",
    "Action",
    "AgentConfig",
    "AgentContext",
    "AgentState",
    "CandidateRecord",
    "CodeSolver",
    "CodeTester",
    "CodeVerifier",
    "RepoSolver",
    "RepoTester",
    "RepoVerifier",
    "Selector",
    "ToolBox",
    "ToolError",
    "Trajectory",
    "TrajectoryOutcome",
    "WaveStrategy",
    "WorkingCopy",
    "affordable",
    "agent_graph",
    "anytime",
    "best_of_n_wave",
    "build_codegen_graph",
    "build_swe_graph",
    "coerce_task",
    "counted_verdict",
    "initial_state",
    "next_wave_estimate",
    "parse_action",
    "parse_choice",
    "prediction",
    "rank",
    "result_from_state",
    "route_after_verifier",
    "route_start",
    "run_graph",
    "run_command",
    "run_or_resume",
    "sample_wave",
    "selection_prompt",
    "solve",
    "sqlite_checkpointer",
    "thread_config",
    "write_predictions",
]
