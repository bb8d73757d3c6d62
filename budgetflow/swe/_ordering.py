"""The order in which candidate mutations are tried: the likeliest to make a good task first, varied by seed."""

from __future__ import annotations

import random
import re

from ._mutations import Mutation, find_mutations


def order_mutations(modules: list[str], files: dict[str, bytes], tests: list[str], seed: int) -> list[Mutation]:
    """Candidates in trying order: functions the tests mention first, kinds interleaved, shuffled by ``seed``."""
    test_text = b"\n".join(files[t] for t in tests).decode("utf-8", "replace")
    words = set(re.findall(r"[A-Za-z_]\w*", test_text))
    rng = random.Random(seed)
    mentioned: dict[str, list[Mutation]] = {}
    others: dict[str, list[Mutation]] = {}
    for path in modules:
        for m in find_mutations(path, files[path]):
            short = m.function.rsplit(".", 1)[-1]
            target = mentioned if (short in words and not short.startswith("__")) else others
            target.setdefault(m.kind, []).append(m)
    ordered: list[Mutation] = []
    for group in (mentioned, others):
        ordered += _interleave(group, rng)
    return ordered


def _interleave(by_kind: dict[str, list[Mutation]], rng: random.Random) -> list[Mutation]:
    """Round robin over the kinds (each shuffled); a function's second and later mutants go to the end."""
    kinds = sorted(by_kind)
    for k in kinds:
        rng.shuffle(by_kind[k])
    rng.shuffle(kinds)
    seen_funcs: dict[str, int] = {}
    queues = [list(by_kind[k]) for k in kinds]
    ordered: list[Mutation] = []
    deferred: list[Mutation] = []
    while any(queues):
        for q in queues:
            if q:
                m = q.pop()
                key = f"{m.path}:{m.function}"
                if seen_funcs.get(key, 0) >= 1:
                    deferred.append(m)
                    continue
                seen_funcs[key] = seen_funcs.get(key, 0) + 1
                ordered.append(m)
    return ordered + deferred
