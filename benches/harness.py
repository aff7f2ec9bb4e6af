"""The harness the benchmarks in benches/ share: thread settings, timers, throughput and ratios, markdown
tables, the environment header, the `--quick` argument parser and the perturbed input structures.

numpy is not imported here at import time, so a script can call `set_threads` before anything loads BLAS or
OpenMP:

    from harness import set_threads

    set_threads(1)

    import numpy as np  # noqa: E402
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import numbers
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from ase import Atoms

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS", "NUMBA_NUM_THREADS")
"""The variables that size the thread pools of OpenMP, BLAS, numexpr, rayon (dael's default) and numba."""

Column = str | tuple[str, str]
"""A table column: a header (text, left-aligned), or (header, format spec) (right-aligned; numbers formatted
with the spec, e.g. ",.0f", strings as they are)."""


# --------------------------------------------------------------------------------------------------
# Threads and machine
# --------------------------------------------------------------------------------------------------


def set_threads(n: int) -> None:
    """Give every thread pool `n` threads, the anchor tools' and dael's alike: the variables of
    THREAD_VARIABLES (read by libraries loaded later and by child processes), the BLAS/OpenMP libraries
    already loaded (threadpoolctl) and torch and dael if they are imported. Call it before numpy is imported
    to pin BLAS/OpenMP for the whole process."""
    os.environ.update({name: str(n) for name in THREAD_VARIABLES})
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            threadpool_limits(n)
    for module in ("torch", "dael"):
        if module in sys.modules:
            sys.modules[module].set_num_threads(n)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), or what `platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def version(package: str) -> str:
    """The installed version of a distribution, 'not installed' if there is none."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def thread_settings() -> str:
    """The thread variables as they are now, e.g. 'OMP/OPENBLAS/... = 1'; unset ones are left out."""
    values: dict[str, list[str]] = {}
    for name in THREAD_VARIABLES:
        if name in os.environ:
            values.setdefault(os.environ[name], []).append(name.split("_")[0])
    if not values:
        return "no thread variables set"
    return "; ".join(f"{'/'.join(names)} = {value}" for value, names in values.items())


def header(title: str, tools: Sequence[str] = ()) -> str:
    """The lines a benchmark prints first: '# title', the machine (OS, architecture, CPU model, cores), the
    versions of python, numpy, dael and the compared `tools` (distribution names), and the thread settings."""
    versions = ", ".join(f"{name} {version(name)}" for name in ("numpy", "dael", *tools))
    return "\n".join([
        f"# {title}",
        f"# machine: {platform.system()} {platform.machine()}, {cpu_model()}, {usable_cores()} usable cores "
        f"of {os.cpu_count()}",
        f"# versions: python {platform.python_version()}, {versions}",
        f"# threads: {thread_settings()}",
    ])


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """The wall times (s) of the timed calls of one measurement, what every call returned (warm-up calls
    first), and `count`, the items (structures, atoms, ...) one call processes."""

    times: tuple[float, ...]
    values: tuple[Any, ...] = ()
    count: float = 1.0

    @property
    def best(self) -> float:
        """The shortest timed call (s)."""
        return min(self.times)

    @property
    def median(self) -> float:
        """The median timed call (s)."""
        return statistics.median(self.times)

    @property
    def passes(self) -> int:
        """How many calls were timed."""
        return len(self.times)

    @property
    def value(self) -> Any:
        """What the last call returned."""
        return self.values[-1]

    @property
    def rate(self) -> float:
        """Throughput of the best call: `count` per second (structures/s, atoms/s, ...)."""
        return self.count / self.best


def measure(fn: Callable[[], Any], repeat: int = 1, warmup: int = 0, max_seconds: float = math.inf,
            count: float = 1.0) -> Timing:
    """Call `fn` `warmup` times untimed, then up to `repeat` times timed (at least once), stopping early once
    the timed calls have taken `max_seconds` s in all; `count`: the items one call processes."""
    values = [fn() for _ in range(warmup)]
    times: list[float] = []
    while not times or (len(times) < repeat and sum(times) < max_seconds):
        start = time.perf_counter()
        values.append(fn())
        times.append(time.perf_counter() - start)
    return Timing(tuple(times), tuple(values), count)


def timed(fn: Callable[[], Any], repeat: int = 1, warmup: int = 0, max_seconds: float = math.inf) -> float:
    """The best wall time (s) of `fn` over `repeat` timed calls after `warmup` untimed ones (see `measure`)."""
    return measure(fn, repeat, warmup, max_seconds).best


def ratio(ours: float, anchor: float, digits: int = 2) -> str:
    """ours / anchor as text, e.g. '2.98×': of throughputs (structures/s, atoms/s), >1 means dael is faster;
    of wall times (s), pass the anchor's first to say how many times faster dael is."""
    return f"{ours / anchor:.{digits}f}×"


def fastest(baseline: tuple[str, Timing], candidates: Mapping[str, Timing],
            threshold: float = 1.0) -> tuple[str, Timing]:
    """The (name, timing) of the highest-rate candidate if it beats `baseline` by more than `threshold`
    (a factor), else `baseline`."""
    name, best = max(candidates.items(), key=lambda item: item[1].rate)
    return (name, best) if best.rate > threshold * baseline[1].rate else baseline


def gmean(values: Sequence[float]) -> float:
    """The geometric mean of positive numbers."""
    return math.exp(statistics.fmean(math.log(v) for v in values))


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def _cell(value: Any, spec: str | None) -> str:
    """One table cell: numbers formatted with `spec` where there is one, None empty, anything else str()."""
    if value is None:
        return ""
    if spec and isinstance(value, numbers.Real):
        return format(value, spec)
    return str(value)


def table(rows: Sequence[Sequence[Any]], columns: Sequence[Column]) -> str:
    """A markdown table, padded so that it also reads as plain text (see `Column`)."""
    names = [c if isinstance(c, str) else c[0] for c in columns]
    specs = [None if isinstance(c, str) else c[1] for c in columns]
    body = [[_cell(v, spec) for v, spec in zip(row, specs, strict=True)] for row in rows]
    widths = [max(3, len(name), *(len(r[k]) for r in body)) for k, name in enumerate(names)]

    def line(cells: Sequence[str]) -> str:
        padded = (c.rjust(w) if s is not None else c.ljust(w) for c, w, s in zip(cells, widths, specs, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if s is not None else "-" * (w + 2)
                          for w, s in zip(widths, specs, strict=True)) + "|"
    return "\n".join([line(names), rule, *(line(r) for r in body)])


# --------------------------------------------------------------------------------------------------
# Arguments and inputs
# --------------------------------------------------------------------------------------------------


class BenchParser(argparse.ArgumentParser):
    """An argument parser described by the first line of a benchmark's docstring, with `--quick`: small
    sizes (the option values in `quick`, and what `about` says) for a smoke run that finishes in seconds."""

    def __init__(self, doc: str, *, about: str = "", **quick: Any) -> None:
        super().__init__(description=doc.strip().splitlines()[0])
        self.quick = quick
        sizes = [f"--{name.replace('_', '-')} {_words(value)}" for name, value in quick.items()]
        described = ", ".join([about, *sizes] if about else sizes)
        self.add_argument("--quick", action="store_true", help=f"small sizes, a smoke run ({described})")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        """The parsed options, with the `quick` values in place where --quick is given."""
        parsed = super().parse_args(args, namespace)
        if parsed.quick:
            vars(parsed).update(self.quick)
        return parsed


def _words(value: Any) -> str:
    """An option value as it is typed on the command line."""
    return " ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def perturbed(base: Atoms, rng: np.random.Generator, strain: float = 0.0,
              rattle: float | tuple[float, float] = 0.0) -> Atoms:
    """A copy of `base` with the cell strained by (I + e), e_ab ~ N(0, strain) (dimensionless, not
    symmetrised; no draw if 0) and positions rattled by Gaussian noise of standard deviation `rattle` Å
    (a (low, high) pair: drawn uniformly per structure)."""
    import numpy as np

    atoms = base.copy()
    if strain:
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + rng.normal(0.0, strain, size=(3, 3))), scale_atoms=True)
    stdev = rng.uniform(*rattle) if isinstance(rattle, tuple) else rattle
    atoms.positions += rng.normal(0.0, stdev, size=atoms.positions.shape)
    return atoms
