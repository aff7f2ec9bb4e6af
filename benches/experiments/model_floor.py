"""Is the model the floor? Random-MD training sets of a finished `dael benchmark` folder, trained with the
benchmark's tiny Allegro and with a larger one, evaluated on the same test set (issue: random MD must still
improve with N, else the model, not the data, limits every curve).

Usage: python benches/experiments/model_floor.py BENCHMARK_FOLDER SYSTEM [--sizes 400 800] [--draw 0]
Prints the test-set energy / force / stress MAE (meV/atom, meV/Å, meV/Å³) and the training time per model.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dael.benchmark.run import epochs_for
from dael.benchmark.strategies import POOL_KEYS
from dael.campaign.presets import preset
from dael.data.dataset import Dataset
from dael.train import TrainSettings, train
from dael.train.metrics import evaluate

MODELS = {
    "tiny (l1, 1×16/8, 4.5 Å)": {},
    "larger (l2, 1×64/16, 5 Å)": {"l_max": 2, "num_scalar_features": 64, "num_tensor_features": 16, "r_max": 5.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("system")
    parser.add_argument("--sizes", type=int, nargs="+", default=[400, 800])
    parser.add_argument("--draw", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--min-steps", type=int, default=2000)
    parser.add_argument("--with-tiny", action="store_true", help="retrain the tiny model too (the benchmark's "
                        "own random models are the tiny model's numbers)")
    args = parser.parse_args()
    campaign = preset(args.system)
    db = Dataset(args.folder / "labels.db")
    data = {name: db.labelled(sources=[name]) for name in ("random", "test")}
    sets = json.loads((args.folder / "sets.json").read_text())[f"random/{args.draw}"]

    def one(job: tuple) -> str:
        label, n = job
        members = [data[POOL_KEYS[k[0]]][int(k[1:])] for k in sets[str(n)]]
        settings = TrainSettings(epochs=args.epochs, seed=campaign.seed, **MODELS[label])
        settings.epochs = epochs_for(n, settings, args.epochs, args.min_steps)
        out = args.folder / "floor" / f"{'tiny' if not MODELS[label] else 'larger'}-N{n}-d{args.draw}"
        start = time.perf_counter()
        train(members, out, settings=settings, progress=None, overwrite=True)
        r = evaluate(out, data["test"])
        return (f"{label:28s} N={n:4d}: test E {r['energy_mae']:.2f} meV/atom, F {r['force_mae']:.1f} meV/Å, "
                f"S {r['stress_mae']:.2f} meV/Å³ ({(time.perf_counter() - start) / 60:.1f} min)")

    jobs = [(label, n) for n in args.sizes for label in MODELS if MODELS[label] or args.with_tiny]
    with ThreadPoolExecutor(2) as pool:
        for line in pool.map(one, jobs):
            print(line, flush=True)


if __name__ == "__main__":
    main()
