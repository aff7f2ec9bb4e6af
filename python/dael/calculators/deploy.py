"""Trained models on disk and as ASE calculators (nequip 0.19; `pip install "dael[train]"`).

A model is a dael model directory (its `model.nequip.zip`, else `run/best.ckpt`), a `.nequip.zip` package, a
`.ckpt` checkpoint or a compiled `.nequip.pt2` (ASE target). `resolve_parent` finds a warm-start model, `package`
packages a checkpoint (`nequip-package`), `load_calculator` loads a model as an ASE calculator (eagerly, or
AOTInductor-compiled), `time_calls` measures it, `compile_model` builds it for ASE or for LAMMPS' `pair_style
allegro` (`dael deploy`), `compiled_agreement` measures a compiled model against its eager self.
nequip's console scripts run through `run_logged`, with their output in a log file.

Foundation models come only from nequip.net, which dael never contacts: download the `.nequip.zip` where there
is internet and pass its local path.

Units: Å, eV, eV/Å, eV/Å³ (ASE's stress sign).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.units import GPa

from dael.util.threads import thread_env

__all__ = ["COMPILED", "NO_HUB", "PACKAGE", "TARGETS", "compile_model", "compiled_agreement", "compiled_metadata",
           "lammps_lines", "load_calculator", "nequip_script", "package", "resolve_parent", "run_logged", "time_calls",
           "with_calculator"]

PACKAGE = "model.nequip.zip"
COMPILED = ".nequip.pt2"
"""The suffix of an AOTInductor-compiled model (nequip-compile)."""
NO_HUB = ("foundation models (e.g. Allegro-OAM-L) are published on nequip.net, which dael never contacts: "
          "download the .nequip.zip on a machine with internet access and pass its local path")


def resolve_parent(source: str | Path) -> Path:
    """The absolute path of a warm-start model: a `.nequip.zip` package, a `.ckpt` checkpoint, or a dael model
    directory (its model.nequip.zip). ValueError for a hub id, FileNotFoundError for a missing path."""
    text = str(source)
    if text.startswith("nequip.net:") or "://" in text or re.fullmatch(r"[\w.-]+/[\w.-]+:[\w.-]+", text):
        raise ValueError(f"--from {text!r} looks like a model id, not a file; {NO_HUB}")
    path = Path(text).expanduser().resolve()
    if not path.exists():
        raise FileNotFoundError(f"--from {text}: no such file or directory; {NO_HUB}")
    if path.is_dir():
        if not (path / PACKAGE).is_file():
            raise ValueError(f"--from {text}: this directory holds no {PACKAGE} (not a dael model directory)")
        return path / PACKAGE
    if not (path.name.endswith(".nequip.zip") or path.suffix == ".ckpt"):
        raise ValueError(f"--from {text}: expected a .nequip.zip package, a .ckpt checkpoint or a dael model "
                         "directory")
    return path


def nequip_script(name: str) -> str:
    """The path of a nequip console script of this Python environment."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the training extra (pip install 'dael[train]')")
    return found


def run_logged(cmd: list[str], log: Path, threads: int, on_line: Callable[[str], None] | None = None,
               env: dict[str, str] | None = None) -> None:
    """Run `cmd` (with `threads` threads and the extra `env`), write its merged output to `log` as it comes,
    pass each line to `on_line`; RuntimeError with the output's tail when it fails."""
    environment = thread_env(threads, PYTHONUNBUFFERED="1", **(env or {}))
    with open(log, "w") as sink, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                  text=True, env=environment, bufsize=1) as proc:
        for line in proc.stdout:
            sink.write(line)
            if on_line is not None:
                on_line(line)
    if proc.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}); the end of {log}:\n{tail}")


def package(checkpoint: str | Path, target: str | Path, threads: int = 1) -> Path:
    """`nequip-package build checkpoint target` (target must end in .nequip.zip); returns target."""
    target = Path(target).resolve()
    run_logged([nequip_script("nequip-package"), "build", str(Path(checkpoint).resolve()), str(target)],
               target.with_name(target.name + ".log"), threads)
    target.with_name(target.name + ".log").unlink()
    return target


def _model_file(model: str | Path) -> Path:
    """The package (preferred) or best checkpoint of a model directory, or the file given."""
    path = Path(model).expanduser()
    if path.is_dir():
        for candidate in (path / PACKAGE, path / "run" / "best.ckpt"):
            if candidate.is_file():
                return candidate.resolve()
        raise FileNotFoundError(f"{path} holds neither {PACKAGE} nor run/best.ckpt: not a trained model "
                                "directory")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file or directory")
    return path.resolve()


TARGETS = {"ase": "ase", "lammps": "pair_allegro"}
"""`dael deploy --target` → nequip-compile's target: ASE's NequIPCalculator, or LAMMPS' `pair_style allegro`."""


