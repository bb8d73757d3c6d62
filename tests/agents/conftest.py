"""The agent tests use the session's real vLLM server (SmolLM2-135M on the CPU), process sandbox and SQLite ledgers
(tests/conftest.py), and LangGraph's real SqliteSaver for checkpoints."""

from __future__ import annotations

import pytest

from budgetflow import Budget
from budgetflow.agents import AgentConfig
from budgetflow.search import SamplingParams
from budgetflow.tasks import CodeTask

# The prompt ends inside the body: SmolLM2-135M completes ` a + b` nearly always (8/8 measured), whereas after a bare
# docstring it starts a markdown fence at column 0, which is no function body at all.
EASY = CodeTask(
    id="add", entry_point="add",
    prompt='def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return',
    visible_tests=("assert add(1, 2) == 3", "assert add(0, 0) == 0"),
    hidden_tests="assert add(5, 5) == 10\n",
)
PARAMS = SamplingParams(max_tokens=48, temperature=1.0)


@pytest.fixture
def small_config() -> AgentConfig:
    return AgentConfig(wave_size=4, max_waves=3, params=PARAMS, tester_samples=2, tester_max_tokens=64)


CALC = 'def add(a, b):\n    """Return the sum of a and b."""\n    return a - b\n\n\ndef double(x):\n    return 2 * x\n'
TESTS = ("from calc import add, double\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
         "def test_double():\n    assert double(4) == 8\n")


def make_tiny_repo(root):
    """A real git repository with an obvious one-line bug (add subtracts) and its pytest file."""
    import subprocess

    from budgetflow.tasks import RepoTask

    root.mkdir(parents=True, exist_ok=True)
    (root / "calc.py").write_text(CALC)
    (root / "test_calc.py").write_text(TESTS)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(root)]
    subprocess.run(git[:5] + ["init", "-q", str(root)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "buggy add"], check=True)
    return RepoTask(instance_id="tiny__calc-1", project="tiny", repo=str(root),
                    issue="calc.add(2, 3) returns -1 instead of 5: add subtracts instead of adding.",
                    fail_to_pass=("test_calc.py::test_add",), pass_to_pass=("test_calc.py::test_double",),
                    hidden_tests=False)


def tree_digest(root) -> dict[str, bytes]:
    """Every file under root (including .git), to prove the repository was never touched."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def tiny_repo(tmp_path):
    return make_tiny_repo(tmp_path / "repo")

# the kill-and-resume test: the same settings in the killed subprocess and in the resuming test process
RESUME_BUDGET = Budget(usd=0.5)
RESUME_CONFIG = AgentConfig(wave_size=2, max_waves=1, params=PARAMS)

