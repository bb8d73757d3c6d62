"""Fixed random subsets of a benchmark, and the confidence interval a subset's accuracy carries.

On this CPU a full GSM8K-100 or HumanEval-164 sweep of every method takes many hours; a subset drawn with a fixed
seed is the same for every method and every run, so methods compare on the same problems, and the Wilson interval
says how far the subset's accuracy may sit from the full benchmark's."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def fixed_subset(tasks: Sequence[T], size: int | None, seed: int = 0) -> list[T]:
    """`size` tasks drawn without replacement by `seed`, kept in the benchmark's order (all when size is None)."""
    if size is None or size >= len(tasks):
        return list(tasks)
    picked = set(random.Random(seed).sample(range(len(tasks)), size))
    return [t for i, t in enumerate(tasks) if i in picked]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default): sound at small n and at 0 or n successes."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
