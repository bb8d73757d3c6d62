"""Isolated, fast execution of untrusted code.

``get_sandbox()`` picks a backend: the process backend (namespaces + cgroups + rlimits +
seccomp, warm zygote) by default, Docker when asked for or when the process backend
cannot run here. See ``budgetflow sandbox check``.
"""
from .factory import available_backends, get_sandbox
from .models import ExecResult, Limits, Sandbox, SandboxError, SandboxUnavailable, StopReason

__all__ = ["ExecResult", "Limits", "Sandbox", "SandboxError", "SandboxUnavailable", "StopReason",
           "available_backends", "get_sandbox"]
