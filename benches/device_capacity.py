"""Prepare a capacity run for the GPU machine (benches/device_capacity.sh): a copy of a campaign folder with
another model in train.settings, and a copy of a benchmark folder's stored inputs (labelled pools, holdouts,
sets; no models), both under OUT (git-ignored there, e.g. .device/NAME) so that the device tool carries them.

    python benches/device_capacity.py CAMPAIGN BENCH .device/NAME --model num_layers=2 \
        --model num_scalar_features=128 --model num_tensor_features=32 --workers 6
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import yaml

from dael.benchmark import STORED_FILES, check_stored
from dael.cli.labels import key_values

INPUTS = ("labels.db", "labels.done", "holdouts.json", "sets.json")


def prepare(campaign: Path, bench: Path, out: Path, model: dict, workers: int) -> None:
    """Write out/campaign (campaign with train.settings updated by `model`, benchmark.workers) and out/bench."""
    check_stored(bench)
    shutil.rmtree(out, ignore_errors=True)
    (out / "bench" / "pools").mkdir(parents=True)
    config = yaml.safe_load((campaign / "campaign.yaml").read_text())
    config["train"]["settings"] = {**config["train"]["settings"], **model}
    config["train"]["base"] = None  # another architecture cannot fine-tune the campaign's base: from scratch
    config["benchmark"]["workers"] = workers
    (out / "campaign").mkdir()
    (out / "campaign" / "campaign.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(campaign / "seeds.extxyz", out / "campaign" / "seeds.extxyz")
    for name in STORED_FILES:
        shutil.copy(bench / name, out / "bench" / name)
    for name in INPUTS:
        if (bench / name).exists():
            shutil.copy(bench / name, out / "bench" / name)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    print(f"{out}: campaign with train.settings {config['train']['settings']}, {workers} models at a time; "
          f"benchmark inputs {size:.1f} MiB")


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
    parser.add_argument("--workers", type=int, default=6, help="models trained at once")
    args = parser.parse_args()
    model = key_values(args.model, "--model", "--model num_layers=2")
    ignore_in_git(args.out)
    prepare(args.campaign, args.bench, args.out, model, args.workers)


if __name__ == "__main__":
    main()
