"""Python environments for sandbox runs: a virtualenv built once from the package registry and reused.

``build_python_env(requirements, constraints=...)`` makes a virtualenv on the interpreter the sandboxes run
(``/usr/bin/python3``, the same Debian build as the Docker base image) and installs the requirements with pip from a
local wheelhouse only (``--no-index``, ``<cache>/wheels``): the install never touches the network. What the
wheelhouse lacks is fetched into it first, on the host, from the package registry (``pip wheel``: sdists are built
into wheels there) — unless ``BUDGETFLOW_OFFLINE=1``, where a missing package is an error that says so. Sandboxes
never reach the network: they run what was built. It is keyed by a content hash of what it installs and of that
interpreter's version, kept under ``<cache>/envs/<key>/`` (``venv/`` + ``manifest.json``, written last: a directory
without a manifest is an unfinished build and is redone), and built by one process at a time (a file lock).

Sandboxes run it at ``ENV_MOUNT``: the process backend bind-mounts the venv there read-only, the Docker backend
copies it there in an image layered on its base image (see ``Sandbox.with_environment``). A venv is relocatable for
``python -m ...``: its ``bin/python`` links to ``/usr/bin/python3`` and ``pyvenv.cfg`` sits beside ``bin/``.

The build runs pip on the host (package build scripts of the registry's packages, never model-written code); its
wall time and CPU-seconds are measured and kept in the manifest, and ``progress`` is told each stage.
"""
from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ._models import SandboxError

ENV_MOUNT = "/opt/budgetflow/env"  # where every backend puts an environment inside the sandbox
BASE_PYTHON = os.environ.get("BUDGETFLOW_ENV_PYTHON", "/usr/bin/python3")
_FORMAT = 2  # 2: console scripts run inside the sandbox
_MANIFEST = "manifest.json"
EnvProgress = Callable[[str], None]


class EnvironmentBuildError(SandboxError):
    """An environment could not be built; the message names the requirement pip refused and what to do."""


class PythonEnv(BaseModel):
    """A built environment: where its venv lives on the host and what is in it."""

    model_config = ConfigDict(frozen=True)

    key: str  # content hash of the interpreter version, requirements and constraints
    path: str  # the venv directory on the host
    python_version: str  # of the interpreter it runs on, e.g. "3.11.2"
    requirements: tuple[str, ...]
    constraints: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()  # what pip installed, name==version
    build_seconds: float = 0.0  # wall time of the build that made it
    build_cpu_seconds: float = 0.0  # CPU-seconds of that build (pip and every process it started)
    built_now: bool = False  # this call built it (False: found in the cache)
    fetched: bool = False  # its build fetched packages from the registry (False: the wheelhouse had them all)

    @property
    def sandbox_python(self) -> str:
        """The interpreter's path inside a sandbox running this environment."""
        return f"{ENV_MOUNT}/bin/python"

    def summary(self) -> str:
        how = (f"built in {self.build_seconds:.0f} s ({self.build_cpu_seconds:.1f} CPU-s"
               f"{', fetched from the registry' if self.fetched else ', from local wheels'})" if self.built_now
               else "cached")
        return f"environment {self.key[:12]}: {len(self.packages)} packages, {how}"


def env_vars(env: PythonEnv) -> dict[str, str]:
    """What a run in ``env`` gets in its environment: the venv's ``bin/`` first on PATH."""
    return {"PATH": f"{ENV_MOUNT}/bin:/usr/local/bin:/usr/bin:/bin", "VIRTUAL_ENV": ENV_MOUNT}


def _cache() -> Path:
    return Path(os.environ.get("BUDGETFLOW_CACHE") or Path.home() / ".cache" / "budgetflow")


def envs_root() -> Path:
    return _cache() / "envs"


def wheelhouse() -> Path:
    """The local wheels environments are installed from (``BUDGETFLOW_WHEELS``, default ``<cache>/wheels``)."""
    return Path(os.environ.get("BUDGETFLOW_WHEELS") or _cache() / "wheels")


def offline() -> bool:
    """Whether builds must not fetch anything (``BUDGETFLOW_OFFLINE=1``): only the wheelhouse is used."""
    return os.environ.get("BUDGETFLOW_OFFLINE", "").strip().lower() in ("1", "true", "yes")


