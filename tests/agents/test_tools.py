"""SWE tools without a model: the working copy, the action protocol, and tool runs in the real sandbox."""

from __future__ import annotations

import json

import pytest

from budgetflow import Budget
from budgetflow.agents import (
    ToolBox,
    ToolError,
    WorkingCopy,
    coerce_task,
    parse_action,
    parse_choice,
    write_predictions,
)
from budgetflow.search import Result
from budgetflow.tasks import CodeTask, MathTask
from budgetflow.verifiers import RepoTestRunner
from budgetflow.workspace import repo_files

from .conftest import tree_digest


def test_parse_action_is_tolerant():
    edit = parse_action("I will fix it.\n```edit calc.py\n<<<\n    return a - b\n===\n    return a + b\n>>>\n```")
    assert (edit.tool, edit.path, edit.old, edit.new) == ("edit", "calc.py", "    return a - b", "    return a + b")
    conflict = parse_action("```edit calc.py\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```")
    assert (conflict.old, conflict.new) == ("x", "y")
    assert parse_action("```read\ncalc.py 1-3\n```").args == {"start": 1, "end": 3}
    assert parse_action("READ calc.py").path == "calc.py"
    assert parse_action('{"tool": "search", "pattern": "def add"}').text == "def add"
    assert parse_action("```run\n```").tool == "run"
    assert parse_action("```python\ndef add(a, b):\n    return a + b\n```").tool == "rewrite"
    assert parse_action("```edit calc.py\n<<<\nx\n===\ny").tool == "edit"  # an unclosed block (cut by max_tokens)
    with pytest.raises(ToolError, match="no action"):
        parse_action("I think the bug is in add.")


def test_parse_choice():
    assert parse_choice("Candidate 2", 3) == 2
    assert parse_choice("The answer is 3.", 3) == 3
    assert parse_choice("2.", 3) == 2
    assert parse_choice("the second one", 3) == 2
    assert parse_choice("#1 is right", 2) == 1
    assert parse_choice("def f(): return 42", 3) is None  # not a candidate number
    assert parse_choice("", 3) is None


def test_working_copy_edits_in_memory(tiny_repo):
    copy = WorkingCopy(repo_files(tiny_repo.repo))
    assert "calc.py:3: return a - b" in copy.search(r"return a\s*-")
    with pytest.raises(ToolError, match="not in calc.py"):
        copy.edit("calc.py", "return a * b", "return a + b")
    with pytest.raises(ToolError, match="2 times"):
        copy.write("x.py", "a = 1\na = 1\n") and copy.edit("x.py", "a = 1", "a = 2")
    copy.edit("calc.py", "  return a - b  ", "return a + b")  # loose: indentation and trailing spaces
    assert "    return a + b" in copy.text("calc.py")
    copy.replace_definitions("def double(x):\n    return x + x\n")
    assert "return x + x" in copy.text("calc.py")
    assert set(copy.changed()) == {"calc.py", "x.py"}
    diff = copy.diff()
    assert diff.startswith("diff --git a/calc.py b/calc.py") and "+    return a + b" in diff
    assert "new file mode" in diff


def test_toolbox_runs_tests_and_commands_in_the_sandbox(tiny_repo, sandbox, ledger):
    before = tree_digest(__import__("pathlib").Path(tiny_repo.repo))
    account = ledger.root("swe", Budget(cpu_seconds=600)).child("swe/traj-0")
    box = ToolBox(WorkingCopy(repo_files(tiny_repo.repo)), RepoTestRunner(sandbox), tiny_repo,
                  tests=[*tiny_repo.fail_to_pass, *tiny_repo.pass_to_pass], test_files={}, given=True,
                  account=account)
    out, done = box.execute(parse_action("```run\n```"))
    assert "1 passed, 1 failed" in out and "FAILED test_calc.py::test_add" in out and not done
    out, _ = box.execute(parse_action("```edit calc.py\n<<<\nreturn a - b\n===\nreturn a + b\n>>>\n```"))
    assert out == "edited calc.py"
    out, _ = box.execute(parse_action('```run python3 -c "import calc; print(calc.add(2, 3))"\n```'))
    assert out.startswith("exit 0") and "5" in out
    assert "2 passed, 0 failed" in box.execute(parse_action("RUN"))[0]
    # a patch cannot rewrite the tests that judge it: the task's test files are restored for given tests
    box.execute(parse_action("```write test_calc.py\ndef test_add():\n    assert False\n```"))
    assert "2 passed" in box.execute(parse_action("RUN"))[0]
    assert box.execute(parse_action("```read\nnope.py\n```"))[0].startswith("error: no file")
    assert [e["ok"] for e in box.log] == [True] * 6 + [False]
    assert account.spent().calls == 4 and account.spent().cpu_seconds > 0  # every sandbox run is on the ledger
    assert tree_digest(__import__("pathlib").Path(tiny_repo.repo)) == before  # the repository never changed


def test_write_predictions_schema(tmp_path):
    base = {"reason": "budget", "details": {"model": "local/m"}}
    results = [Result(task_id="tiny__calc-1", kind="repo", answer="diff --git a/x b/x\n", **base),
               Result(task_id="add", kind="code", answer="def add(): ...", **base),
               Result(task_id="tiny__calc-2", kind="repo", answer=None, **base)]
    path = write_predictions(results, tmp_path / "out" / "predictions.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows == [{"instance_id": "tiny__calc-1", "model_name_or_path": "local/m", "model_patch": "diff --git a/x b/x\n"},
                    {"instance_id": "tiny__calc-2", "model_name_or_path": "local/m", "model_patch": ""}]


def test_coerce_task_accepts_objects_dicts_and_prompts(tiny_repo):
    assert coerce_task(tiny_repo) is tiny_repo
    t = coerce_task('def inc(x: int) -> int:\n    """Return x + 1."""\n')
    assert isinstance(t, CodeTask) and t.entry_point == "inc" and t.id == "inc"
    d = coerce_task({"prompt": "def sq(x):\n    \"\"\"Square.\"\"\"\n", "visible_tests": ["assert sq(2) == 4"]})
    assert d.entry_point == "sq" and d.visible_tests == ("assert sq(2) == 4",)
    r = coerce_task(tiny_repo.model_dump())
    assert r == tiny_repo
    with pytest.raises(ValueError, match="defines no function"):
        coerce_task("print('hello')")
    with pytest.raises(ValueError, match="not a valid RepoTask"):
        coerce_task({"repo": "/tmp", "issue": "x"})
    with pytest.raises(TypeError, match="MathTask"):
        coerce_task(MathTask(id="m", question="1+1?", answer="2"))
    with pytest.raises(TypeError, match="got int"):
        coerce_task(3)
