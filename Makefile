# The quick start is two commands: `make run` and `make test`. Each sets up .venv itself.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest soak bench compiled pure clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebook,ray]'
	touch $(STAMP)

## Backtest the bundled example IdeaCard on the built-in data.
run: $(STAMP)
	$(BIN)/replay run

## ruff + mypy + pytest (the soak campaigns excluded; see `make soak`).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not soak"

## Long soak, fuzz and kill campaigns.
soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak

## Benchmarks: JSON lines on stdout.
bench: $(STAMP)
	@for b in tools/bench_*.py; do $(BIN)/python $$b || exit 1; done

## Opt-in: the hot modules built with mypyc into .compiled/, used only with REPLAY_COMPILED=1
## and only while their sources are unchanged (see README "Speed").
compiled: $(STAMP)
	$(BIN)/python tools/build_compiled.py

## Back to pure Python only: remove the compiled build.
pure:
	rm -rf .compiled

clean:
	rm -rf $(VENV) runs .mypy_cache .ruff_cache .pytest_cache .compiled
