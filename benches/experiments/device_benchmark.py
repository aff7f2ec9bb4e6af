"""Prepare a benchmark run for the GPU machine (benches/experiments/device_benchmark.sh): a copy of a campaign
folder (with another model in train.settings if asked), a copy of a benchmark folder's stored inputs (labelled pools,
holdouts, sets; no models) and, with --base, the model every benchmark model fine-tunes, all under OUT
(git-ignored there, e.g. .device/NAME) so that the device tool carries them.

    # another model, from scratch (experiments.md section 28)
    python benches/experiments/device_benchmark.py CAMPAIGN BENCH .device/NAME --model num_layers=2 \
        --model num_scalar_features=128 --model num_tensor_features=32 --workers 6
    # the campaign's model fine-tuned from its base, as `dael benchmark --from BASE` (section 29)
    python benches/experiments/device_benchmark.py CAMPAIGN BENCH .device/NAME --base BASE/model.nequip.zip --workers 12
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml

from dael.benchmark.pools import STORED_FILES, check_stored
from dael.cli.common import key_values

INPUTS = ("labels.db", "labels.done", "holdouts.json", "sets.json")
"""A benchmark folder's stored inputs beside its pools (copied when present)."""
BASE_FILE = "base.nequip.zip"
"""The base's name in OUT; benches/experiments/device_benchmark.sh fine-tunes from it when it is there."""


def prepare(campaign: Path, bench: Path, out: Path, model: dict, workers: int, base: Path | None = None) -> None:
    """Write out/campaign (campaign with train.settings updated by `model`, benchmark.workers), out/bench and,
    given a `base` (.nequip.zip), out/base.nequip.zip. A `model` with a `base` must keep the base's
    architecture, which the fine-tuning checks."""
    if base is not None and (base.suffix != ".zip" or not base.is_file()):
        raise SystemExit(f"--base {base}: not a packaged model file; give the base's model.nequip.zip "
                         "(what `dael distill` writes)")
    check_stored(bench)
    shutil.rmtree(out, ignore_errors=True)
    (out / "bench" / "pools").mkdir(parents=True)
    config = yaml.safe_load((campaign / "campaign.yaml").read_text())
    config["train"]["settings"] = {**config["train"]["settings"], **model}
    config["train"]["base"] = None  # the base, if any, travels as out/base.nequip.zip
    config["benchmark"]["workers"] = workers
    (out / "campaign").mkdir()
    (out / "campaign" / "campaign.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(campaign / "seeds.extxyz", out / "campaign" / "seeds.extxyz")
    for name in STORED_FILES:
        shutil.copy(bench / name, out / "bench" / name)
    for name in INPUTS:
        if (bench / name).exists():
            shutil.copy(bench / name, out / "bench" / name)
    if base is not None:
        shutil.copy(base, out / BASE_FILE)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    start = f"fine-tuned from {base}" if base is not None else "from scratch"
    print(f"{out}: campaign with train.settings {config['train']['settings']}, {start}, {workers} models at a "
          f"time; {size:.1f} MiB")


def ignore_in_git(out: Path) -> None:
    """Add out's top folder to .git/info/exclude when out lies in this checkout (run from its root), so that it
    travels to the GPU machine only when carried, as scripts/device_wheels.sh does for .whl/."""
    exclude = Path(".git") / "info" / "exclude"
    if out.is_absolute() or not exclude.parent.is_dir():
        return
    line = f"/{out.parts[0]}/"
    lines = exclude.read_text().splitlines() if exclude.exists() else []
    if line not in lines:
        with open(exclude, "a") as f:
            f.write(line + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("campaign", type=Path, help="campaign folder (campaign.yaml, seeds.extxyz)")
    parser.add_argument("bench", type=Path, help="benchmark folder of that campaign, pools labelled")
    parser.add_argument("out", type=Path, help="folder to write (e.g. .device/NAME)")
    parser.add_argument("--model", action="append", default=[], help="KEY=VALUE of dael.train.TrainSettings")
    parser.add_argument("--base", type=Path, help="model.nequip.zip every model fine-tunes (default: from scratch)")
    parser.add_argument("--workers", type=int, default=6, help="models trained at once")
    args = parser.parse_args()
    model = key_values(args.model, "--model", "--model num_layers=2")
    ignore_in_git(args.out)
    prepare(args.campaign, args.bench, args.out, model, args.workers, args.base)


if __name__ == "__main__":
    main()
