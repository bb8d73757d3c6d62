#!/usr/bin/env bash
# System packages budgetflow's tests and default jobs need. Idempotent: installs only what is missing.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# the process sandbox runs repository test suites with the system interpreter: it needs pytest + pytest-timeout
/usr/bin/python3 -c "import pytest" >/dev/null 2>&1 || need+=(python3-pytest)
/usr/bin/python3 -c "import pytest_timeout" >/dev/null 2>&1 || need+=(python3-pytest-timeout)
command -v git >/dev/null 2>&1 || need+=(git)
# the batch-run tests: the report opens in headless Chromium; the Ray cluster runs in a network namespace
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ip >/dev/null 2>&1 || need+=(iproute2)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "budgetflow needs these system packages: ${need[*]} (run: sudo apt-get install -y ${need[*]})" >&2
    exit 1
  fi
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
