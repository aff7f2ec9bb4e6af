#!/usr/bin/env bash
# The distillation on a GPU: `dael distill NaCl --teacher chgnet --repeats 2` (the README's NaCl base; on this
# 2-core machine 14.8 min) with the teacher's MD, the training and the base's timing on CUDA, as one command
# for the lent GPU machine. Prepare the wheels here first (bash scripts/device_wheels.sh), then call the
# device tool's run with command "bash benches/experiments/device_distill.sh", carry [".whl"] and a timeout of ~580 s.
# The distillation is resumable: if the command is stopped at its limit, the same call again (while the
# machine is still warm) goes on where it stopped. Writes device.txt (GPU, versions, wall time) and the
# base's distill.json (holdout errors against the teacher, speed of base and teacher per call) to $OUT.
# Environment: DEVICE (cuda; cpu for a dry run here), EPOCHS (200), WORKERS (8 trajectories in parallel),
# RUNS (folder of the run, kept between calls on a warm machine), SKIP_INSTALL=1 (use the installed dael).
set -euo pipefail
device=${DEVICE:-cuda}
runs=${RUNS:-/tmp/dael-device}
out=${OUT:-$runs/out}
mkdir -p "$runs" "$out"
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1
{
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    echo "cpus $(nproc --all)"
    python3 -c "import torch, dael, chgnet, nequip; print('python', __import__('sys').version.split()[0], 'torch',
        torch.__version__, 'cuda', torch.cuda.is_available(), 'nequip', nequip.__version__)"
} | tee "$out/device.txt"
cd "$runs"
[ -f nacl/campaign.yaml ] || dael init NaCl --dir nacl
start=$(date +%s)
dael distill nacl --teacher chgnet --repeats 2 --device "$device" --workers "${WORKERS:-8}" \
    --epochs "${EPOCHS:-200}" --out nacl-base ${DISTILL_ARGS:-}
echo "distill on $device: $(( $(date +%s) - start )) s wall (this call)" | tee -a "$out/device.txt"
cp nacl-base/distill.json "$out/"
