"""SWE-bench-style instances in, SWE-bench predictions out.

An instance file is JSONL, one instance per line, with SWE-bench's field names:

    {"instance_id": "glom__1", "repo": "repos/glom", "base_commit": "3f2a...", "problem_statement": "...",
     "FAIL_TO_PASS": "[\\"glom/test/test_basic.py::test_spec\\"]", "PASS_TO_PASS": [...], "environment": "auto"}

- ``repo``: a local directory (relative paths are read from the file's directory) — a git checkout, checked out at
  ``base_commit`` when one is given — or ``snapshot``: a ``.tar.gz``/``.zip`` of the repository at its base state.
  SWE-bench's own ``owner/name`` repos are not fetched (no network): give a local clone as ``repo_path``.
  Checkouts and snapshots are unpacked once into ``<cache>/swebench/`` by content, never modified afterwards.
- ``FAIL_TO_PASS`` / ``PASS_TO_PASS``: JSON strings (as SWE-bench ships them) or lists of pytest node ids.
- ``environment``: ``"auto"`` (the repository's metadata and test extras), a list of requirements, or an object
  with ``RepoEnvironment``'s fields; absent: the sandbox's interpreter. ``test_cmd``, ``hidden_tests`` (default
  true: FAIL_TO_PASS is for scoring only, as in SWE-bench) and ``project`` are optional.

Predictions are what the official harness reads: ``{"instance_id", "model_name_or_path", "model_patch"}`` per line,
the patch a ``git apply``-able diff against the instance's base state.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from ._environment import RepoEnvironment, detect_environment, metadata_files
from ._repo import DEFAULT_TEST_COMMAND
from ._schemas import RepoTask

PREDICTION_KEYS = ("instance_id", "model_name_or_path", "model_patch")


class SWEBenchError(ValueError):
    """An instance line cannot be turned into a task; the message names the file, line and field."""


def is_swebench_instance(obj: object) -> bool:
    """Whether a JSON object looks like an SWE-bench instance (rather than a budgetflow task line)."""
    return isinstance(obj, dict) and "instance_id" in obj and "problem_statement" in obj


def looks_like_swebench(path: str | os.PathLike[str]) -> bool:
    """Whether the first instance-or-task line of a JSONL file is an SWE-bench instance."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip() and not line.lstrip().startswith("#"):
                    return is_swebench_instance(json.loads(line))
    except (OSError, ValueError):
        return False
    return False


def load_swebench(path: str | os.PathLike[str], limit: int | None = None, *,
                  cache: str | os.PathLike[str] | None = None) -> list[RepoTask]:
    """The instances of an SWE-bench-style JSONL file as repo tasks (validated, repositories materialised)."""
    path = Path(path)
    base = path.parent
    out: list[RepoTask] = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if limit is not None and len(out) >= limit:
            break
        try:
            obj = json.loads(line)
        except ValueError as err:
            raise SWEBenchError(f"{path}:{no}: not JSON: {err}") from None
        try:
            out.append(instance_task(obj, base, cache=cache))
        except (KeyError, TypeError, ValueError, OSError) as err:
            raise SWEBenchError(f"{path}:{no}: {err}") from None
    return out


def instance_task(obj: dict[str, Any], base: Path, *, cache: str | os.PathLike[str] | None = None) -> RepoTask:
    """One instance as a RepoTask."""
    if not is_swebench_instance(obj):
        raise ValueError("an instance needs 'instance_id' and 'problem_statement'")
    iid = str(obj["instance_id"])
    repo = _materialise(obj, base, Path(cache) if cache else _cache_root() / "swebench")
    env = _environment(obj.get("environment"), repo, iid)
    cmd = obj.get("test_cmd") or obj.get("test_command")
    command = tuple(shlex.split(cmd) if isinstance(cmd, str) else cmd) if cmd else DEFAULT_TEST_COMMAND
    name = str(obj.get("repo") or obj.get("repo_path") or "").rstrip("/")
    project = str(obj.get("project") or (PurePosixPath(name).name if name else iid.split("__")[0]))
    return RepoTask(instance_id=iid, project=project, repo=str(repo), issue=str(obj["problem_statement"]),
                    test_command=command, fail_to_pass=_ids(obj.get("FAIL_TO_PASS"), "FAIL_TO_PASS"),
                    pass_to_pass=_ids(obj.get("PASS_TO_PASS"), "PASS_TO_PASS"),
                    hidden_tests=bool(obj.get("hidden_tests", True)), environment=env)


