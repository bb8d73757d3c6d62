# budgetflow: the two commands of the README are `make demo` and `make test`.
# Heavy reusable things live outside the checkout, under ~/.cache/budgetflow (reused when present).
CACHE ?= $(HOME)/.cache/budgetflow
VENV  ?= $(CACHE)/venv
PY    := $(VENV)/bin/python
PYTHON ?= python3

# Nothing phones home: LiteLLM reads its bundled price map; HF/vLLM/Ray stay offline and quiet.
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export VLLM_NO_USAGE_STATS := 1
export DO_NOT_TRACK := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: setup demo test bench clean

setup:
	bash scripts/setup_system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,postgres]'

demo: setup
	$(PY) examples/ledger_quickstart.py --db runs/quickstart/ledger.db
	$(VENV)/bin/budgetflow ledger show --db runs/quickstart/ledger.db

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/bench_ledger.py

clean:
	rm -rf runs bench/results .pytest_cache