@functools.cache
def base_python_version(python: str = BASE_PYTHON) -> str:
    """The full version of the interpreter environments are built on (part of every environment's key)."""
    try:
        out = subprocess.run([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        raise EnvironmentBuildError(f"cannot run {python} to build Python environments ({err}); install python3 "
                                    "(with its venv module) or set BUDGETFLOW_ENV_PYTHON") from None
    return out.stdout.strip()


def env_key(requirements: Sequence[str], constraints: Sequence[str] = (), python: str = BASE_PYTHON) -> str:
    """The content hash an environment is cached under."""
    blob = json.dumps({"format": _FORMAT, "python": base_python_version(python),
                       "requirements": sorted(set(requirements)), "constraints": sorted(set(constraints))},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached_python_env(key: str) -> PythonEnv | None:
    """The environment stored under ``key``, or None when it was never (completely) built."""
    try:
        data = json.loads((envs_root() / key / _MANIFEST).read_text())
        return PythonEnv.model_validate({**data, "built_now": False})
    except (OSError, ValueError):
        return None


def build_python_env(requirements: Sequence[str], *, constraints: Sequence[str] = (),
                     progress: EnvProgress | None = None, python: str = BASE_PYTHON) -> PythonEnv:
    """The environment with ``requirements`` installed (pip requirement strings, markers allowed), every package
    held to ``constraints`` (``name==version`` pins): from the cache, or built now. Thread- and process-safe."""
    reqs = tuple(dict.fromkeys(r.strip() for r in requirements if r.strip()))
    pins = tuple(dict.fromkeys(c.strip() for c in constraints if c.strip()))
    key = env_key(reqs, pins, python)
    found = cached_python_env(key)
    if found is not None:
        return found
    root = envs_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{key}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and then find it built
        found = cached_python_env(key)
        if found is not None:
            return found
        return _build(key, reqs, pins, python, progress or (lambda _msg: None))


def _build(key: str, reqs: tuple[str, ...], pins: tuple[str, ...], python: str, say: EnvProgress) -> PythonEnv:
    home = envs_root() / key
    shutil.rmtree(home, ignore_errors=True)  # an unfinished earlier build
    venv = home / "venv"
    home.mkdir(parents=True)
    started, cpu0 = time.monotonic(), _children_cpu()
    say(f"environment {key[:12]}: creating a virtualenv on {python} ({base_python_version(python)})")
    _run([python, "-m", "venv", "--without-pip", str(venv)], "create the virtualenv")
    vpy = str(venv / "bin" / "python")
    say(f"environment {key[:12]}: installing {len(reqs)} requirement(s) from the package registry: "
        + ", ".join(reqs))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as cf:
        cf.write("\n".join(pins) + "\n")
    wheels = wheelhouse()
    wheels.mkdir(parents=True, exist_ok=True)
    # pip of this interpreter drives the target venv (--python): the venv needs no pip of its own, and markers are
    # evaluated for the venv's interpreter
    pip = [sys.executable, "-m", "pip", "--python", vpy]
    common = ["--no-input", "--disable-pip-version-check", "--progress-bar", "off", "--find-links", str(wheels),
              *reqs] + (["-c", cf.name] if pins else [])
    shown = lambda line: say(f"environment {key[:12]}: {line}") if line.startswith(  # noqa: E731
        ("Collecting", "Installing", "Successfully", "Building wheel", "Saved")) else None
    fetched = False
    try:
        try:  # from the wheelhouse alone: no network
            _run([*pip, "install", "--no-index", *common], "install " + " ".join(reqs), say=shown)
        except EnvironmentBuildError as missing:
            if offline():
                raise EnvironmentBuildError(
                    f"{missing}\nBUDGETFLOW_OFFLINE=1: only the wheelhouse {wheels} is used. Put the wheels there "
                    f"(pip wheel -w {wheels} ...) or build once without BUDGETFLOW_OFFLINE.") from None
            say(f"environment {key[:12]}: fetching what {wheels} lacks from the package registry (on the host)")
            _run([*pip, "wheel", "--wheel-dir", str(wheels), "--prefer-binary", *common],
                 "fetch " + " ".join(reqs), say=shown)
            fetched = True
            _run([*pip, "install", "--no-index", *common], "install " + " ".join(reqs), say=shown)
    finally:
        os.unlink(cf.name)
    listing = _run([sys.executable, "-m", "pip", "--python", vpy, "list", "--format=freeze",
                    "--disable-pip-version-check"], "list the installed packages")
    packages = tuple(sorted(line for line in listing.splitlines() if "==" in line))
    _sandbox_shebangs(venv)
    _readable(venv)
    env = PythonEnv(key=key, path=str(venv), python_version=base_python_version(python), requirements=reqs,
                    constraints=pins, packages=packages, build_seconds=round(time.monotonic() - started, 2),
                    build_cpu_seconds=round(_children_cpu() - cpu0, 2), built_now=True,
                    fetched=fetched)
    tmp = home / (_MANIFEST + ".tmp")
    tmp.write_text(env.model_dump_json(indent=2, exclude={"built_now"}) + "\n")
    os.replace(tmp, home / _MANIFEST)  # the build is complete only now
    say(env.summary())
    return env


def fetch_wheels(requirements: Sequence[str], *, constraints: Sequence[str] = (), python: str = BASE_PYTHON,
                 progress: EnvProgress | None = None) -> Path:
    """Put wheels of ``requirements`` (and everything they need, for ``python``) into the wheelhouse, so that later
    builds of them need no network (``BUDGETFLOW_OFFLINE=1``). Fetches from the registry only what it lacks."""
    wheels = wheelhouse()
    wheels.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as cf:
        cf.write("\n".join(constraints) + "\n")
    say = progress or (lambda _msg: None)
    cmd = [sys.executable, "-m", "pip", "--python", python, "wheel", "--wheel-dir", str(wheels), "--find-links",
           str(wheels), "--no-input", "--disable-pip-version-check", "--progress-bar", "off", *requirements] \
        + (["-c", cf.name] if constraints else [])
    try:
        try:
            _run([*cmd[:6], "--no-index", *cmd[6:]], "find " + " ".join(requirements) + f" in {wheels}")
        except EnvironmentBuildError:
            if offline():
                raise
            say(f"fetching {len(requirements)} requirement(s) into {wheels} from the package registry")
            _run(cmd, "fetch " + " ".join(requirements),
                 say=lambda line: say(line) if line.startswith("Saved") else None)
    finally:
        os.unlink(cf.name)
    return wheels


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(cmd: list[str], what: str, say: Callable[[str], object] | None = None) -> str:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            stdin=subprocess.DEVNULL, preexec_fn=lambda: os.umask(0o022))
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if say is not None:
            say(line.strip())
    if proc.wait() != 0:
        tail = "".join(ln for ln in lines if not ln.startswith("WARNING: Location"))[-1500:]
        raise EnvironmentBuildError(f"could not {what} (exit {proc.returncode}):\n{tail.strip()}\nCheck the "
                                    "requirement names and pins, and that the package registry is reachable.")
    return "".join(lines)


def _sandbox_shebangs(venv: Path) -> None:
    """Console scripts (``bin/pytest``) name the venv's interpreter by its host path, which no sandbox has: point
    them at ENV_MOUNT, where every backend puts the venv (``#!…/python`` lines, and the ``#!/bin/sh`` + ``exec``
    form pip writes for long paths)."""
    host = re.compile(re.escape(f"{venv}/bin/python").encode() + rb"[0-9.]*")
    target = f"{ENV_MOUNT}/bin/python".encode()
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            data = script.read_bytes()
            head, rest = data[:512], data[512:]
            if head.startswith(b"#!") and host.search(head):
                script.write_bytes(host.sub(target, head) + rest)


def _readable(path: Path) -> None:
    """Every file readable (directories searchable) by the sandbox's unprivileged uid."""
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                mode = os.stat(p).st_mode
                os.chmod(p, mode | 0o444 | (0o111 if os.path.isdir(p) or mode & 0o100 else 0))
    os.chmod(path, 0o755)
