"""Adding a sandbox backend is one file: the backend below is defined and registered here, nothing else in the repo
knows it, and get_sandbox, available_backends and `budgetflow sandbox check` find it. Also: how "auto" chooses, and
what an unknown backend name says."""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from budgetflow.sandbox import (ExecResult, Files, Limits, Sandbox, SandboxUnavailable, available_backends,
                                get_sandbox, sandbox_backend, sandbox_backends, sandbox_kinds)


@sandbox_backend("toy", priority=-1)  # below every real backend: "auto" never picks it while one of them works
class ToySandbox:
    """A test double for the registry, not a product backend: it has no isolation of its own and hands every run
    to the process backend, marking the result as its own."""

    name = "toy"

    def __init__(self) -> None:
        self.inner = get_sandbox("process")  # a backend may build on another one

    def run(self, argv: Sequence[str], *, files: Files | None = None, limits: Limits = Limits(),
            stdin: str | bytes | None = None) -> ExecResult:
        result = self.inner.run(argv, files=files, limits=limits, stdin=stdin)
        return result.model_copy(update={"backend": self.name})

    def run_python(self, source: str, *, files: Files | None = None, limits: Limits = Limits()) -> ExecResult:
        return self.inner.run_python(source, files=files, limits=limits).model_copy(update={"backend": self.name})

    def max_cpu_seconds(self, limits: Limits) -> float:
        return self.inner.max_cpu_seconds(limits)

    def close(self) -> None:
        pass  # the process backend is shared: not ours to close


def _forget(name: str) -> None:
    unregister = getattr(sandbox_backends, "unregister", None)
    if unregister is not None:
        unregister(name)
    else:
        sandbox_backends._entries.pop(name, None)


@pytest.fixture(scope="module", autouse=True)
def _toy_goes_with_this_module() -> Iterator[None]:
    yield
    _forget("toy")  # test modules that run later see the built-in backends only


@pytest.fixture
def broken() -> Iterator[str]:
    """A backend of the highest priority that cannot run here (its factory says why), registered for one test."""
    reason = "broken backend: needs hardware this machine lacks; use another backend"

    @sandbox_backend("broken", priority=1000)
    def make_broken() -> Sandbox:
        raise SandboxUnavailable(reason)

    yield reason
    _forget("broken")


def test_a_backend_in_one_file_is_found_by_name():
    assert "toy" in sandbox_kinds() and sandbox_kinds()[0] == "auto"
    box = get_sandbox("toy")
    assert isinstance(box, ToySandbox) and isinstance(box, Sandbox)
    assert get_sandbox("toy") is box  # shared, like every backend
    r = box.run(["{python}", "-c", "import sys; print(sys.argv[1])", "hi"])
    assert r.ok and r.stdout == "hi\n" and r.backend == "toy", r.stderr
    assert box.run_python("print(6 * 7)").stdout == "42\n"


def test_a_backend_in_one_file_is_checked_by_available_backends():
    status = available_backends()
    assert status["toy"] is None  # the real probe ran through it
    assert list(status)[-1] == "toy"  # in the order "auto" tries them: lowest priority last


def test_a_backend_in_one_file_is_in_sandbox_check():
    from typer.testing import CliRunner

    from budgetflow.cli import app

    result = CliRunner().invoke(app, ["sandbox", "check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["toy"] == {"ok": True, "reason": None}


def test_auto_takes_the_highest_priority_backend_that_works(broken):
    status = available_backends()
    assert list(status)[0] == "broken" and status["broken"] == broken  # its own check says why
    with pytest.raises(SandboxUnavailable, match="hardware this machine lacks"):
        get_sandbox("broken")
    assert get_sandbox("auto") is get_sandbox("process")  # tried broken first, then the next one
    assert not isinstance(get_sandbox("auto"), ToySandbox)


def test_an_unknown_backend_is_a_one_line_error_naming_the_registered_ones():
    with pytest.raises(ValueError) as err:
        get_sandbox("vm")
    msg = str(err.value)
    assert "\n" not in msg and "'vm'" in msg
    assert all(name in msg for name in ("process", "docker", "toy"))
