"""Python environments in the sandbox: built offline from the local wheelhouse (scripts/setup_swe_tasks.sh fills it),
cached by content hash, and run on both backends — the real process sandbox and the real Docker engine — read-only
and with no network interface but loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from budgetflow.sandbox import (
    ENV_MOUNT,
    EnvironmentBuildError,
    Limits,
    build_python_env,
    wheelhouse,
    with_environment,
)

REQS = ["face", "pytest"]
PINS = ["face==20.1.1", "boltons==23.1.1", "pytest==8.3.4"]
PROBE = ("import json, socket, sys, face, pytest\n"
         "try:\n"
         "    nics = sorted(n for _, n in socket.if_nameindex())\n"
         "except OSError as e:  # the process backend's seccomp filter refuses the socket itself\n"
         "    nics = 'no sockets: ' + str(e)\n"
         "print(json.dumps({'prefix': sys.prefix, 'face': face.__file__, 'pytest': pytest.__version__,\n"
         "                  'nics': nics}))\n")


def _need_wheels() -> Path:
    wheels = wheelhouse()
    if not any(wheels.glob("face-20.1.1-*.whl")):
        pytest.fail(f"the wheelhouse {wheels} lacks the pinned wheels: run scripts/setup_swe_tasks.sh (make test "
                    "does, before the tests)", pytrace=False)
    return wheels


@pytest.fixture(scope="module")
def offline_cache(tmp_path_factory):
    """A fresh cache root (nothing built yet) that installs from the real wheelhouse only; for this module only (the
    other tests read the real cache's fixtures)."""
    wheels = _need_wheels()
    cache = tmp_path_factory.mktemp("env-cache")
    saved = {k: os.environ.get(k) for k in ("BUDGETFLOW_CACHE", "BUDGETFLOW_WHEELS", "BUDGETFLOW_OFFLINE")}
    os.environ.update(BUDGETFLOW_CACHE=str(cache), BUDGETFLOW_WHEELS=str(wheels), BUDGETFLOW_OFFLINE="1")
    yield cache
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def face_env(offline_cache):
    """Built in a fresh network namespace (only a loopback that is down): it succeeds only if the build needs no
    network at all. Then reopened from the cache in this process."""
    code = ("import json; from budgetflow.sandbox import build_python_env\n"
            f"env = build_python_env({REQS!r}, constraints={PINS!r}, progress=print)\n"
            "print('ENV', env.model_dump_json())")
    proc = subprocess.run(["unshare", "--net", sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, env={**os.environ})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    built = json.loads(next(ln for ln in proc.stdout.splitlines() if ln.startswith("ENV "))[4:])
    assert built["built_now"] and not built["fetched"]
    assert "from local wheels" in proc.stdout  # the first build's progress and cost are shown
    again = build_python_env(REQS, constraints=PINS)
    assert again.key == built["key"] and not again.built_now  # the cache, not a second build
    return again


def test_an_environment_is_built_offline_once_and_keyed_by_content(face_env, offline_cache):
    assert Path(face_env.path).is_dir() and str(offline_cache) in face_env.path
    assert "face==20.1.1" in face_env.packages and "pytest==8.3.4" in face_env.packages
    assert face_env.build_cpu_seconds > 0 and face_env.build_seconds > 0
    other = build_python_env(["six"], constraints=["six==1.17.0"])  # another content: another environment
    assert other.key != face_env.key and other.built_now and "pytest==8.3.4" not in other.packages


def test_offline_a_package_the_wheelhouse_lacks_is_refused_with_what_to_do(offline_cache):
    with pytest.raises(EnvironmentBuildError) as err:
        build_python_env(["budgetflow-no-such-package-xyz==1.0"])
    msg = str(err.value)
    assert "budgetflow-no-such-package-xyz" in msg and "BUDGETFLOW_OFFLINE=1" in msg and "pip wheel" in msg
    assert not list((offline_cache / "envs").glob("*/manifest.json")) or all(
        "no-such" not in p.read_text() for p in (offline_cache / "envs").glob("*/manifest.json"))


@pytest.mark.parametrize("kind", ["process", "process-cold", "docker"])
def test_a_sandbox_runs_the_environment_read_only_and_without_network(kind, backends, face_env):
    base = backends.get(kind)
    base = getattr(base, "box", base)  # the Docker engine behind the variant
    # the backend's own interpreter has no face: only the environment brings it
    plain = base.run(["{python}", "-c", "import face"], limits=Limits(timeout_s=60))
    assert plain.exit_code != 0 and "face" in plain.stderr
    box = with_environment(base, face_env)
    assert with_environment(base, face_env) is box  # one warm sandbox (or image) per environment
    res = box.run(["{python}", "-c", PROBE], limits=Limits(timeout_s=60))
    assert res.exit_code == 0, res.stderr
    seen = json.loads(res.stdout)
    assert seen["prefix"] == ENV_MOUNT and seen["face"].startswith(ENV_MOUNT) and seen["pytest"] == "8.3.4"
    assert seen["nics"] == ["lo"] or seen["nics"].startswith("no sockets")  # no way out but loopback
    script = box.run_python(PROBE, limits=Limits(timeout_s=60))  # run_python runs in it too
    assert script.exit_code == 0 and json.loads(script.stdout)["prefix"] == ENV_MOUNT, script.stderr
    write = box.run(["{python}", "-c", f"open('{ENV_MOUNT}/lib/owned.py', 'w').write('x')"],
                    limits=Limits(timeout_s=60))
    assert write.exit_code != 0 and ("Read-only" in write.stderr or "Permission denied" in write.stderr)
    assert not list(Path(face_env.path).glob("lib/owned.py"))
    pytest_run = box.run(["pytest", "--version"], limits=Limits(timeout_s=60))  # its bin/ is first on PATH
    assert pytest_run.exit_code == 0 and "8.3.4" in (pytest_run.stdout + pytest_run.stderr)
