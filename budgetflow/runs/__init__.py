"""Budget-audited batch runs: many tasks under one hard budget, each task on its own ledger account, every result
recorded the moment it finishes, resumable after a kill, on local threads or a Ray cluster, with an HTML report.

    budgetflow run humaneval --model local/qwen2.5-coder-1.5b --budget-usd 0.05 --limit 20 --out runs/demo

    from budgetflow.runs import prepare_run, run_batch
    config, tasks, notes = prepare_run(source="humaneval", model="local/qwen2.5-coder-1.5b", budget_usd=0.05,
                                       limit=20, out="runs/demo")
    summary = run_batch(config, tasks)
"""

from .config import RunConfig, RunConfigError, SearchSettings, load_config
from .executor_ray import RayUnavailable
from .policy import Job, Planner
from .records import JobResult, TaskArtifacts, TaskRecord
from .report import build_report
from .runner import RunStartError, RunSummary, prepare_run, run_batch
from .solving import StrategyError, known_strategies, solver_help
from .sources import BUILTIN, SourceError, load_source
from .store import RunDir

__all__ = [
    "BUILTIN", "Job", "JobResult", "Planner", "RayUnavailable", "RunConfig", "RunConfigError", "RunDir",
    "RunStartError", "RunSummary",
    "SearchSettings", "SourceError", "StrategyError", "TaskArtifacts", "TaskRecord", "build_report", "load_config",
    "known_strategies", "load_source", "prepare_run", "run_batch", "solver_help",
]
