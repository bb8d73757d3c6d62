"""Tasks from a JSONL file: one JSON object per line, validated with pydantic before anything runs.

    {"kind": "code", "id": "add", "prompt": "def add(a, b):\\n    \\"\\"\\"Sum.\\"\\"\\"\\n", "entry_point": "add",
     "visible_tests": ["assert add(1, 2) == 3"], "hidden_tests": "assert add(2, 2) == 4"}
    {"kind": "math", "id": "apples", "question": "Tom has 3 apples and buys 4 more. How many?", "answer": 7}

Code: `visible_tests` (asserts) may guide selection; `hidden_tests` (a test program, or a list of asserts joined into
one) are for scoring only. Math: `answer` is a number (or a string holding one). Blank lines and lines starting with
`#` are skipped. Every error names the file, the line number and the field, e.g.
`tasks.jsonl:3: field 'entry_point': Field required`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, ValidationInfo, field_validator

from ._loaders import normalize_number
from ._schemas import CodeTask, MathTask


class TaskFileError(ValueError):
    """A task file cannot be read or a line of it is not a valid task; the message names the line and field."""

    def __init__(self, path: str | os.PathLike[str], line: int | None, message: str):
        self.path, self.line = str(path), line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


class CodeLine(BaseModel):
    """A code task line."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["code"]
    id: str = Field(min_length=1, max_length=150)
    prompt: str = Field(min_length=1)
    entry_point: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    visible_tests: list[str] = Field(default_factory=list)
    hidden_tests: str | list[str] = ""

    @field_validator("hidden_tests")
    @classmethod
    def _join(cls, value: str | list[str]) -> str:
        return "\n".join(value) + "\n" if isinstance(value, list) and value else (value or "")

    @field_validator("entry_point")
    @classmethod
    def _entry_point_defined(cls, value: str, info: ValidationInfo) -> str:
        prompt = info.data.get("prompt")
        if prompt is not None and not re.search(rf"\bdef\s+{re.escape(value)}\s*\(", prompt):
            raise ValueError(f"{value!r} is not defined by the prompt (expected `def {value}(` in it)")
        return value

    def task(self) -> CodeTask:
        return CodeTask(id=self.id, prompt=self.prompt, entry_point=self.entry_point,
                        visible_tests=tuple(self.visible_tests), hidden_tests=self.hidden_tests)


class MathLine(BaseModel):
    """A math word-problem line."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["math"]
    id: str = Field(min_length=1, max_length=150)
    question: str = Field(min_length=1)
    answer: str | int | float

    @field_validator("answer")
    @classmethod
    def _number(cls, value: str | int | float) -> str:
        normalized = normalize_number(str(value))
        if normalized is None:
            raise ValueError(f"answer {value!r} holds no number")
        return normalized

    def task(self) -> MathTask:
        return MathTask(id=self.id, question=self.question, answer=str(self.answer))


TaskLine = Annotated[Union[CodeLine, MathLine], Field(discriminator="kind")]
_ADAPTER = TypeAdapter(TaskLine)


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"] if p not in ("code", "math")]  # drop the union branch name
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "union_tag_invalid" or (first["type"] == "union_tag_not_found"):
        return "field 'kind': must be \"code\" or \"math\""
    where = f"field {'.'.join(loc)!r}: " if loc else ""
    more = f" (and {err.error_count() - 1} more problem(s))" if err.error_count() > 1 else ""
    return f"{where}{msg}{more}"


def parse_task_line(text: str, *, path: str | os.PathLike[str] = "<line>", line: int | None = None
                    ) -> CodeTask | MathTask:
    """One JSONL line → a task, or TaskFileError naming the line and the field."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise TaskFileError(path, line, f"not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise TaskFileError(path, line, f"must be a JSON object, got {type(data).__name__}")
    try:
        return _ADAPTER.validate_python(data).task()
    except ValidationError as err:
        raise TaskFileError(path, line, _describe(err)) from None


def load_jsonl_tasks(path: str | os.PathLike[str], limit: int | None = None) -> list[CodeTask | MathTask]:
    """Every task of a JSONL file (the first `limit` if given). The whole file is validated first, so a bad line
    anywhere fails before anything runs; duplicate ids are an error too."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TaskFileError(p, None, "no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise TaskFileError(p, None, f"cannot read it: {err}") from None
    tasks: list[CodeTask | MathTask] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        task = parse_task_line(text, path=p, line=number)
        if task.id in seen:
            raise TaskFileError(p, number, f"field 'id': {task.id!r} is already used on line {seen[task.id]}")
        seen[task.id] = number
        tasks.append(task)
    if not tasks:
        raise TaskFileError(p, None, "holds no tasks")
    return tasks[:limit] if limit is not None else tasks
