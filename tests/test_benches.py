"""The benchmarks in benches/: the shared harness's pure functions, and the quick modes of the scripts that
finish in seconds, run as subprocesses, printing their anchor tools' numbers and the ratios to them."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

BENCHES = Path(__file__).resolve().parents[1] / "benches"


def _load_harness() -> ModuleType:
    """benches/harness.py as a module, without putting benches/ on sys.path."""
    spec = importlib.util.spec_from_file_location("benches_harness", BENCHES / "harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


harness = _load_harness()


# --------------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------------


def test_table_is_markdown_with_aligned_formatted_columns() -> None:
    text = harness.table([("dael", 15036.4, "2.75×"), ("vesin", 5463.0, None)],
                         ["tool", ("structures/s", ",.0f"), ("× vesin", "")])
    lines = text.splitlines()
    assert lines == [
        "| tool  | structures/s | × vesin |",
        "|-------|-------------:|--------:|",
        "| dael  |       15,036 |   2.75× |",
        "| vesin |        5,463 |         |",
    ]
    assert len({len(line) for line in lines}) == 1


def test_table_leaves_strings_in_number_columns_and_widens_short_headers() -> None:
    text = harness.table([("C 64", 93, "2,214 (2P)")], ["case", ("n", "d"), ("2c", ",.0f")])
    assert text.splitlines()[1] == "|------|----:|-----------:|"
    assert text.splitlines()[2] == "| C 64 |  93 | 2,214 (2P) |"


def test_measure_warms_up_times_and_keeps_values() -> None:
    calls = []
    timing = harness.measure(lambda: calls.append(len(calls)) or len(calls), repeat=3, warmup=2, count=10)
    assert calls == [0, 1, 2, 3, 4]
    assert timing.values == (1, 2, 3, 4, 5) and timing.value == 5
    assert timing.passes == 3 and all(t >= 0 for t in timing.times)
    assert timing.best == min(timing.times) and timing.best <= timing.median
    assert timing.rate == pytest.approx(10 / timing.best)


def test_measure_stops_after_max_seconds_but_times_at_least_once() -> None:
    timing = harness.measure(lambda: time.sleep(0.02), repeat=100, max_seconds=0.05)
    assert 1 <= timing.passes <= 4
    assert harness.measure(lambda: None, repeat=0).passes == 1
    seconds = harness.timed(lambda: time.sleep(0.01), repeat=2, warmup=1)
    assert 0.009 < seconds < 1.0


def test_ratio_fastest_gmean() -> None:
    assert harness.ratio(3.0, 2.0) == "1.50×"
    assert harness.ratio(100.0, 3.0, 0) == "33×"
    slow, fast = harness.Timing((2.0,), count=4), harness.Timing((1.0,), count=4)
    assert harness.fastest(("1P", slow), {"2P": fast}) == ("2P", fast)
    assert harness.fastest(("1T", slow), {"2T": fast}, threshold=2.5) == ("1T", slow)
    assert harness.gmean([1.0, 4.0, 16.0]) == pytest.approx(4.0)


def test_parser_quick_sets_the_small_sizes() -> None:
    parser = harness.BenchParser("Title line.\n\nMore.", n=20, workers=[1])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    assert parser.description == "Title line."
    assert vars(parser.parse_args([])) == {"quick": False, "n": 200, "workers": [1, 2]}
    assert vars(parser.parse_args(["--quick"])) == {"quick": True, "n": 20, "workers": [1]}
    assert "--n 20, --workers 1" in parser.format_help().replace("\n", " ").replace("  ", " ")


def test_perturbed_is_deterministic_and_strains_and_rattles() -> None:
    import numpy as np
    from ase.build import bulk

    base = bulk("Si", "diamond", a=5.43, cubic=True)
    a = harness.perturbed(base, np.random.default_rng(0), strain=0.03, rattle=(0.02, 0.3))
    b = harness.perturbed(base, np.random.default_rng(0), strain=0.03, rattle=(0.02, 0.3))
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.cell.array, b.cell.array)
    assert not np.allclose(a.cell.array, base.cell.array)
    rattled = harness.perturbed(base, np.random.default_rng(0), rattle=0.05)
    assert np.array_equal(rattled.cell.array, base.cell.array)
    assert 0 < np.abs(rattled.positions - base.positions).max() < 0.5


def test_header_names_machine_versions_threads() -> None:
    text = harness.header("a title", tools=("ase", "no-such-package"))
    lines = text.splitlines()
    assert lines[0] == "# a title"
    assert lines[1].startswith("# machine: ") and f"{harness.usable_cores()} usable cores" in lines[1]
    assert "numpy " in lines[2] and "dael " in lines[2] and "no-such-package not installed" in lines[2]
    assert lines[3].startswith("# threads: ")


def test_set_threads_reaches_every_pool() -> None:
    """In a fresh process (it changes global state): the variables, loaded BLAS/OpenMP, dael's rayon count."""
    code = ("import harness, numpy, dael, os, threadpoolctl; harness.set_threads(1); "
            "print(os.environ['OMP_NUM_THREADS'], os.environ['RAYON_NUM_THREADS'], dael.get_num_threads(), "
            "{p['num_threads'] for p in threadpoolctl.threadpool_info()})")
    out = subprocess.run([sys.executable, "-c", code], cwd=BENCHES, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    assert out.split() == ["1", "1", "1", "{1}"]


# --------------------------------------------------------------------------------------------------
# Quick modes
# --------------------------------------------------------------------------------------------------


def run_quick(script: str) -> str:
    """Run `benches/<script> --quick` (1 OpenMP thread) and return its standard output; it must exit 0."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, str(BENCHES / script), "--quick"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, f"{script} --quick failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.startswith("# ") and "\n# machine: " in done.stdout
    return done.stdout


def ratio_lines(output: str, anchor: str) -> list[str]:
    """The lines that name `anchor` and print a ratio such as 2.98×."""
    return [line for line in output.splitlines() if anchor in line and re.search(r"\d×", line)]


def finite_ratios(line: str) -> list[float]:
    values = [float(v) for v in re.findall(r"(\d+(?:\.\d+)?)×", line)]
    assert values and all(math.isfinite(v) and v > 0 for v in values), line
    return values


def test_neighbors_quick() -> None:
    for package in ("vesin", "matscipy"):
        pytest.importorskip(package)
    out = run_quick("neighbors.py")
    assert "MISMATCH" not in out
    assert out.count("batched == per-structure: OK") == 3
    for anchor in ("vesin", "matscipy", "ase"):
        lines = ratio_lines(out, f"dael batched / {anchor}")
        assert len(lines) == 1 and len(finite_ratios(lines[0])) == 2
        assert ratio_lines(out, f"dael per-structure / {anchor}")
    summary = [line for line in out.splitlines() if line.startswith("Summary: dael batched")]
    assert len(summary) == 1 and len(finite_ratios(summary[0])) == 6


def test_fingerprints_quick() -> None:
    pytest.importorskip("libfp")
    out = run_quick("fingerprints.py")
    assert "MISMATCH" not in out and "DO NOT" not in out
    rows = [line for line in out.splitlines() if re.match(r"\| (Si|C) \d+ ", line)]
    assert len(rows) == 6 and all(len(finite_ratios(row)) == 4 for row in rows)
    summary = ratio_lines(out, "libfp on 1 core")
    assert len(summary) == 1 and summary[0].startswith("Summary: dael batched") and "equal libfp" in summary[0]


def test_label_quick() -> None:
    from dael.calculators.lammps import import_lammps

    try:
        import_lammps()
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"LAMMPS unavailable: {exc}")
    out = run_quick("label.py")
    assert len(ratio_lines(out, "anchor: direct calls")) == 1
    rows = [line for line in out.splitlines() if line.startswith("| label")]
    assert len(rows) == 3 and all(len(finite_ratios(row)) == 1 for row in rows)


def test_entropy_quick() -> None:
    pytest.importorskip("scipy")
    out = run_quick("entropy.py")
    assert len(ratio_lines(out, "dael / scipy cKDTree")) == 1
    assert "picks in common" in out
    quests = importlib.util.find_spec("quests") is not None
    assert len(ratio_lines(out, "dael / QUESTS")) == (1 if quests else 0)
    assert "structures/s" in out and "peak memory" in out
