#!/usr/bin/env bash
# SWE-style task fixtures, made once and cached (reused on later runs, ~0.1 s):
#   - QuixBugs (pyimprove==0.0.3 wheel, downloaded into $BUDGETFLOW_CACHE/data) -> $BUDGETFLOW_CACHE/quixbugs
#   - pinned sdists (pip download --no-binary :all:) -> $BUDGETFLOW_CACHE/sdists, and the tasks injected into them
#     -> $BUDGETFLOW_CACHE/swe-tasks-<format>; three of the projects have runtime dependencies: their
#     environments are built once from the package registry into $BUDGETFLOW_CACHE/envs
# $BUDGETFLOW_CACHE defaults to ~/.cache/budgetflow. Needs root (the process sandbox) and scripts/setup_system.sh
# (python3-pytest, python3-pytest-timeout, git). First run: about 2-3 minutes on 2 cores.
set -euo pipefail
PY="${PY:-python}"
cd "$(dirname "$0")/.."
LITELLM_LOCAL_MODEL_COST_MAP=True "$PY" -m budgetflow swe fixtures
# The dependency projects' packages (pinned) as wheels in $BUDGETFLOW_CACHE/wheels: environments are installed from
# there with --no-index, so the tests (BUDGETFLOW_OFFLINE=1) build environments with no network at all.
LITELLM_LOCAL_MODEL_COST_MAP=True "$PY" -c '
from budgetflow.sandbox import fetch_wheels
from budgetflow.swe import SWE_PINS
fetch_wheels(sorted({p for pins in SWE_PINS.values() for p in pins}), progress=print)'
