# The two commands: `make demo` and `make test`. Both set everything up first (idempotent).
PY := .venv/bin/python
export PYO3_PYTHON := $(CURDIR)/.venv/bin/python
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo test test-rust test-python test-wheel wheel lint bench clean

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/dael demo

test: setup lint test-rust test-python test-wheel

lint:
	.venv/bin/ruff check python tests benches

test-rust:
	cargo test --release --quiet

# DAEL_REQUIRE_REFERENCES=1: a test skipped for a missing reference package (libfp, FAISS, nequip, Dask,
# GPAW, LAMMPS) fails instead of skipping silently (tests/conftest.py)
test-python:
	DAEL_REQUIRE_REFERENCES=1 $(PY) -m pytest -q -n 2 tests  # two pytest-xdist workers: 10-13 min on 2 cores

# the abi3 wheel and the sdist in dist/ (maturin; auditwheel checks the platform tag): pip install dist/dael-*.whl
# needs no Rust. Build with the oldest Python the wheel is for (requires-python, 3.11).
wheel: setup
	bash scripts/wheel.sh $(PY)

# that wheel in a fresh virtual environment outside the repository (no Rust, no torch, no source tree), its smoke
# tests run against the installed package
test-wheel: wheel
	bash scripts/test_wheel.sh $(PY)

bench: setup
	$(PY) benches/neighbors.py
	$(PY) benches/fingerprints.py

clean:
	rm -rf target .venv .cargo python/dael/*.so dist
