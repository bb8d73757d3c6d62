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
from .tasks import CodeTask, MathTask, load_gsm8k, load_humaneval
from .verifiers import (
    LogprobJudge,
    TestReport,
    UnitTestVerifier,
    cluster_by_behaviour,
    majority_vote,
    passes_hidden_tests,
    rank_by_generated_tests,
)

__version__ = "0.1.0"

__all__ = [
    "Account", "AccountBalance", "Amounts", "Budget", "BudgetError", "BudgetExceeded", "EntryView", "Ledger",
    "ModelPrice", "PriceBook", "Reservation", "UnpricedModel", "VerifyReport", "__version__",
    "LLM", "Generation", "LLMError", "get_llm",
    "ExecResult", "Limits", "Sandbox", "SandboxError", "SandboxUnavailable", "get_sandbox",
    "AllocationConfig", "BatchResult", "Candidate", "MathResult", "SearchResult", "StepConfig", "allocate", "astar",
    "beam_search", "best_of_n", "majority_of_n", "mcts", "sample_until_pass",
    "CodeTask", "MathTask", "load_gsm8k", "load_humaneval",
    "LogprobJudge", "TestReport", "UnitTestVerifier", "cluster_by_behaviour", "majority_vote", "passes_hidden_tests",
    "rank_by_generated_tests",
]
