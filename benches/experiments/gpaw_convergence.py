"""Are the gpaw oracle's settings converged? Label a few structures at the settings under test and at tighter
reference settings, and compare energies (per atom, the mean offset removed: only energy differences between
structures matter to a potential), forces and stress.

    python benches/experiments/gpaw_convergence.py POOL.extxyz --count 8 \
        --test ecut=300 density=2.5 --reference ecut=450 density=3.5 --out convergence.json

The structures are spread over the pool's (phase, pressure, temperature) groups. Criteria (stated before the
run): max |ΔE| ≤ 1 meV/atom after removing the mean offset, max |ΔF| component ≤ 20 meV/Å.
Units: meV/atom, meV/Å, GPa; seconds per structure on one core.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from dael.calculators.dft import GPAWOracle

ENERGY_LIMIT = 1.0  # meV/atom
FORCE_LIMIT = 20.0  # meV/Å


def settings(pairs: list[str]) -> dict:
    """ecut=E density=D → GPAWOracle overrides."""
    values = dict(p.split("=", 1) for p in pairs)
    return {"ecut": float(values["ecut"]), "kpts": {"density": float(values["density"]), "gamma": True}}


def spread(structures: list, count: int) -> list:
    """`count` structures taken round-robin over the (phase, pressure, temperature) groups."""
    groups: dict[tuple, list] = {}
    for atoms in structures:
        info = atoms.info
        groups.setdefault((info.get("phase"), info.get("pressure_GPa"), info.get("temperature_K")), []).append(atoms)
    picked, depth = [], 0
    while len(picked) < count and any(len(g) > depth for g in groups.values()):
        picked += [g[depth] for g in groups.values() if len(g) > depth]
        depth += 1
    return picked[:count]


def label(structures: list, overrides: dict, cache: Path | None = None) -> list[dict]:
    """Energy per atom (eV), forces, stress and seconds of each structure; with `cache` (an extxyz), read from it
    when it holds these structures, else labelled and written there."""
    if cache is not None and cache.exists():
        done = read(cache, ":")
        if len(done) == len(structures):
            return [{"energy": a.get_potential_energy() / len(a), "forces": a.get_forces(), "stress": a.get_stress(),
                     "seconds": float(a.info["seconds"])} for a in done]
    calc = GPAWOracle(**overrides)
    out = []
    for atoms in structures:
        work = atoms.copy()
        work.calc = calc
        start = time.perf_counter()
        out.append({"energy": work.get_potential_energy() / len(work), "forces": work.get_forces(),
                    "stress": work.get_stress(), "seconds": time.perf_counter() - start})
    if cache is not None:
        labelled = []
        for atoms, r in zip(structures, out, strict=True):
            copy = atoms.copy()
            copy.calc = SinglePointCalculator(copy, energy=r["energy"] * len(copy), forces=r["forces"],
                                              stress=r["stress"])
            copy.info["seconds"] = r["seconds"]
            labelled.append(copy)
        write(cache, labelled, format="extxyz")
    return out


def compare(test: list[dict], ref: list[dict]) -> dict:
    de = np.array([t["energy"] - r["energy"] for t, r in zip(test, ref, strict=True)])
    df = np.concatenate([(t["forces"] - r["forces"]).ravel() for t, r in zip(test, ref, strict=True)])
    ds = np.concatenate([(t["stress"] - r["stress"]) for t, r in zip(test, ref, strict=True)]) * 160.21766
    centred = 1e3 * np.abs(de - de.mean())
    per_structure = [{"energy_meV_atom": float(e),
                      "force_max_meV_A": 1e3 * float(np.abs(t["forces"] - r["forces"]).max())}
                     for e, t, r in zip(1e3 * (de - de.mean()), test, ref, strict=True)]
    return {"per_structure": per_structure, "energy_offset_meV_atom": 1e3 * float(de.mean()),
            "energy_max_meV_atom": float(centred.max()),
            "energy_mae_meV_atom": float(centred.mean()), "force_max_meV_A": 1e3 * float(np.abs(df).max()),
            "force_mae_meV_A": 1e3 * float(np.abs(df).mean()), "stress_max_GPa": float(np.abs(ds).max()),
            "stress_mae_GPa": float(np.abs(ds).mean()),
            "converged": bool(centred.max() <= ENERGY_LIMIT and 1e3 * np.abs(df).max() <= FORCE_LIMIT)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pool")
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--test", nargs="+", action="append", required=True, help="ecut=E density=D (repeatable)")
    parser.add_argument("--reference", nargs="+", required=True)
    parser.add_argument("--out", default="convergence.json")
    args = parser.parse_args()
    structures = spread(read(args.pool, ":"), args.count)
    for atoms in structures:
        atoms.calc = None
    ref = label(structures, settings(args.reference), Path(args.out).with_suffix(".reference.extxyz"))
    report = {"structures": len(structures), "reference": args.reference,
              "reference_seconds": float(np.mean([r["seconds"] for r in ref])), "tests": []}
    for pairs in args.test:
        test = label(structures, settings(pairs))
        report["tests"].append({"settings": pairs, "seconds": float(np.mean([t["seconds"] for t in test])),
                                **compare(test, ref)})
        print(json.dumps({k: v for k, v in report["tests"][-1].items() if k != "per_structure"}))
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
