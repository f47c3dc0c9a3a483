# The two commands: `make demo` (main job) and `make test` (tests). Each sets up .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-slow bench clean

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(PY) examples/demo.py --out runs/demo

test: setup
	$(VENV)/bin/ruff check anil_edge tests examples
	$(VENV)/bin/mypy
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

# Benchmarks unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which this machine sets for old
# OpenBLAS builds and which slow a current numpy.
bench: setup
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(VENV)/bin/anil-edge bench head
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(VENV)/bin/anil-edge bench training
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(VENV)/bin/anil-edge bench export

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
