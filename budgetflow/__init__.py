"""budgetflow: agentic, cost-controlled LLM workflows under a budget that is never exceeded."""

from .budget import (
    Account,
    AccountBalance,
    Amounts,
    Budget,
    BudgetError,
    BudgetExceeded,
    EntryView,
    Ledger,
    ModelPrice,
    PriceBook,
    Reservation,
    UnpricedModel,
    VerifyReport,
)
from .llm import LLM, Generation, LLMError, get_llm
from .sandbox import ExecResult, Limits, Sandbox, SandboxError, SandboxUnavailable, get_sandbox
from .search import (
    AllocationConfig,
    BatchResult,
    Candidate,
    MathResult,
    SearchResult,
    StepConfig,
    allocate,
    astar,
    beam_search,
    best_of_n,
    majority_of_n,
    mcts,
    sample_until_pass,
)
from .tasks import CodeTask, MathTask, RepoTask, load_gsm8k, load_humaneval, load_quixbugs, load_repo_task
from .verifiers import (
    LogprobJudge,
    TestReport,
    RepoTestReport,
    RepoTestRunner,
    UnitTestVerifier,
    cluster_by_behaviour,
    majority_vote,
    passes_hidden_tests,
    rank_by_generated_tests,
)

__version__ = "0.1.0"

# agents, SWE tools and batch runs pull in LangGraph and matplotlib (~1-2 s to import): loaded on first use
_AGENTS = ("AgentConfig", "SolveResult", "build_codegen_graph", "build_swe_graph", "solve", "write_predictions")
_SWE = ("make_tasks",)
_RUNS = ("RunConfig", "RunSummary", "TaskRecord", "build_report", "prepare_run", "run_batch")


def __getattr__(name: str):
    if name in _AGENTS:
        from . import agents

        return getattr(agents, name)
    if name in _SWE:
        from . import swe

        return getattr(swe, name)
    if name in _RUNS:
        from . import runs

        return getattr(runs, name)
    raise AttributeError(f"module 'budgetflow' has no attribute {name!r}")


__all__ = [
    "Account", "AccountBalance", "Amounts", "Budget", "BudgetError", "BudgetExceeded", "EntryView", "Ledger",
    "ModelPrice", "PriceBook", "Reservation", "UnpricedModel", "VerifyReport", "__version__",
    "LLM", "Generation", "LLMError", "get_llm",
    "ExecResult", "Limits", "Sandbox", "SandboxError", "SandboxUnavailable", "get_sandbox",
    "AllocationConfig", "BatchResult", "Candidate", "MathResult", "SearchResult", "StepConfig", "allocate", "astar",
    "beam_search", "best_of_n", "majority_of_n", "mcts", "sample_until_pass",
    "CodeTask", "MathTask", "RepoTask", "load_gsm8k", "load_humaneval", "load_quixbugs", "load_repo_task",
    "LogprobJudge", "RepoTestReport", "RepoTestRunner", "TestReport", "UnitTestVerifier", "cluster_by_behaviour", "majority_vote", "passes_hidden_tests",
    "rank_by_generated_tests",
    *_AGENTS, *_SWE, *_RUNS,
]
