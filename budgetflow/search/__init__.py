"""Budget-aware search: the `Solver` extension point (one Protocol, one `Result`, a registry), and the strategies
that register on it — repeated sampling with early stop, best-of-N, cross-task allocation, and step-level beam
search, MCTS and A*-decoding with node-level expansion budgets. Every strategy spends through the ledger and is
anytime: when the budget runs out it answers with the best it has."""

from ._confidence import checked_confidence, visible_test_evidence, vote_confidence
from ._protocol import (
    Candidate,
    NoSettings,
    Resources,
    Result,
    SettingsError,
    Solver,
    StopReason,
    make_solver,
    solver,
    solver_names,
    solver_settings,
    solvers,
)
from ._sampling import (  # noqa: I001 (the strategies register themselves on import)
    BestOfNSettings,
    CodeAttempt,
    SampleSettings,
    SamplingParams,
    best_of_n,
    sample_until_pass,
)
from ._allocation import AllocationConfig, BatchResult, allocate, wave_gain
from ._cascade import MAX_STAGES, CascadeSettings, CascadeStage, parse_stages
from ._cascade_learn import ConfigStats, LearnedCascade, evaluate_order, learn_cascade, observation_from
from ._steps import Node, StepConfig, StepSearch, expansion_budget, is_final
from ._thinking import ThinkSettings, think
from ._plan_budget import PlanBudgetSettings, Schedule, allocate_budget, parse_plan, plan_and_budget
from ._tree import AStarSettings, BeamSettings, MajoritySettings, MCTSSettings, astar, beam_search, majority_of_n, mcts

__all__ = [
    "AStarSettings", "AllocationConfig", "BatchResult", "BeamSettings", "BestOfNSettings", "Candidate", "CodeAttempt",
    "CascadeSettings", "CascadeStage", "ConfigStats", "LearnedCascade", "MAX_STAGES", "evaluate_order",
    "learn_cascade", "observation_from", "parse_stages",
    "MCTSSettings", "MajoritySettings", "NoSettings", "Node", "Resources", "Result", "SampleSettings",
    "SamplingParams", "SettingsError", "Solver", "StepConfig", "StepSearch", "StopReason", "allocate", "astar",
    "beam_search", "best_of_n", "checked_confidence", "expansion_budget", "is_final", "majority_of_n",
    "make_solver", "mcts",
    "sample_until_pass", "solver", "solver_names", "solver_settings", "solvers", "visible_test_evidence",
    "vote_confidence", "wave_gain",
    # thinking-token budgets: budget forcing and Plan-and-Budget
    "PlanBudgetSettings", "Schedule", "ThinkSettings", "allocate_budget", "parse_plan", "plan_and_budget", "think",
]