def compile_model(model: str | Path, target: str = "ase", out: str | Path | None = None, device: str = "cpu",
                  threads: int = 1) -> Path:
    """AOTInductor build of a model (a dael model directory, `.nequip.zip` or `.ckpt`) for `target` (:data:`TARGETS`)
    on `device`, written to `out` (default beside the model: `<stem>.nequip.pt2` for ase, the file
    `load_calculator(compile=True)` loads; `<stem>-lammps.nequip.pt2` for lammps) and reused while newer than the
    model. Minutes on CPU; needs g++ and must run where the model will (the CPU's instruction set and the torch
    version are baked in). inductor's cache goes to .inductor-cache beside the output, not to /tmp."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")
    source = _model_file(model)
    if source.name.endswith(COMPILED):
        raise ValueError(f"{source} is compiled already: compile the model it was built from (a model folder, "
                         ".nequip.zip or .ckpt)")
    stem = source.name.removesuffix(".nequip.zip").removesuffix(".ckpt")
    out = Path(out) if out is not None else source.with_name(f"{stem}{'-lammps' * (target == 'lammps')}.nequip.pt2")
    if not out.name.endswith(".nequip.pt2"):
        raise ValueError(f"{out}: a compiled model's name must end in .nequip.pt2 (pair_allegro and nequip read "
                         "the extension)")
    if out.exists() and out.stat().st_mtime >= source.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    run_logged([nequip_script("nequip-compile"), str(source), str(out), "--mode", "aotinductor",
                "--device", device, "--target", TARGETS[target]], out.with_name(f"{out.name}.log"), threads,
               env={"TORCHINDUCTOR_CACHE_DIR": str(out.parent / ".inductor-cache")})
    return out


def compiled_metadata(path: str | Path) -> dict[str, str]:
    """The metadata nequip-compile stores in a `.nequip.pt2` (type_names, r_max in Å, num_types, model_dtype, the
    CPU instruction set, ...), read from the archive without torch."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith("_metadata.json")]
        if not names:
            raise ValueError(f"{path}: no nequip metadata inside (not a file made by nequip-compile)")
        return json.loads(archive.read(names[0]))


def lammps_lines(path: str | Path) -> str:
    """The LAMMPS input lines that run the compiled model `path` (pair_allegro; LAMMPS types numbered in the
    model's type order; metal units: Å, eV, ps)."""
    meta = compiled_metadata(path)
    return ("units metal\natom_style atomic\nnewton on\npair_style allegro\n"
            f"pair_coeff * * {Path(path).resolve()} {meta['type_names']}\n")


def load_calculator(model: str | Path, device: str = "cpu", threads: int | None = 1,
                    compile: bool = False) -> Calculator:
    """An ASE calculator (energy eV, forces eV/Å, stress eV/Å³) of a dael model directory, a `.nequip.zip`
    package or a `.ckpt` checkpoint, loaded eagerly, or of a compiled `.nequip.pt2` (ASE target). `threads`: torch
    intra-op threads of this process (None leaves them as they are). `compile=True` builds and loads an
    AOTInductor model instead (needs g++; takes minutes; TorchScript is refused by torch >= 2.10)."""
    path = _model_file(model)
    import torch
    from nequip.integrations.ase import NequIPCalculator

    if threads is not None:
        torch.set_num_threads(threads)
    if compile or path.name.endswith(COMPILED):
        compiled = path if path.name.endswith(COMPILED) else compile_model(path, "ase", threads=threads or 1)
        return NequIPCalculator.from_compiled_model(str(compiled), device=device,
                                                    chemical_species_to_atom_type_map=True)
    # set_global_state() is called inside: nequip's float64 defaults and TF32 off
    return NequIPCalculator._from_saved_model(str(path), device=device,
                                              chemical_species_to_atom_type_map=True)


def compiled_agreement(eager: Calculator, compiled: Calculator, atoms: Atoms, calls: int = 5) -> dict[str, float]:
    """How closely a compiled model reproduces its eager self on `atoms`, and how much faster it is: the largest
    differences in energy (meV/atom), force components (meV/Å) and stress components (GPa), and the median
    milliseconds per energy + forces + stress call of each (`time_calls`)."""
    a, b = with_calculator(atoms, eager), with_calculator(atoms, compiled)
    n = len(atoms)
    return {"energy_meV_per_atom": float(1e3 * abs(a.get_potential_energy() - b.get_potential_energy()) / n),
            "force_meV_per_A": 1e3 * float(np.abs(a.get_forces() - b.get_forces()).max()),
            "stress_GPa": float(np.abs(a.get_stress() - b.get_stress()).max() / GPa),
            "ms_eager": time_calls(eager, atoms, calls), "ms_compiled": time_calls(compiled, atoms, calls)}


def with_calculator(atoms: Atoms, calc: Calculator) -> Atoms:
    """A copy of `atoms` (without its reference results) that `calc` computes."""
    probe = atoms.copy()
    probe.calc = calc
    return probe


def time_calls(calc: Calculator, atoms: Atoms, calls: int = 20) -> float:
    """Median milliseconds per energy + forces + stress call on `atoms` over `calls` calls after a warm-up,
    each on a new geometry (nothing cached)."""
    probe = with_calculator(atoms, calc)
    times = []
    for k in range(calls + 1):
        probe.positions[0, 0] += 1e-4
        start = time.perf_counter()
        probe.get_potential_energy()
        probe.get_forces()
        probe.get_stress()
        if k:
            times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))
