# One written-down command per job; CI runs the same ones.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lab test check notebooks nbval docs bench lock clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[notebooks,dev]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install blogdata with its extras

lab: $(STAMP)  ## the main job: embedded database, migrated, JupyterLab on notebooks/
	$(BIN)/blogdata lab

check: $(STAMP)  ## lint and type-check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP)  ## every test, then every notebook under strict nbval
	$(BIN)/pytest

notebooks: $(STAMP)  ## re-execute the notebooks (all, or NB="01 08") and store their outputs
	$(BIN)/python notebooks/execute.py $(NB)

nbval: $(STAMP)  ## validate the stored notebook outputs under strict nbval
	$(BIN)/pytest notebooks

docs: $(STAMP)  ## static HTML of the executed notebooks in build/docs; fails on a broken link
	$(BIN)/python notebooks/docs.py

bench: $(STAMP)  ## every benchmark in benchmarks/, results into benchmarks/RESULTS.md
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

lock: $(STAMP)  ## re-pin constraints.txt to what .venv has now
	$(BIN)/python -m pip install -q -e '.[notebooks,dev,bench]'
	{ sed -n 1,2p constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
