"""Budget-audited batch runs: many tasks under one hard budget, each task on its own ledger account, every result
recorded the moment it finishes, resumable after a kill, on local threads or a Ray cluster, with an HTML report.

    budgetflow run humaneval --model local/qwen2.5-coder-1.5b --budget-usd 0.05 --limit 20 --out runs/demo

    from budgetflow.runs import prepare_run, run_batch
    config, tasks, notes = prepare_run(source="humaneval", model="local/qwen2.5-coder-1.5b", budget_usd=0.05,
                                       limit=20, out="runs/demo")
    summary = run_batch(config, tasks)
"""

from ._config import RunConfig, RunConfigError, SearchSettings, load_config
from ._executor_ray import RayUnavailable
from ._policy import Job, Planner
from ._pricing import book_from, resolve_prices
from ._records import JobResult, TaskArtifacts, TaskRecord
from ._report import build_report
from ._runner import RunStartError, RunSummary, prepare_run, run_batch
from ._selective import Outcome, Selective, abstains, risk_coverage, run_selective
from ._solving import StrategyError, known_strategies, solver_help
from ._sources import BUILTIN, SourceError, load_source
from ._store import RunDir

__all__ = [
    "BUILTIN", "Job", "JobResult", "Outcome", "Planner", "RayUnavailable", "RunConfig", "RunConfigError", "RunDir",
    "RunStartError", "RunSummary", "Selective", "abstains", "risk_coverage", "run_selective",
    "SearchSettings", "SourceError", "StrategyError", "TaskArtifacts", "TaskRecord", "build_report", "load_config",
    "known_strategies", "load_source", "prepare_run", "run_batch", "solver_help", "book_from", "resolve_prices",
]
