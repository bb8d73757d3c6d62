"""Isolated, fast execution of untrusted code.

``get_sandbox()`` picks a registered backend: ``"auto"`` is the highest-priority one that can run here, by default
the process backend (namespaces + cgroups + rlimits + seccomp, warm zygote; needs root), else Docker (an engine at
``DOCKER_HOST`` or the one ``scripts/setup_docker.sh`` starts). ``budgetflow sandbox check`` probes each backend and
says why any does not work and what to do.

A new backend is one module: a class with ``run``/``run_python``/``max_cpu_seconds``/``close`` (the ``Sandbox``
Protocol) decorated with ``@sandbox_backend("name", priority=N)``, whose constructor raises ``SandboxUnavailable``
when it cannot run here, and which maps argv[0] ``"{python}"`` to its own interpreter. Outside this package,
load it as a plugin (``BUDGETFLOW_PLUGINS`` or the ``budgetflow.plugins`` entry-point group).

Python environments: ``build_python_env(requirements, constraints=...)`` builds a virtualenv once, installing from the
local wheelhouse only (``<cache>/wheels``; ``fetch_wheels`` fills it from the registry on the host, never with
``BUDGETFLOW_OFFLINE=1``), cached by content hash under ``<cache>/envs``; ``with_environment(box, env)`` is ``box``
running it, on
every backend that can (process: a read-only mount; Docker: an image layered on the base image), so callers never
check which backend they hold.

Environment: ``DOCKER_HOST`` (Docker engine), ``BUDGETFLOW_SANDBOX_PYTHON`` (interpreter of the process backend,
default /usr/bin/python3), ``BUDGETFLOW_SANDBOX_IMAGE`` (Docker image, default budgetflow/sandbox-base:bookworm).
"""
from ._backends import (
    available_backends,
    get_sandbox,
    sandbox_backend,
    sandbox_backends,
    sandbox_kinds,
    with_environment,
)
from ._docker import DockerSandbox  # the built-in backends register themselves on import
from ._environments import (
    ENV_MOUNT,
    EnvironmentBuildError,
    EnvProgress,
    PythonEnv,
    build_python_env,
    env_key,
    fetch_wheels,
    offline,
    wheelhouse,
)
from ._models import ExecResult, Files, Limits, Sandbox, SandboxError, SandboxUnavailable, StopReason
from ._process import ProcessSandbox

__all__ = [
    "ENV_MOUNT", "EnvProgress", "EnvironmentBuildError", "PythonEnv", "build_python_env", "env_key",
    "fetch_wheels", "offline", "wheelhouse", "with_environment", "DockerSandbox", "ExecResult", "Files", "Limits",
    "ProcessSandbox", "Sandbox", "SandboxError", "SandboxUnavailable", "StopReason", "available_backends",
    "get_sandbox", "sandbox_backend", "sandbox_backends", "sandbox_kinds"
]
