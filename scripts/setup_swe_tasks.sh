#!/usr/bin/env bash
# SWE-style task fixtures, made once and cached (reused on later runs, ~0.1 s):
#   - QuixBugs (pyimprove==0.0.3 wheel, downloaded into $BUDGETFLOW_CACHE/data) -> $BUDGETFLOW_CACHE/quixbugs
#   - pinned sdists (pip download --no-binary :all:) -> $BUDGETFLOW_CACHE/sdists, and the tasks injected into them
#     -> $BUDGETFLOW_CACHE/swe-tasks
# $BUDGETFLOW_CACHE defaults to ~/.cache/budgetflow. Needs root (the process sandbox) and scripts/setup_system.sh
# (python3-pytest, python3-pytest-timeout, git). First run: about 2-3 minutes on 2 cores.
set -euo pipefail
PY="${PY:-python}"
cd "$(dirname "$0")/.."
LITELLM_LOCAL_MODEL_COST_MAP=True "$PY" -m budgetflow swe fixtures
