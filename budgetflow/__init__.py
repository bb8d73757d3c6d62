"""budgetflow: agentic, cost-controlled LLM workflows under a budget that is never exceeded.

The nouns a user starts from are here; everything else lives in the subpackages (`budgetflow.budget`, `.llm`,
`.sandbox`, `.tasks`, `.verifiers`, `.search`, `.agents`, `.runs`), each with its own `__all__`.

    from budgetflow import Budget, Ledger, PriceBook, get_llm, solve
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .budget import Budget, BudgetError, BudgetExceeded, Ledger, PriceBook, UnpricedModel
from .llm import LLM, LLMError, get_llm
from .sandbox import Limits, Sandbox, get_sandbox
from .search import Resources, Result, Solver, solver, solvers
from .tasks import CodeTask, MathTask, RepoTask, Task
from .verifiers import Verdict, Verifier, verifier, verifiers

if TYPE_CHECKING:  # loaded on first use: the agents pull in LangGraph (~1-2 s to import)
    from .agents import solve

__version__ = "0.2.0"


def __getattr__(name: str):
    if name == "solve":
        from .agents import solve

        return solve
    raise AttributeError(f"module 'budgetflow' has no attribute {name!r}")


__all__ = [
    "Budget", "BudgetError", "BudgetExceeded", "CodeTask", "LLM", "LLMError", "Ledger", "Limits", "MathTask",
    "PriceBook", "RepoTask", "Resources", "Result", "Sandbox", "Solver", "Task", "UnpricedModel", "Verdict",
    "Verifier", "__version__", "get_llm", "get_sandbox", "solve", "solver", "solvers", "verifier", "verifiers",
]
