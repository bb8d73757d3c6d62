"""Task schemas (code, math, repo) and loaders for the offline benchmarks (HumanEval, GSM8K-100)."""

from .loaders import DatasetMissing, docstring_examples, load_gsm8k, load_humaneval, normalize_number
from .schemas import CodeTask, MathTask, RepoTask

__all__ = ["CodeTask", "DatasetMissing", "MathTask", "RepoTask", "docstring_examples", "load_gsm8k", "load_humaneval",
           "normalize_number"]
