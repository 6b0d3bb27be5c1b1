# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test check bench clean

$(STAMP): pyproject.toml requirements/litellm.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# litellm first, checked against its hash (requirements/litellm.txt) on Linux x86-64
	if [ "$$(uname -sm)" = "Linux x86_64" ]; then \
		$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/litellm.txt; fi
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## the default study: 100,000 opinion agents gossiping to consensus on local Ray
	$(BIN)/moot run --agents 100000 --rounds 300 --seed 7 --log demo.duckdb

test: $(STAMP)  ## the whole suite
	$(BIN)/python -m pytest -q

check: $(STAMP)  ## lint, format and types
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)  ## benchmarks; each writes benchmarks/results/
	$(BIN)/python benchmarks/gossip_throughput.py
	$(BIN)/python benchmarks/fixed_cost.py
	$(BIN)/python benchmarks/plain_draws.py
	$(BIN)/python benchmarks/message_log.py
	$(BIN)/python benchmarks/swarm_grid.py
	$(BIN)/python benchmarks/llm_concurrency.py
	$(BIN)/python benchmarks/debate.py
	$(BIN)/python benchmarks/social_feed.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/telemetry.py
	$(BIN)/python benchmarks/durability.py
	$(BIN)/python benchmarks/analysis.py
	$(BIN)/python benchmarks/vectors.py
	$(BIN)/python benchmarks/narrator.py
	# Mesa only for this comparison, never a dependency of moot (3.3.1: the last for Python 3.11)
	$(BIN)/python -m pip install --quiet "mesa==3.3.1"
	$(BIN)/python benchmarks/vs_mesa.py

clean:
	rm -rf $(VENV) demo.duckdb demo.duckdb.parts .pytest_cache .mypy_cache .ruff_cache
