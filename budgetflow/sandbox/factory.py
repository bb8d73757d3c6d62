"""Backend selection: ``get_sandbox(kind)`` and the probe behind ``budgetflow sandbox check``."""
from __future__ import annotations

import threading
from typing import Literal

from .models import Sandbox, SandboxUnavailable

Kind = Literal["auto", "process", "docker"]
_cache: dict[str, Sandbox] = {}
_cache_lock = threading.Lock()


def _make(kind: str) -> Sandbox:
    if kind == "process":
        from .process import ProcessSandbox
        return ProcessSandbox()
    if kind == "docker":
        from .docker_backend import DockerSandbox
        return DockerSandbox()
    raise ValueError(f"unknown sandbox kind {kind!r}; use 'auto', 'process' or 'docker'")


def get_sandbox(kind: Kind = "auto") -> Sandbox:
    """A shared, thread-safe sandbox. ``auto``: the process backend where it can run
    (fastest, full isolation), else Docker; raises SandboxUnavailable saying why neither works."""
    with _cache_lock:
        if kind in _cache:
            return _cache[kind]
        if kind == "auto":
            reasons = []
            for k in ("process", "docker"):
                try:
                    box = _cache.get(k) or _make(k)
                except SandboxUnavailable as e:
                    reasons.append(f"{k}: {e}")
                    continue
                _cache[k] = _cache["auto"] = box
                return box
            raise SandboxUnavailable("no sandbox backend works here: " + "; ".join(reasons))
        box = _make(kind)
        _cache[kind] = box
        return box


def available_backends() -> dict[str, str | None]:
    """Backend name -> None if it works here, else the reason it does not (actually runs a probe)."""
    from .models import Limits

    status: dict[str, str | None] = {}
    for kind in ("process", "docker"):
        try:
            box = _make(kind)
        except SandboxUnavailable as e:
            status[kind] = str(e)
            continue
        except Exception as e:  # engine misconfigured etc.
            status[kind] = f"{type(e).__name__}: {e}"
            continue
        try:
            res = box.run_python("print(6 * 7)", limits=Limits(timeout_s=60))
            status[kind] = None if res.ok and res.stdout.strip() == "42" else (
                f"probe run failed: exit {res.exit_code}, {res.stderr.strip()[-300:]}")
        except Exception as e:
            status[kind] = f"probe run failed: {type(e).__name__}: {e}"
        finally:
            box.close()
    return status
