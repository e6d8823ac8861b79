# One written-down command per job; CI runs the same ones.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup lab stop seed demo test check notebooks nbval docs bench lock clean help

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[notebooks,dev,docs,distributed]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install blogdata with its extras

help:  ## list the jobs
	@grep -E '^[a-z]+:.*## ' Makefile | sed -E 's/:.*## /\t/'

lab: $(STAMP)  ## the main job: embedded database, migrated, JupyterLab on your copies of the lessons (ARGS="--port 8890")
	$(BIN)/blogdata lab $(ARGS)

stop: $(STAMP)  ## stop the embedded PostgreSQL that `make lab` leaves running (its data stays)
	$(BIN)/blogdata db stop

seed: $(STAMP)  ## migrate and seed the configured database (ARGS="--users 1000 --reset")
	$(BIN)/blogdata seed $(ARGS)

demo: $(STAMP)  ## the tour in a terminal: tables and PNG charts in demo-output/ (ARGS="--out DIR")
	$(BIN)/blogdata demo $(ARGS)

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

docs: $(STAMP)  ## the notebooks' website in build/docs (sidebar, search; not re-run); fails on a broken link
	$(BIN)/python notebooks/docs.py

bench: $(STAMP)  ## every benchmark in benchmarks/, results into benchmarks/RESULTS.md
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[bench]'
	for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

lock: $(STAMP)  ## re-pin constraints.txt to what .venv has now
	$(BIN)/python -m pip install -q -e '.[notebooks,dev,docs,distributed,bench]'
	{ sed -n 1,2p constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
