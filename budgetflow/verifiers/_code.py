"""Turning a model's completion of a function prompt into a program."""

from __future__ import annotations

from ..tasks import CodeTask


def trim_completion(text: str) -> str:
    """Keep the function body: cut at the first non-indented, non-blank line (the model moving on to example
    calls, prints, markdown fences or another definition)."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.strip() and not line[0].isspace():
            break
        kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


def program_for(task: CodeTask, completion: str) -> str:
    """The candidate program: the task's prompt (signature, docstring, imports) followed by the trimmed body."""
    return task.prompt + trim_completion(completion)
