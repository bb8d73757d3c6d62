"""Budget-aware search: repeated sampling with early stop, cross-task allocation, and step-level beam search, MCTS
and A*-decoding with node-level expansion budgets. Every strategy spends through the ledger and is anytime."""

from .allocation import AllocationConfig, BatchResult, allocate, wave_gain
from .result import Candidate, SearchResult, Spend, SpendTracker
from .sampling import CodeAttempt, SamplingParams, best_of_n, sample_until_pass
from .steps import MathResult, Node, StepConfig, StepSearch, expansion_budget
from .tree import astar, beam_search, majority_of_n, mcts

__all__ = [
    "AllocationConfig", "BatchResult", "Candidate", "CodeAttempt", "MathResult", "Node", "SamplingParams",
    "SearchResult", "Spend", "SpendTracker", "StepConfig", "StepSearch", "allocate", "astar", "beam_search",
    "best_of_n", "expansion_budget", "majority_of_n", "mcts", "sample_until_pass", "wave_gain",
]
