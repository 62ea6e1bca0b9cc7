# acqsim — every target creates .venv itself on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Exact versions of the test toolchain (regenerate with `make lock` after changing pyproject.toml).
LOCK   := requirements/constraints.txt

.PHONY: all install demo test lint typecheck unit bench bench-compare chaos clean lock

all: install

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test]'
	touch $(STAMP)

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^acqsim' > $(LOCK)

demo: $(STAMP)
	$(BIN)/acqsim demo --processes --web

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

# Before/after in one session: make bench-compare BASE=<rev> [ONLY=bench_e2e,bench_loadgen] [ROUNDS=3] [ARGS=...]
bench-compare: $(STAMP)
	$(BIN)/python -m bench --compare $(or $(BASE),main) --only $(or $(ONLY),bench_e2e,bench_loadgen) \
		--rounds $(or $(ROUNDS),3) --args="$(ARGS)"

# The long chaos run (60 s of purchases, every service killed -9 in turn); exit 0 only on a clean verdict.
chaos: $(STAMP)
	$(BIN)/acqsim chaos --duration 60 --rate 20 --kill hsm,ledger,frontend,nac

clean:
	rm -rf $(VENV) build *.egg-info
