#!/usr/bin/env bash
# A benchmark's training on a GPU: its training sets trained on CUDA (fine-tuned from a carried base, or from
# scratch, e.g. with another Allegro) and evaluated on every stored set, without the oracle (`dael benchmark
# --no-oracle`), as one command for the lent GPU machine (experiments.md sections 28–29). The reference oracle
# (LAMMPS) does not travel, so the pools must be explored and labelled here first, and the model's own MD is
# added here afterwards.
#
# Here, before the call:
#   1. a benchmark of the system on this machine (its pools labelled, its sets drawn: sets.json);
#   2. bash scripts/device_wheels.sh;
#   3. a campaign folder whose campaign.yaml has the model in train.settings (and benchmark.workers: the
#      models trained at once), a copy of the benchmark folder's stored inputs and, to fine-tune, the base as
#      base.nequip.zip, all under .device/ (git-ignored): `python benches/experiments/device_benchmark.py CAMPAIGN BENCH
#      .device/NAME [--model num_layers=2 ...] [--base BASE/model.nequip.zip]` writes them.
# The call: device tool run with command "bash benches/experiments/device_benchmark.sh .device/NAME", carry [".whl",
# ".device"], timeout ~590 s. It writes to $OUT: device.txt (GPU, versions, wall time), benchmark.log and the
# trained models with their evaluations as models.tgz.part-* (cat them, untar into the benchmark copy here, then
# `dael benchmark CAMPAIGN --out BENCH-COPY` with the oracle adds the model's own MD without retraining).
# Environment: DEVICE (cuda; cpu for a dry run), STRATEGIES (mixed,random-anchored,random), SIZES (800),
# DRAWS (2), LIMIT (seconds for the training, 470), SKIP_INSTALL=1 (use the installed dael), PACKAGES=0 (leave
# the trained models' packages out of models.tgz: ~1 MB each, and $OUT brings back 64 MiB at most; their
# evaluations come back, the model's own MD can then not be added here).
set -euo pipefail
src=${1:?usage: bash benches/experiments/device_benchmark.sh .device/NAME}
device=${DEVICE:-cuda}
out=${OUT:-/tmp/dael-benchmark-out}
run=/tmp/dael-benchmark
mkdir -p "$out" "$run"
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 RAYON_NUM_THREADS=4 PYTHONUNBUFFERED=1
{
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    echo "cpus $(nproc --all)"
    python3 -c "import torch, dael, nequip; print('python', __import__('sys').version.split()[0], 'torch',
        torch.__version__, 'cuda', torch.cuda.is_available(), 'nequip', nequip.__version__)"
} | tee "$out/device.txt"
rm -rf "$run/campaign" "$run/bench" "$run/base.nequip.zip"
cp -r "$src/campaign" "$run/campaign"
cp -r "$src/bench" "$run/bench"
base=""
if [ -f "$src/base.nequip.zip" ]; then cp "$src/base.nequip.zip" "$run/"; base="$run/base.nequip.zip"; fi
start=$(date +%s)
set +e
# dael's Python API, not its CLI: the machine's own typer (not the one dael is tested with) can differ
timeout "${LIMIT:-470}" python3 - "$run/campaign" "$run/bench" "$device" "${STRATEGIES:-mixed,random-anchored,random}" \
    "${SIZES:-800}" "${DRAWS:-2}" "$base" > "$out/benchmark.log" 2>&1 <<'PY'
import sys
from dael.benchmark.run import run_benchmark
from dael.campaign.config import load_or_preset, source
folder, bench, device, strategies, sizes, draws, base = sys.argv[1:]
campaign, seeds = load_or_preset(folder)
campaign.train.settings["device"] = device
campaign.benchmark.sizes, campaign.benchmark.draws = [int(n) for n in sizes.split()], int(draws)
print("report:", run_benchmark(campaign, seeds, bench, strategies=strategies.split(","), where=source(folder),
                               base=base or None, oracle=False), flush=True)
PY
status=$?
set -e
echo "benchmark --no-oracle on $device: exit $status, $(( $(date +%s) - start )) s wall" | tee -a "$out/device.txt"
tail -n 20 "$out/benchmark.log"
cd "$run/bench"
# what the models are judged by and what the oracle run here needs; not their training data or checkpoints
package=(-o -name model.nequip.zip)
[ "${PACKAGES:-1}" = 0 ] && package=()
find models -maxdepth 2 \( -name evaluation.json -o -name metrics.json -o -name history.json \
    -o -name config.yaml -o -name train.log "${package[@]}" \) > "$run/files"
ls records.csv results.md 2>/dev/null >> "$run/files" || true
tar czf - -T "$run/files" | split -b 15m - "$out/models.tgz.part-"
ls -l "$out"