def swebench_prediction(instance_id: str, model: str, patch: str | None) -> dict[str, str]:
    """One line of a predictions file, as the SWE-bench harness reads it (a model URL is no part of its name)."""
    return {"instance_id": instance_id, "model_name_or_path": model.split("@")[0], "model_patch": patch or ""}


def write_swebench_predictions(rows: Iterable[dict[str, str]], path: str | os.PathLike[str]) -> Path:
    """Write prediction lines (later lines for the same instance replace earlier ones, as the harness does)."""
    latest = {r["instance_id"]: {k: r[k] for k in PREDICTION_KEYS} for r in rows}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in latest.values()))
    os.replace(tmp, path)
    return path


def _cache_root() -> Path:
    return Path(os.environ.get("BUDGETFLOW_CACHE") or Path.home() / ".cache" / "budgetflow")


def _ids(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError:
            raise ValueError(f"field {field!r}: a JSON list of test ids (as a string) or a list") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"field {field!r}: a list of test ids")
    return tuple(value)


def _environment(value: object, repo: Path, iid: str) -> RepoEnvironment | None:
    if value in (None, "", "none"):
        return None
    if value == "auto":
        return detect_environment(metadata_files(repo), project=iid.split("__")[0])
    if isinstance(value, list):
        return RepoEnvironment(requirements=tuple(str(v) for v in value))
    if isinstance(value, dict):
        return RepoEnvironment.model_validate(value)
    raise ValueError(f"field 'environment': 'auto', a list of requirements or an object, not {value!r}")


def _materialise(obj: dict[str, Any], base: Path, cache: Path) -> Path:
    """The instance's repository as a directory that is never modified: a plain directory as it is; a git checkout
    at ``base_commit`` or a snapshot archive unpacked once into the cache."""
    snapshot = obj.get("snapshot")
    if snapshot:
        src = _local(str(snapshot), base)
        digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
        return _unpacked(cache / f"snap-{digest}", lambda d: _extract(src, d))
    where = obj.get("repo_path") or obj.get("repo")
    if not where:
        raise ValueError("field 'repo' (or 'repo_path', or 'snapshot'): where the repository is")
    src = _local(str(where), base)
    if not src.is_dir():
        raise ValueError(f"field 'repo': {src} is not a directory (SWE-bench's GitHub repos are not fetched: "
                         "give a local clone)")
    commit = obj.get("base_commit")
    if not commit:
        return src.resolve()
    commit = str(commit)
    return _unpacked(cache / f"git-{hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:10]}-{commit[:16]}",
                     lambda d: _archive(src, commit, d))


def _local(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.exists():
        raise ValueError(f"{p} does not exist")
    return p


def _unpacked(dest: Path, fill) -> Path:
    repo = dest / "repo"
    if (dest / ".done").is_file():
        return repo
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "repo").mkdir(parents=True)
    fill(tmp / "repo")
    (tmp / ".done").write_text("")
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return repo


def _archive(src: Path, commit: str, dest: Path) -> None:
    proc = subprocess.run(["git", "-C", str(src), "archive", "--format=tar", commit], capture_output=True,
                          check=False)
    if proc.returncode != 0:
        raise ValueError(f"field 'base_commit': git archive {commit} in {src} failed: "
                         f"{proc.stderr.decode(errors='replace').strip()[:300]}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        tar.extractall(dest, members=[m for m in tar.getmembers() if m.isfile() or m.isdir()], filter="data")


def _extract(src: Path, dest: Path) -> None:
    if src.name.endswith(".zip"):
        with zipfile.ZipFile(src) as z:
            z.extractall(dest)
    else:
        with tarfile.open(src) as tar:
            tar.extractall(dest, members=[m for m in tar.getmembers() if m.isfile() or m.isdir()], filter="data")
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir():  # an archive of one top directory: that is the repository
        inner = entries[0]
        for child in list(inner.iterdir()):
            shutil.move(str(child), dest / child.name)
        inner.rmdir()
