"""Adding a strategy, a verifier or a sandbox backend is one file, with no other file changed: this test file is
that file. It defines a toy solver, a toy verifier and a toy sandbox backend, registers each with its decorator,
and the real `budgetflow run` (a subprocess) loads it with --plugin, runs the toy solver under the cap, checks with
the toy verifier in the toy backend, and reports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from budgetflow import Ledger, Resources, Result, Verdict, get_sandbox, solver, verifier
from budgetflow.sandbox import sandbox_backend
from budgetflow.search import Candidate

from tests.runs.conftest import PRICE, bf_run, results

HERE = str(Path(__file__).resolve())


class ToySettings(BaseModel):
    max_tokens: int = 16
    tries: int = 1


@sandbox_backend("toy-box", priority=-10)
class ToyBox:
    """Hands every run to the process backend; counts them, so the test can see it was used."""

    name = "toy-box"

    def __init__(self):
        self.inner = get_sandbox("process")

    def run(self, argv, *, files=None, limits=None, stdin=None):
        return self.inner.run(argv, files=files, limits=limits or self.inner_limits(), stdin=stdin)

    def run_python(self, source, *, files=None, limits=None):
        result = self.inner.run_python(source, files=files, limits=limits or self.inner_limits())
        return result.model_copy(update={"stdout": result.stdout + "\n# ran in toy-box\n"})

    def inner_limits(self):
        from budgetflow import Limits

        return Limits()

    def max_cpu_seconds(self, limits):
        return self.inner.max_cpu_seconds(limits)

    def close(self):
        pass


@verifier("toy-check", kinds=("code",))
class ToyCheck:
    """Runs the candidate in the run's sandbox (one metered run) and passes it when it loads."""

    name = "toy-check"

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def verify(self, task, candidate: str, *, account) -> Verdict:
        from budgetflow.verifiers import UnitTestVerifier

        report = UnitTestVerifier(self.sandbox).run(task.prompt + candidate, [], account=account)
        return Verdict(passed=report.loaded, score=1.0 if report.loaded else 0.0, loaded=report.loaded,
                       detail="toy-check: loaded" if report.loaded else "toy-check: did not load")


@solver("toy", kinds=("code",), settings=ToySettings, verifier="toy-check")
class ToySolver:
    """Samples `tries` completions in one call and keeps the first its verifier passes."""

    def __init__(self, settings: ToySettings):
        self.settings = settings

    def solve(self, task, resources: Resources) -> Result:
        gen = resources.llm.generate(task.prompt, account=resources.account, n=self.settings.tries,
                                     max_tokens=self.settings.max_tokens, temperature=0.8)
        candidates = []
        for i, c in enumerate(gen.completions):
            verdict = resources.verifier.verify(task, c.text, account=resources.account)
            candidates.append(Candidate(text=c.text, score=verdict.score, passed_visible=verdict.passed,
                                        verdict=verdict, id=f"toy{i}", source="toy"))
        best = max(candidates, key=lambda c: c.score)
        return Result(task_id=task.task_id, kind="code", reason="solved" if best.passed_visible else "exhausted",
                      best=best, answer=best.text, candidates=candidates, samples=len(candidates),
                      spend=resources.account.spend_by_part(), account=resources.account.name,
                      notes=[f"toy solver, {self.settings.tries} tries"])


@pytest.fixture(scope="module", autouse=True)
def _forget_the_toys():
    yield  # pytest imported this file, so the toys are registered in this process too: remove them after
    from budgetflow import solvers, verifiers
    from budgetflow.sandbox import sandbox_backends

    solvers.unregister("toy")
    verifiers.unregister("toy-check")
    sandbox_backends.unregister("toy-box")


ADD = {"kind": "code", "id": "add", "entry_point": "add",
       "prompt": 'def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n    return',
       "visible_tests": ["assert add(1, 2) == 3"], "hidden_tests": "assert add(5, 5) == 10\n"}


def test_a_toy_solver_verifier_and_backend_from_one_file(smol_model, tmp_path):
    src = tmp_path / "tasks.jsonl"
    src.write_text(json.dumps(ADD) + "\n")
    out = tmp_path / "toy"
    proc = bf_run(str(src), "--plugin", HERE, "--strategy", "toy", "--set", "tries=2", "--sandbox", "toy-box",
                  "--model", smol_model, *PRICE, "--budget-usd", "0.01", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = results(out)
    assert line["strategy"] == "toy" and line["samples"] == 2 and "toy solver, 2 tries" in line["notes"]
    candidates = json.loads((out / line["candidates_file"]).read_text())["candidates"]
    assert all(c["verdict"]["detail"].startswith("toy-check: ") for c in candidates)  # the toy verifier judged
    assert len(candidates) == 2
    config = json.loads((out / "run.json").read_text())
    assert config["plugins"] == [HERE] and config["sandbox"] == "toy-box" and config["solver_options"] == {"tries": 2}
    with Ledger(config["ledger"], create=False) as ledger:
        assert ledger.account("toy").spent().usd <= 0.01 and ledger.verify().ok
        # the toy verifier's runs went through the toy backend, metered on the task's account like any other
        assert ledger.account("toy/task/add").spent().cpu_seconds > 0
    assert "toy" in (out / "report.html").read_text()
    resumed = bf_run("--resume", "--out", str(out))  # run.json remembers the plugin
    assert resumed.returncode == 0, resumed.stderr[-2000:]


def test_unknown_names_and_settings_are_one_line_errors(smol_model, tmp_path):
    src = tmp_path / "tasks.jsonl"
    src.write_text(json.dumps(ADD) + "\n")
    no_plugin = bf_run(str(src), "--strategy", "toy", "--model", smol_model, *PRICE, "--budget-usd", "0.01",
                       "--out", str(tmp_path / "a"))
    assert no_plugin.returncode == 2 and "'toy' is not a known strategy" in no_plugin.stderr
    bad_setting = bf_run(str(src), "--plugin", HERE, "--strategy", "toy", "--set", "tires=2", "--model", smol_model,
                         *PRICE, "--budget-usd", "0.01", "--out", str(tmp_path / "b"))
    assert bad_setting.returncode == 2 and "tires" in bad_setting.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
