#!/usr/bin/env bash
# `make wheel`: the abi3 wheel and the sdist of dael in dist/ (maturin, release build), then checks of the wheel:
#   - auditwheel: the platform tag in its name is the one its shared library allows;
#   - its Python tag (cpXY-abi3) is the requires-python of pyproject.toml (the oldest Python it imports on).
# Prints what it built, the wheel's size and the build time. Usage: bash scripts/wheel.sh [PYTHON] (default
# .venv/bin/python, the Python the wheel is built for: build with the oldest one you support).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
BIN=$(dirname "$PY")
start=$(date +%s)
rm -f dist/dael-*.whl dist/dael-*.tar.gz
export PYO3_PYTHON
PYO3_PYTHON=$(realpath "$PY")
"$BIN/maturin" build --release --quiet --interpreter "$PY" -o dist 2>&1 | grep -v "^\s*$" || true
"$BIN/maturin" sdist -o dist 2>&1 | grep -v "^\s*$" || true
wheel=$(ls dist/dael-*.whl)
sdist=$(ls dist/dael-*.tar.gz)
seconds=$(($(date +%s) - start))

# the platform tag must be what auditwheel finds (a wheel claiming an older glibc than it needs breaks there)
tag=$(basename "$wheel" .whl | cut -d- -f5)
"$BIN/auditwheel" show "$wheel" > dist/auditwheel.txt 2>&1 || { cat dist/auditwheel.txt >&2; exit 1; }
grep -q "consistent with the following platform tag: \"$tag\"" <(tr -s ' \n' ' ' < dist/auditwheel.txt) || {
    echo "wheel: $wheel is tagged $tag, but auditwheel says:" >&2; cat dist/auditwheel.txt >&2; exit 1; }

# the Python tag must agree with requires-python
python_tag=$(basename "$wheel" .whl | cut -d- -f3,4)
oldest=$("$PY" -c "import re, tomllib; spec = tomllib.load(open('pyproject.toml', 'rb'))['project']['requires-python']
print('cp' + ''.join(re.fullmatch(r'>=\s*(\d+)\.(\d+)', spec.split(',')[0].strip()).groups()) + '-abi3')")
[ "$python_tag" = "$oldest" ] || {
    echo "wheel: $wheel is $python_tag but pyproject.toml's requires-python means $oldest: build it with that" \
         "Python (bash scripts/wheel.sh /path/to/python3.${oldest:3:2}) or change requires-python" >&2; exit 1; }

echo "wheel: $wheel ($(du -k "$wheel" | cut -f1) KiB, $python_tag, $tag per auditwheel), $sdist" \
     "($(du -k "$sdist" | cut -f1) KiB), built in ${seconds} s"
