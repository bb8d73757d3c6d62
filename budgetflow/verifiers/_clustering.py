"""Execution clustering (AlphaCode-style): run every candidate on the same inputs and group candidates that behave
identically; the biggest cluster is the likeliest to be right, and one representative per cluster is enough to test.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from pydantic import BaseModel

from ..budget import Account
from ._unit_tests import UnitTestVerifier


def inputs_from_asserts(asserts: Sequence[str], entry_point: str) -> list[str]:
    """The calls `f(...)` inside assert lines (`assert f(1) == 2` → `f(1)`), distinct, in order."""
    calls: list[str] = []
    for text in asserts:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point:
                call = ast.unparse(node)
                if call not in calls:
                    calls.append(call)
                break
    return calls


class Cluster(BaseModel):
    members: list[int]  # candidate indices, in the order given
    behaviour: tuple[str, ...]  # per input: repr of the value, or "!" + the error

    @property
    def size(self) -> int:
        return len(self.members)


def cluster_by_behaviour(verifier: UnitTestVerifier, programs: Sequence[str], inputs: Sequence[str], *,
                         account: Account) -> list[Cluster]:
    """Clusters of programs with identical outputs on `inputs`, biggest first (ties: earliest member first).
    Programs that fail to load form no cluster."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, program in enumerate(programs):
        report = verifier.run(program, inputs, account=account)
        if not report.loaded:
            continue
        behaviour = tuple(o.value if o.passed else "!" + o.error.split(":")[0] for o in report.outcomes)
        groups.setdefault(behaviour, []).append(i)
    clusters = [Cluster(members=m, behaviour=b) for b, m in groups.items()]
    return sorted(clusters, key=lambda c: (-c.size, c.members[0]))
