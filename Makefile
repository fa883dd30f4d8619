# sparktf: two commands do everything on a fresh machine (Python 3.10+ and Java 17+ needed).
#   make demo   runs the main job on the embedded default (local Spark, bundled digits)
#   make test   runs the lint and the test suite
# Both create the virtual environment .venv from pyproject.toml on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sparktf-installed

.PHONY: demo test test-fast test-local lint format bench docs clean

# PYTHONWARNINGS below: setuptools prints an information-only notice on every editable install
# (a folder named like the package would shadow it); it is not about this project's metadata.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sparktf demo --overwrite

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The unit tier only: no Spark session (under a minute).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m unit -p no:cacheprovider $(PYTEST_ARGS)

# The unit and spark tiers: everything on the suite's own local[2] session, without the jobs
# that start a cluster or a Spark Connect server of their own (tiers cluster and connect).
test-local: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not cluster and not connect" -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_tuning.py
	$(BIN)/python benchmarks/bench_transformer.py
	$(BIN)/python benchmarks/bench_halving.py

docs: $(STAMP)
	$(BIN)/python docs/gen_api.py
	$(BIN)/python -m sparktf.param.stubs

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
