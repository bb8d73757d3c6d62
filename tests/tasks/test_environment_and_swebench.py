"""Repo environments from a project's own metadata, SWE-bench-style instances in and predictions out (real files,
real git), and localisation over a real repository's structure."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from budgetflow.tasks import (
    PREDICTION_KEYS,
    EnvironmentSpecError,
    RepoEnvironment,
    SWEBenchError,
    detect_environment,
    environment_requirements,
    load_swebench,
    looks_like_swebench,
    metadata_files,
    swebench_prediction,
    write_swebench_predictions,
)
from budgetflow.workspace import localize, render_locations

PYPROJECT = b"""
[project]
name = "demo-pkg"
dependencies = ["attrs>=21", "demo-pkg-extra", "boltons; python_version >= '3.8'"]
[project.optional-dependencies]
test = ["pytest-html", "face==20.1.1"]
docs = ["sphinx"]
"""
SETUP_PY = b"""
import sys
raise SystemExit("setup.py must never be executed")
REQS = ["parse >= 1.18.0", "six >= 1.15"]
setup(name="demo", install_requires=REQS, tests_require=["pytest-html"], extras_require={"docs": ["sphinx"]})
"""


def test_an_environment_comes_from_pyproject_with_its_test_extra_and_pytest():
    files = {"pyproject.toml": PYPROJECT, "src/demo_pkg/__init__.py": b""}
    env = detect_environment(files, project="demo-pkg")
    assert env.metadata == ("pyproject.toml",) and env.extras == ("test",) and env.paths == ("src",)
    reqs = environment_requirements(env, files, "demo-pkg")
    assert "attrs>=21" in reqs and "pytest-html" in reqs and "face==20.1.1" in reqs
    assert "boltons; python_version >= '3.8'" in reqs  # markers kept: pip evaluates them for the sandbox
    assert "sphinx" not in reqs  # docs is no test extra
    assert "pytest" in reqs and "pytest-timeout" in reqs  # the runner's tools are added when missing


def test_setup_py_is_parsed_never_run_and_setup_cfg_and_requirement_files_count():
    env = detect_environment({"setup.py": SETUP_PY}, project="demo")
    reqs = environment_requirements(env, {"setup.py": SETUP_PY}, "demo")
    assert env.extras == ("tests_require",) and "parse >= 1.18.0" in reqs and "pytest-html" in reqs
    cfg = b"[options]\ninstall_requires =\n    python-dateutil >= 2.7\n[options.extras_require]\ntesting = mock\n"
    env = detect_environment({"setup.cfg": cfg})
    assert environment_requirements(env, {"setup.cfg": cfg}) == ["python-dateutil >= 2.7", "mock", "pytest",
                                                                   "pytest-timeout"]
    files = {"requirements.txt": b"six\n# a comment\n-e .\n", "requirements-test.txt": b"pytest\nhypothesis\n"}
    env = detect_environment(files)
    assert set(env.metadata) == {"requirements-test.txt", "requirements.txt"}
    assert set(environment_requirements(env, files)) >= {"six", "hypothesis", "pytest"}


def test_an_environment_naming_missing_metadata_says_which():
    with pytest.raises(EnvironmentSpecError, match="setup.cfg"):
        environment_requirements(RepoEnvironment(metadata=("setup.cfg",)), {})
    with pytest.raises(EnvironmentSpecError, match="pyproject.toml"):
        detect_environment({"pyproject.toml": b"[project\n"})


def _git_repo(path: Path) -> str:
    path.mkdir()
    (path / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    (path / "pyproject.toml").write_bytes(b'[project]\nname = "calc"\ndependencies = ["six"]\n')
    (path / "tests").mkdir()
    (path / "tests" / "test_calc.py").write_text("from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n")
    git = ["git", "-C", str(path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    base = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    (path / "calc.py").write_text("def add(a, b):\n    return a + b  # fixed later\n")
    subprocess.run([*git, "commit", "-qam", "later"], check=True)
    return base


def test_swebench_instances_load_as_repo_tasks_from_a_checkout_and_a_snapshot(tmp_path):
    base = _git_repo(tmp_path / "calc")
    snap = tmp_path / "calc.tar.gz"
    with tarfile.open(snap, "w:gz") as tar:
        tar.add(tmp_path / "calc", arcname="calc-1.0", filter=lambda i: None if "/.git" in i.name else i)
    lines = [
        {"instance_id": "calc__1", "repo": "calc", "base_commit": base, "problem_statement": "add() subtracts",
         "FAIL_TO_PASS": json.dumps(["tests/test_calc.py::test_add"]), "PASS_TO_PASS": "[]", "environment": "auto",
         "version": "1.0", "created_at": "2024-01-01"},  # SWE-bench's other fields are ignored
        {"instance_id": "calc__2", "snapshot": "calc.tar.gz", "problem_statement": "p",
         "FAIL_TO_PASS": ["tests/test_calc.py::test_add"], "environment": ["six==1.17.0"], "hidden_tests": False,
         "test_cmd": "python -m pytest -x"},
    ]
    path = tmp_path / "instances.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert looks_like_swebench(path)
    one, two = load_swebench(path, cache=tmp_path / "cache")
    assert one.instance_id == "calc__1" and one.project == "calc" and one.issue == "add() subtracts"
    assert one.fail_to_pass == ("tests/test_calc.py::test_add",) and one.hidden_tests  # SWE-bench: scoring only
    assert "a - b" in (Path(one.repo) / "calc.py").read_text()  # the checkout at base_commit, not HEAD
    assert one.environment.metadata == ("pyproject.toml",) and "six" in environment_requirements(
        one.environment, metadata_files(one.repo), "calc")
    assert (Path(two.repo) / "calc.py").is_file() and not (Path(two.repo) / "calc-1.0").exists()
    assert two.environment.requirements == ("six==1.17.0",) and not two.hidden_tests
    assert two.test_command == ("python", "-m", "pytest", "-x")
    assert load_swebench(path, limit=1, cache=tmp_path / "cache")[0].repo == one.repo  # unpacked once


@pytest.mark.parametrize("line, says", [
    ('{"instance_id": "x", "problem_statement": "p"}', "where the repository is"),
    ('{"instance_id": "x", "problem_statement": "p", "repo": "nowhere"}', "does not exist"),
    ('{"instance_id": "x", "problem_statement": "p", "repo": ".", "FAIL_TO_PASS": "[1"}', "FAIL_TO_PASS"),
    ("{not json", "not JSON"),
])
def test_a_bad_instance_line_is_refused_with_file_line_and_field(tmp_path, line, says):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n" + line + "\n")
    with pytest.raises(SWEBenchError) as err:
        load_swebench(path)
    assert f"{path}:2" in str(err.value) and says in str(err.value)


def test_predictions_are_what_the_harness_reads_one_line_per_instance(tmp_path):
    rows = [swebench_prediction("a__1", "local/qwen2.5-coder-1.5b@http://127.0.0.1:8000", "diff --git a/x b/x\n"),
            swebench_prediction("b__2", "m", None), swebench_prediction("a__1", "m", "diff 2\n")]
    out = write_swebench_predictions(rows, tmp_path / "predictions.jsonl")
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [tuple(g) for g in got] == [PREDICTION_KEYS, PREDICTION_KEYS]
    assert got[0] == {"instance_id": "a__1", "model_name_or_path": "m", "model_patch": "diff 2\n"}  # the later wins
    assert got[1]["model_patch"] == "" and rows[0]["model_name_or_path"] == "local/qwen2.5-coder-1.5b"


def test_localisation_finds_the_function_from_a_traceback_not_the_whole_file(tmp_path):
    """Real project source (inflection's sdist, as the SWE fixtures use it): the failing test's traceback points at
    the buggy function; what is shown is that function with line numbers, far smaller than the module."""
    from budgetflow.swe import sdist_path, unpack_source
    from budgetflow.workspace import repo_files

    root, _ = unpack_source(sdist_path("inflection", "0.5.1"), tmp_path / "src")
    files = repo_files(root)
    module = next(p for p in files if p.endswith("inflection/__init__.py"))
    failures = (f"test_inflection.py:300: in test_underscore\n    assert inflection.underscore(camel) == under\n"
                f"{module}:400: in underscore\n    word = re.sub(...)\nE   AssertionError")
    found = localize(files, "underscore() mangles CamelCase words", failures=failures,
                     tests=["test_inflection.py::test_underscore"], top=3)
    assert found and found[0].path == module and found[0].name == "underscore"
    shown = render_locations(files, found, 4000)
    assert "def underscore" in shown and len(shown) < len(files[module]) / 2
