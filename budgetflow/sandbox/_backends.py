"""The registry of sandbox backends, and choosing one: ``get_sandbox(kind)``, ``available_backends()``.

A backend is one module: a class (or a factory function) taking no required arguments, decorated with
``@sandbox_backend("name", priority=N)``. Constructing it is its availability check: it raises
``SandboxUnavailable`` saying why it cannot run here and what to do. ``"auto"`` is the backend of highest
priority that constructs. Built-ins: process (20), docker (10); the package imports them, plugins
(``BUDGETFLOW_PLUGINS``, the ``budgetflow.plugins`` entry points) add more.

Every backend takes the argv[0] placeholder ``"{python}"`` for its own Python interpreter, so callers never need
to know which backend they hold.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .._registry import Registry
from ._models import Limits, Sandbox, SandboxUnavailable

if TYPE_CHECKING:
    from ._environments import PythonEnv

BackendFactory = Callable[[], Sandbox]
F = TypeVar("F", bound=Callable[..., Any])

sandbox_backends: Registry[BackendFactory] = Registry("sandbox backend")

# One shared instance per backend (warm pools are worth sharing), and why a backend failed, so that "auto" does not
# retry a backend that cannot run here on every call. An explicit get_sandbox(name) always retries.
_cache: dict[str, Sandbox] = {}
_failed: dict[str, str] = {}
_lock = threading.RLock()  # re-entrant: a backend's constructor may itself call get_sandbox (e.g. to wrap another)


def sandbox_backend(name: str, *, priority: int = 0, **meta: Any) -> Callable[[F], F]:
    """Register a backend class or factory under ``name``. ``priority``: higher is tried first by ``"auto"``."""
    return sandbox_backends.register(name, priority=priority, **meta)  # type: ignore[return-value]


def backend_names() -> list[str]:
    """Registered backends in the order ``"auto"`` tries them: highest priority first, ties by name."""
    return sorted(sandbox_backends.names(), key=lambda n: (-int(sandbox_backends.meta(n).get("priority", 0)), n))


def sandbox_kinds() -> list[str]:
    """What ``get_sandbox`` (and ``--sandbox``) accepts: ``"auto"`` and every registered backend."""
    return ["auto", *backend_names()]


def get_sandbox(kind: str = "auto") -> Sandbox:
    """A shared, thread-safe sandbox of backend ``kind``. ``"auto"``: the registered backend of highest priority
    that can run here; raises SandboxUnavailable with every backend's reason when none can. An unknown kind is a
    ValueError naming the registered ones."""
    if kind != "auto":
        return _instance(kind, retry=True)
    reasons = []
    for name in backend_names():
        try:
            return _instance(name, retry=False)
        except SandboxUnavailable as e:
            reasons.append(f"{name}: {e}")
    detail = "; ".join(reasons) or "none is registered"
    raise SandboxUnavailable(f"no sandbox backend works here: {detail} (see `budgetflow sandbox check`)")


def _instance(name: str, *, retry: bool) -> Sandbox:
    factory = sandbox_backends.get(name)  # the registry's error names the known backends
    with _lock:
        if name in _cache:
            return _cache[name]
        if not retry and name in _failed:
            raise SandboxUnavailable(_failed[name])
        try:
            box = factory()
        except SandboxUnavailable as e:
            _failed[name] = str(e)
            raise
        _failed.pop(name, None)
        _cache[name] = box
        return box


def with_environment(box: Sandbox, env: "PythonEnv") -> Sandbox:
    """``box`` running Python environment ``env`` (see ``build_python_env``): each backend maps it to what it can
    run — the process backend to a read-only mount, Docker to an image layered on its base image. A backend without
    ``with_environment`` cannot run environments: SandboxUnavailable says so."""
    method = getattr(box, "with_environment", None)
    if method is None:
        raise SandboxUnavailable(f"the {getattr(box, 'name', type(box).__name__)} sandbox backend cannot run Python "
                                 "environments (it has no with_environment(env)); use the process or docker backend")
    return method(env)


def available_backends() -> dict[str, str | None]:
    """Backend name -> None if it works here, else why not (constructs each anew and runs a real probe), in the
    order ``"auto"`` tries them."""
    return {name: _probe(sandbox_backends.get(name)) for name in backend_names()}


def _probe(factory: BackendFactory) -> str | None:
    try:
        box = factory()
    except SandboxUnavailable as e:
        return str(e)
    except Exception as e:  # a misconfigured engine etc.: report it, do not stop checking the others
        return f"{type(e).__name__}: {e}"
    try:
        res = box.run(["{python}", "-c", "print(6 * 7)"], limits=Limits(timeout_s=60))
        if res.ok and res.stdout.strip() == "42":
            return None
        return f"probe run failed: exit {res.exit_code}, {res.stderr.strip()[-300:]}"
    except Exception as e:
        return f"probe run failed: {type(e).__name__}: {e}"
    finally:
        box.close()
