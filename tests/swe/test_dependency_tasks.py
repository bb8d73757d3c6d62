"""Repositories with their own dependencies: the cached fixture tasks made from freezegun, glom and parse-type (real
sdists, real dependency wheels) run their suites in their own environment on both sandbox backends — the real process
sandbox and the real Docker engine — with no network (environments come from the local wheelhouse). Without the
environment the same suites cannot even be collected: that is the failure this reproduces."""

from __future__ import annotations

import os

import pytest

from budgetflow import Budget
from budgetflow.tasks import solution_patch
from budgetflow.verifiers import RepoTestRunner
from budgetflow.workspace import apply_patch_files, repo_files

from ..sandbox.backends import start_docker

DEP_PROJECTS = {"freezegun", "glom", "parse-type"}


@pytest.fixture(scope="module")
def offline():
    saved = os.environ.get("BUDGETFLOW_OFFLINE")
    os.environ["BUDGETFLOW_OFFLINE"] = "1"  # every environment comes from the wheelhouse: no network at all
    yield
    if saved is None:
        os.environ.pop("BUDGETFLOW_OFFLINE", None)
    else:
        os.environ["BUDGETFLOW_OFFLINE"] = saved


@pytest.fixture(scope="module")
def dep_tasks(offline):
    from budgetflow.swe import ensure_swe_fixtures, fixtures_root

    if not (fixtures_root() / "index.json").is_file():
        pytest.fail("fixtures not built: run scripts/setup_swe_tasks.sh (make test does, before the tests)")
    tasks = [t for t in ensure_swe_fixtures() if t.project in DEP_PROJECTS]
    return {p: next(t for t in tasks if t.project == p) for p in sorted({t.project for t in tasks})}


@pytest.fixture(scope="module")
def docker_box():
    box = start_docker()
    yield box
    box.close()


def test_three_fixture_projects_have_runtime_dependencies_and_name_their_environment(dep_tasks):
    assert set(dep_tasks) == DEP_PROJECTS
    for task in dep_tasks.values():
        assert task.environment is not None and task.environment.metadata  # the project's own metadata
        assert task.environment.constraints  # pinned: the same environment every time
        assert task.fail_to_pass and task.pass_to_pass


@pytest.mark.parametrize("backend", ["process", "docker"])
@pytest.mark.parametrize("project", sorted(DEP_PROJECTS))
def test_a_dependency_task_runs_its_suite_in_its_environment_on_each_backend(project, backend, dep_tasks, sandbox,
                                                                               docker_box, session_ledger):
    task = dep_tasks[project]
    runner = RepoTestRunner(sandbox if backend == "process" else docker_box)
    account = session_ledger.root(f"deps-{project}-{backend}", Budget(cpu_seconds=600.0))
    files = repo_files(task.repo)
    wanted = [*task.fail_to_pass, *task.pass_to_pass[:40]]
    before = runner.run(files, task, wanted, account=account)
    assert set(task.fail_to_pass) <= before.failed, before.errors or before.output_tail[-2000:]
    assert set(task.pass_to_pass[:40]) <= before.passed, before.errors or before.output_tail[-2000:]
    fixed = runner.run(apply_patch_files(files, solution_patch(task)), task, wanted, account=account)
    assert set(wanted) <= fixed.passed, fixed.errors or fixed.output_tail[-2000:]
    assert account.spent().cpu_seconds > 0  # the runs were metered on the ledger
    # the same suite without its environment: the dependencies are missing, nothing passes
    bare = runner.run(files, task.model_copy(update={"environment": None}), wanted, account=account)
    assert not (set(task.pass_to_pass[:40]) & bare.passed)


def test_make_task_works_on_an_sdist_with_runtime_dependencies(offline, tmp_path):
    """The real CLI on freezegun's sdist (python-dateutil at runtime): the baseline and the mutants run in the
    environment its metadata names, built offline; the task it writes names that environment."""
    from budgetflow.swe import sdist_path
    from budgetflow.tasks import load_repo_tasks

    from .conftest import run_cli

    out = tmp_path / "made"
    proc = run_cli("swe", "make-task", str(sdist_path("freezegun", "1.4.0")), "--out", str(out), "--count", "1",
                   "--seed", "0", "--max-tries", "12", timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (task,) = load_repo_tasks(out)
    assert task.project == "freezegun" and task.environment is not None
    assert any(m in task.environment.metadata for m in ("setup.cfg", "pyproject.toml", "setup.py"))
    assert task.fail_to_pass and len(task.pass_to_pass) > 20


def test_a_task_without_an_environment_runs_the_same_on_docker(offline, docker_box, sandbox, session_ledger,
                                                                tmp_path):
    """The Docker base image has no pytest: a task naming no environment used to fail there while it passed on the
    process backend. Now both report the same tests."""
    from budgetflow.tasks import RepoTask

    files = {"calc.py": b"def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n",
             "tests/test_calc.py": b"from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                                   b"def test_mul():\n    assert mul(2, 3) == 6\n",
             "pytest.ini": b"[pytest]\npythonpath = .\n"}
    task = RepoTask(instance_id="plain__calc", project="plain", repo=str(tmp_path), issue="add subtracts",
                    fail_to_pass=("tests/test_calc.py::test_add",), pass_to_pass=("tests/test_calc.py::test_mul",))
    account = session_ledger.root("plain-on-both", Budget(cpu_seconds=300.0))
    reports = [RepoTestRunner(box).run(files, task, None, account=account) for box in (sandbox, docker_box)]
    for report in reports:
        assert report.failed == {"tests/test_calc.py::test_add"}, report.errors or report.output_tail[-1500:]
        assert report.passed == {"tests/test_calc.py::test_mul"}
