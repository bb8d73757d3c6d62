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
export BUDGETFLOW_CACHE := $(CACHE)
# the Docker engine scripts/setup_docker.sh starts (its own dockerd, no registry, no bridge network)
export DOCKER_HOST ?= unix:///run/budgetflow-docker.sock

.PHONY: setup setup-python demo test bench bench-search clean

# what the demo needs: the venv (with vLLM) and the small model, no root
setup-python:
	PYTHON=$(PYTHON) bash scripts/setup_python.sh $(VENV) dev,postgres,local
	$(VENV)/bin/budgetflow models prepare smollm2-135m

# what the tests need on top (root): PostgreSQL binaries, a Docker engine with the sandbox base image, pytest for the
# system interpreter, and the cached SWE task fixtures (QuixBugs repos, bugs injected into three real projects)
setup: setup-python
	bash scripts/setup_system.sh
	bash scripts/setup_docker.sh
	PY=$(PY) bash scripts/setup_swe_tasks.sh

# the main job on the embedded default: 20 HumanEval tasks, Qwen2.5-Coder-1.5B on vLLM (CPU), SQLite ledger, process
# sandbox, $0.05 priced by CPU-seconds; a second `make demo` finishes an interrupted run (or reprints its summary)
demo: setup-python
	$(VENV)/bin/budgetflow models prepare qwen2.5-coder-1.5b
	$(VENV)/bin/budgetflow run humaneval --model local/qwen2.5-coder-1.5b --budget-usd 0.05 --limit 20 \
	  --out runs/demo $(if $(wildcard runs/demo/run.json),--resume,)
	$(VENV)/bin/budgetflow ledger show --db runs/demo/ledger.db

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/bench_ledger.py
	$(PY) bench/bench_llm.py
	$(PY) bench/bench_sandbox.py

# issue-5 search benchmarks. The sample cache takes hours on a 2-core CPU the first time (resumable, kept under
# $(CACHE)/samples); the GSM8K run is resumable per problem (bench/results/search_gsm8k.jsonl).
bench-search: setup-python
	$(VENV)/bin/budgetflow models prepare qwen2.5-coder-1.5b
	$(PY) bench/sample_cache.py humaneval --model local/qwen2.5-coder-1.5b --samples 8
	$(PY) bench/sample_cache.py humaneval --model local/smollm2-135m --samples 16 --limit 20
	$(PY) bench/bench_search.py
	$(PY) bench/bench_search_gsm8k.py --problems 100 --tokens 640

clean:
	rm -rf runs bench/results .pytest_cache
