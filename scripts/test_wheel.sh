#!/usr/bin/env bash
# `make test-wheel`: the wheel of `make wheel` (dist/dael-*.whl) installed into a fresh virtual environment outside
# the repository, with nothing but its own dependencies and pytest (no Rust, no torch, no source tree on the path),
# then `dael --help`, `import dael` and the smoke tests (tests/test_wheel.py and the numeric tests that need no
# reference package) run against it from that folder. The whole suite runs from the source tree (make test-python).
# Usage: bash scripts/test_wheel.sh [PYTHON] (the fresh environment's interpreter, >= 3.11; default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${1:-python3}
SMOKE=(tests/test_wheel.py tests/test_neighbors.py tests/test_entropy.py tests/test_screen.py)
wheels=(dist/dael-*.whl)
[ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || { echo "test-wheel: expected one dist/dael-*.whl (make wheel)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dael-wheel-XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
"$PY" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$repo/${wheels[0]}" pytest 2>&1 \
    | { grep -v "^WARNING: Location" || true; }  # (notes on this machine's local package indexes)
installed=$(($(date +%s) - start))
cd "$work"  # nothing of the repository on sys.path: the installed dael is what runs
clean=(env -u PYTHONPATH -u DAEL_REQUIRE_REFERENCES DAEL_WHEEL=1 OMP_NUM_THREADS=1)
"${clean[@]}" "$work/venv/bin/dael" --help > /dev/null
"${clean[@]}" "$work/venv/bin/python" -c "import dael, sys; print('test-wheel: dael', dael.__version__, 'from',
dael.__file__); sys.exit('torch' in sys.modules)"
"${clean[@]}" "$work/venv/bin/python" -m pytest -q -rs -p no:cacheprovider --rootdir "$work" \
    "${SMOKE[@]/#/$repo/}"
echo "test-wheel: installed in ${installed} s, smoke tests done in $(($(date +%s) - start)) s in all"
