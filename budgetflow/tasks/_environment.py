"""What a repository task's tests need installed: its environment, named by the project's own metadata.

A ``RepoEnvironment`` lists the metadata files to read (``pyproject.toml``, ``setup.cfg``, ``setup.py``,
``requirements*.txt``), the extras that hold the test dependencies, more requirements and exact pins.
``environment_requirements`` turns it into pip requirement strings (markers kept: pip evaluates them against the
sandbox's interpreter); ``detect_environment`` names the metadata a project has. Reading never runs the project's
code: ``setup.py`` is parsed, not executed (literal ``install_requires``/``tests_require``/``extras_require`` only).
"""

from __future__ import annotations

import ast
import configparser
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict

TEST_EXTRAS = ("test", "tests", "testing")
TEST_TOOLS = ("pytest", "pytest-timeout")  # the runner needs pytest; pytest-timeout bounds each test
_REQ_FILES = re.compile(r"^(?:requirements[\w.-]*\.txt|[\w.-]*requirements\.txt|(?:requirements|py\.requirements)/"
                        r"[\w.-]+\.txt)$")
_TEST_REQ = re.compile(r"test", re.IGNORECASE)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class RepoEnvironment(BaseModel):
    """A repo task's environment. Built once (a virtualenv, or a Docker image) and cached by the content hash of the
    requirements it resolves to; the tests run in it. ``paths``: repo directories put on ``sys.path`` (``src``
    layouts), since the project itself is not installed — its working copy is what runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metadata: tuple[str, ...] = ()  # repo files to read requirements from
    extras: tuple[str, ...] = ()  # extras / tests_require groups to add (``tests_require`` is one)
    requirements: tuple[str, ...] = ()  # more requirement strings
    constraints: tuple[str, ...] = ()  # exact pins (name==version) every install is held to
    paths: tuple[str, ...] = ()


class EnvironmentSpecError(ValueError):
    """A metadata file named by an environment is missing or unreadable; the message says which and why."""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str:
    m = _NAME.match(req)
    return canonical(m.group(1)) if m else ""


def detect_environment(files: Mapping[str, bytes], *, project: str = "",
                       extras: tuple[str, ...] = TEST_EXTRAS) -> RepoEnvironment:
    """The environment a project's metadata names: its install requirements plus whichever of ``extras`` (and
    ``tests_require``) it defines, plus pytest. Test requirement files count when no test extra exists."""
    meta = tuple(p for p in ("pyproject.toml", "setup.cfg", "setup.py") if p in files)
    found = set()
    for path in meta:
        found |= set(_read(path, files[path]).keys())
    chosen = tuple(e for e in (*extras, "tests_require") if e in found)
    req_files = tuple(sorted(p for p in files if _REQ_FILES.match(p) and _TEST_REQ.search(p)))
    if not chosen and req_files:
        meta += req_files[:1]
    if not any(_read(p, files[p]).get("") for p in meta if p.endswith((".toml", ".cfg", ".py"))) \
            and "requirements.txt" in files:
        meta += ("requirements.txt",)
    paths = ("src",) if any(p.startswith("src/") and p.endswith("/__init__.py") for p in files) else ()
    env = RepoEnvironment(metadata=meta, extras=chosen, paths=paths)
    return env.model_copy(update={"requirements": _missing_tools(environment_requirements(env, files, project))})


def metadata_files(root: str | os.PathLike[str]) -> dict[str, bytes]:
    """The files of a repository directory that ``detect_environment`` reads: the metadata at its top, requirement
    files (also under ``requirements/``, ``py.requirements/``) and ``src/*/__init__.py`` (a src layout)."""
    base = Path(root)
    out: dict[str, bytes] = {}
    for pattern in ("*", "requirements/*.txt", "py.requirements/*.txt", "src/*/__init__.py"):
        for p in base.glob(pattern):
            rel = p.relative_to(base).as_posix()
            if p.is_file() and (rel in ("pyproject.toml", "setup.cfg", "setup.py") or _REQ_FILES.match(rel)
                                or rel.startswith("src/")):
                out[rel] = p.read_bytes()
    return out


