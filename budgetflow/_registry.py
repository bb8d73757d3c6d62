"""Name-keyed registries for budgetflow's extension points (solvers, verifiers, sandbox backends, task kinds).

An extension is one file: a class or function decorated with its registry's decorator. Registering happens when the
module is imported, so code outside the package is found through plugins, loaded once, before the first lookup:
- the `budgetflow.plugins` entry-point group of installed distributions (a package adds itself in its pyproject);
- the `BUDGETFLOW_PLUGINS` environment variable: comma-separated module names or paths of .py files;
- `load_plugins(spec)` (what `budgetflow run --plugin` calls).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

T = TypeVar("T")

ENTRY_POINT_GROUP = "budgetflow.plugins"
ENV_VAR = "BUDGETFLOW_PLUGINS"

_plugins_lock = threading.RLock()
_plugins_loaded = False


class UnknownName(KeyError, ValueError):
    """A name no registry entry has; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    """Entries by name, each with free-form metadata (e.g. the task kinds a solver handles)."""

    def __init__(self, what: str):
        self.what = what  # "solver", "verifier", ... (for messages)
        self._entries: dict[str, tuple[T, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: `@registry.register("name", key=value)` on a class or function."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"a {self.what} name must be a non-empty string without surrounding blanks, got {name!r}")

        def add(obj: T) -> T:
            with self._lock:
                known = self._entries.get(name)
                if known is not None and _identity(known[0]) != _identity(obj):
                    raise ValueError(f"{self.what} {name!r} is already registered by {_identity(known[0])}")
                self._entries[name] = (obj, dict(meta))
            return obj

        return add

    def unregister(self, name: str) -> None:
        """Remove an entry (a test's own toy entry, when it is done with it)."""
        with self._lock:
            self._entries.pop(name, None)

    def get(self, name: str) -> T:
        return self._entry(name)[0]

    def build(self, name: str, **available: Any) -> Any:
        """Call the entry `name` (a class or factory) with those of `available` its signature takes: callers offer
        everything they have (llm=, sandbox=, prices=, settings=...), each entry takes what it needs."""
        import inspect

        factory = self.get(name)
        params = inspect.signature(factory).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return factory(**available)
        return factory(**{k: v for k, v in available.items() if k in params})

    def meta(self, name: str) -> dict[str, Any]:
        return dict(self._entry(name)[1])

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def items(self) -> Iterator[tuple[str, T, dict[str, Any]]]:
        load_plugins()
        for name in sorted(self._entries):
            obj, meta = self._entries[name]
            yield name, obj, dict(meta)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def _entry(self, name: str) -> tuple[T, dict[str, Any]]:
        load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownName(f"unknown {self.what} {name!r}; registered: {known} (a plugin module adds more: "
                              f"--plugin MODULE_OR_FILE, or ${ENV_VAR})") from None


def _identity(obj: object) -> str:
    """Where an entry is defined: the same file imported twice (as a plugin and as a module) is the same entry."""
    import inspect

    try:
        where = os.path.realpath(inspect.getfile(obj))  # type: ignore[arg-type]
    except (TypeError, OSError):
        where = getattr(obj, "__module__", "?")
    return f"{where}:{getattr(obj, '__qualname__', repr(obj))}"


def load_plugins(spec: str | None = None) -> None:
    """Import plugin modules: `spec` (a module name or a .py path) if given; the first call also imports those named
    by the entry-point group and the environment variable. A plugin that fails to import is an error naming it."""
    global _plugins_loaded
    with _plugins_lock:
        if not _plugins_loaded:
            _plugins_loaded = True  # before importing: a plugin may look names up while it registers
            for item in filter(None, (p.strip() for p in os.environ.get(ENV_VAR, "").split(","))):
                _import(item)
            for entry in _entry_points():
                try:
                    entry.load()
                except Exception as err:
                    raise ImportError(f"budgetflow plugin {entry.name!r} ({entry.value}) failed to load: {err}") \
                        from err
        if spec:
            _import(spec)


def _entry_points():
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _import(spec: str) -> None:
    try:
        if spec.endswith(".py") or os.sep in spec:
            path = Path(spec).expanduser().resolve()
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            name = f"budgetflow_plugin_{abs(hash(str(path)))}"
            if name in sys.modules:
                return
            loader_spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            importlib.import_module(spec)
    except Exception as err:
        raise ImportError(f"budgetflow plugin {spec!r} failed to load: {type(err).__name__}: {err}") from err