def environment_requirements(env: RepoEnvironment, files: Mapping[str, bytes], project: str = "") -> list[str]:
    """The pip requirement strings of ``env`` for a repository whose files are ``files`` (the project itself and
    duplicates dropped)."""
    reqs: list[str] = []
    for path in env.metadata:
        if path not in files:
            raise EnvironmentSpecError(f"the environment names {path}, which is not in the repository")
        groups = _read(path, files[path])
        reqs += groups.get("", [])
        for extra in env.extras:
            reqs += groups.get(extra, [])
    reqs += list(env.requirements)
    own = canonical(project) if project else ""
    out: dict[str, None] = {}
    for r in reqs:
        r = r.strip()
        if r and not r.startswith(("-", "#")) and requirement_name(r) and requirement_name(r) != own:
            out.setdefault(r, None)
    return list(out)


def _missing_tools(reqs: list[str]) -> tuple[str, ...]:
    have = {requirement_name(r) for r in reqs}
    return tuple(t for t in TEST_TOOLS if t not in have)


def _read(path: str, data: bytes) -> dict[str, list[str]]:
    """{"": install requirements, extra: its requirements, "tests_require": ...} of one metadata file."""
    text = data.decode("utf-8", "replace")
    name = PurePosixPath(path).name
    try:
        if name == "pyproject.toml":
            return _pyproject(tomllib.loads(text))
        if name == "setup.cfg":
            return _setup_cfg(text)
        if name == "setup.py":
            return _setup_py(text)
        return {"": _req_lines(text)}
    except (ValueError, SyntaxError, configparser.Error) as err:
        raise EnvironmentSpecError(f"cannot read the requirements in {path}: {err}") from None


def _pyproject(doc: dict) -> dict[str, list[str]]:
    project = doc.get("project") or {}
    out = {"": list(project.get("dependencies") or [])}
    for extra, reqs in (project.get("optional-dependencies") or {}).items():
        out[extra] = list(reqs)
    for group, reqs in (doc.get("dependency-groups") or {}).items():  # PEP 735; includes are not followed
        out.setdefault(group, [r for r in reqs if isinstance(r, str)])
    return out


def _setup_cfg(text: str) -> dict[str, list[str]]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(text)
    out: dict[str, list[str]] = {}
    if cfg.has_section("options"):
        out[""] = _req_lines(cfg.get("options", "install_requires", fallback=""))
        if cfg.has_option("options", "tests_require"):
            out["tests_require"] = _req_lines(cfg.get("options", "tests_require"))
    if cfg.has_section("options.extras_require"):
        for extra, value in cfg.items("options.extras_require"):
            out[extra] = _req_lines(value)
    return out


def _setup_py(text: str) -> dict[str, list[str]]:
    tree = ast.parse(text)
    consts: dict[str, object] = {}
    for node in tree.body:  # module-level NAME = [literal] that setup() may refer to
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                consts[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    out: dict[str, list[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup"):
            continue
        for kw in node.keywords:
            value = _literal(kw.value, consts)
            if kw.arg == "install_requires" and isinstance(value, (list, tuple)):
                out[""] = [str(v) for v in value]
            elif kw.arg == "tests_require" and isinstance(value, (list, tuple)):
                out["tests_require"] = [str(v) for v in value]
            elif kw.arg == "extras_require" and isinstance(value, dict):
                out.update({str(k): [str(v) for v in vs] for k, vs in value.items() if isinstance(vs, (list, tuple))})
    return out


def _literal(node: ast.AST, consts: dict[str, object]) -> object:
    if isinstance(node, ast.Name):
        return consts.get(node.id)
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _req_lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            out.append(line)
    return out
