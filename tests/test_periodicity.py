"""Slabs and molecules: periodicity per axis (dael.util.periodicity) respected by the MD, the relaxations, the
anchors, natx and the grid (dael.explore.conditions); the command line and campaigns refuse a pressure or NPT for
them before any side effect, and box a molecule read without a cell. EMT on an Al(111) slab and on H2O."""

import json

import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk, fcc111, molecule
from ase.calculators.emt import EMT
from ase.io import read
from typer.testing import CliRunner

from dael.campaign.config import Campaign, Explore
from dael.campaign.folder import write
from dael.cli import app
from dael.explore.anchors import anchors
from dael.explore.conditions import boxed_phases, check_phase, relaxation_target
from dael.explore.explorer import grid
from dael.explore.md import MDSettings, relax, run_md
from dael.explore.stability import md_starts
from dael.numeric.natx import padded_settings
from dael.util import periodicity

EMT_NAME = "ase:ase.calculators.emt:EMT"
MD = MDSettings(temperature=300.0, steps=20, snapshots=2, relax_steps=20)


def slab() -> Atoms:
    """Al(111), 2×2×3 atoms, 5 Å of vacuum on each side: periodic along a, b."""
    atoms = fcc111("Al", (2, 2, 3), vacuum=5.0)
    del atoms.info["adsorbate_info"]  # a dict extxyz cannot store (ASE warns)
    return atoms


def water() -> Atoms:
    """H2O without a cell, as an .xyz file gives it."""
    return molecule("H2O")


def test_kinds_strains_and_boxes_follow_the_periodic_axes(rng):
    s, m, b = slab(), water(), bulk("Al", "fcc", a=4.05, cubic=True)
    assert [periodicity.kind(a) for a in (b, s, m)] == ["bulk", "slab", "molecule"]
    assert periodicity.describe(s) == "a slab (periodic along a, b; vacuum along c)"
    wire = Atoms("C2", positions=[[0, 0, 0], [1.3, 0, 0]], cell=[2.6, 0, 0], pbc=[True, False, False])
    assert periodicity.kind(wire) == "wire" and periodicity.repeats(s, (2, 2, 2)) == (2, 2, 1)
    strained = periodicity.scaled(s, 0.95)  # in-plane only: the vacuum axis and the heights stay
    np.testing.assert_allclose(strained.cell.lengths(), s.cell.lengths() * [0.95, 0.95, 1.0])
    np.testing.assert_allclose(strained.positions[:, 2], s.positions[:, 2])
    np.testing.assert_allclose(strained.positions[:, :2], 0.95 * s.positions[:, :2], atol=1e-12)
    sheared = periodicity.strained(s, 0.05 * rng.standard_normal((3, 3)))
    np.testing.assert_allclose(sheared.cell.array[2], s.cell.array[2])
    np.testing.assert_allclose(sheared.get_scaled_positions(), s.get_scaled_positions(), atol=1e-12)
    np.testing.assert_allclose(periodicity.scaled(m, 0.9).positions, m.positions)  # a molecule keeps its shape
    ref = b.copy()
    ref.set_cell(b.cell.array * 0.97, scale_atoms=True)
    np.testing.assert_allclose(periodicity.scaled(b, 0.97).positions, ref.positions, atol=1e-12)
    boxed = periodicity.boxed(m, 6.0)
    extent = np.ptp(m.positions, axis=0)
    np.testing.assert_allclose(boxed.cell.lengths(), extent + 12.0)
    assert not boxed.pbc.any() and periodicity.boxed(boxed, 6.0) is None and periodicity.boxed(s) is None
    flat = s.copy()
    flat.cell[2] = 0.0  # a slab read without its vacuum vector: boxed along c only
    np.testing.assert_allclose(periodicity.boxed(flat, 4.0).cell.array[:2], s.cell.array[:2])
    assert periodicity.cell_mask(s).tolist() == [[True, True, False], [True, True, False], [False, False, False]]
    tilted = s.copy()
    tilted.rotate(30, "x", rotate_cell=True)
    with pytest.raises(ValueError, match="periodic axes along Cartesian axes"):
        periodicity.cell_mask(tilted)


def test_slab_md_keeps_its_cell_and_vacuum_and_a_molecule_stays_a_molecule():
    """The trial's failures: an NPT slab lost its vacuum (c 16.7 → 6.0 Å); `dael explore` relaxed a slab's cell
    under pressure along the vacuum (c 16.68 → 16.64 Å at 0 GPa) and its in-plane cell unasked (5.73 → 5.62 Å); a
    molecule without a cell failed (LinAlgError: singular matrix)."""
    s = slab()
    traj = run_md(s, EMT(), EMT(), MD)
    assert traj.status == "ok" and len(traj.snapshots) == 2
    for snap in traj.snapshots:
        assert snap.pbc.tolist() == [True, True, False]
        np.testing.assert_allclose(snap.cell.array, s.cell.array)
        assert np.all(snap.positions[:, 2] > 2.0) and np.all(snap.positions[:, 2] < s.cell[2, 2] - 2.0)
    relaxed = relax(s, EMT(), 0.0, 0.01, 100, slab_cell="relax")  # asked: in-plane only
    assert relaxed.cell.lengths()[0] < s.cell.lengths()[0] - 0.01
    np.testing.assert_allclose(relaxed.cell.array[2], s.cell.array[2])
    assert relaxed.cell.array[0, 2] == relaxed.cell.array[1, 2] == 0.0
    m = water()
    traj = run_md(m, EMT(), EMT(), MD)
    assert traj.status == "ok"
    for snap in traj.snapshots:
        assert not snap.pbc.any() and snap.cell.rank == 0
        assert np.max(np.linalg.norm(snap.positions - snap.positions.mean(axis=0), axis=1)) < 2.0  # still bound
    b = bulk("Al", "fcc", a=4.05, cubic=True)
    assert type(relaxation_target(b.copy(), 1.0)).__name__ == "FrechetCellFilter"  # bulk: as before
    assert relaxation_target(s, 0.0) is s and relaxation_target(m, 0.0) is m


def test_a_pressure_or_npt_is_refused_for_slabs_and_molecules_naming_the_phase_and_the_fix():
    with pytest.raises(ValueError, match=r"phase 'Al111' is a slab .*: .*vacuum axis; explore it at 0 GPa only "
                                         r"\(--pressure 0; campaign.yaml explore.pressures: \[0.0\]\), not at 10 GPa"):
        grid({"Al111": slab(), "fcc": bulk("Al", "fcc", a=4.05)}, [0.0, 10.0], [300.0], [0.25])
    with pytest.raises(ValueError, match=r"phase 'water' is a molecule \(no periodic axis\): a molecule has no "
                                         r"pressure"):
        grid({"water": water()}, [1.0], [300.0], [0.25])
    with pytest.raises(ValueError, match=r"NPT would change its cell along the vacuum; explore it with ensemble nvt"):
        grid({"Al111": slab()}, [0.0], [300.0], [0.25], md=MDSettings(ensemble="npt"))
    with pytest.raises(ValueError, match="slab_cell must be one of fixed, relax"):
        MDSettings(slab_cell="free")
    with pytest.raises(ValueError, match="is periodic along c but has no cell vector there"):
        check_phase("flat", Atoms("Al", cell=[3, 3, 0], pbc=True), [0.0])
    jobs = grid({"Al111": slab(), "water": water(), "fcc": bulk("Al", "fcc", a=4.05)}, [0.0], [300.0], [0.25])
    assert len(jobs) == 3  # at 0 GPa in NVT every kind is fine
    with pytest.raises(ValueError, match="a pressure would act along the vacuum"):
        run_md(slab(), EMT(), EMT(), MDSettings(steps=10, snapshots=1, pressure=10.0))


def test_anchors_strain_periodic_axes_only_and_natx_compresses_them_only():
    s, m = slab(), water()
    made = anchors({"Al111": s, "water": m}, EMT_NAME, [0.0], strains=(0.95, 1.05), thermal=0)
    kinds = [(a.info["phase"], a.info["kind"]) for a in made]
    assert kinds == [("Al111", "relaxed"), ("Al111", "strain 0.95"), ("Al111", "strain 1.05"), ("water", "relaxed")]
    relaxed, squeezed = made[0], made[1]
    np.testing.assert_allclose(relaxed.cell.array, s.cell.array)  # the slab's cell is kept (slab_cell fixed)
    np.testing.assert_allclose(squeezed.cell.lengths(), s.cell.lengths() * [0.95, 0.95, 1.0])
    assert all(a.pbc.tolist() == [True, True, False] for a in made[:3]) and not made[3].pbc.any()
    starts = md_starts({"Al111": s, "water": m}, EMT(), 0.0, atoms=64)  # MD-stability starts: repeated in-plane
    assert len(starts[0]) == 72 and starts[0].cell.lengths()[2] == pytest.approx(s.cell.lengths()[2])
    assert len(starts[1]) == 3 and not starts[1].pbc.any()
    assert padded_settings(m, 5.0, pressure=50.0).natx == padded_settings(m, 5.0).natx  # nothing to compress
    b = bulk("Al", "fcc", a=4.05, cubic=True)
    assert padded_settings(b, 5.0, pressure=50.0).natx > padded_settings(b, 5.0).natx


def test_dael_explore_refuses_before_writing_and_boxes_a_molecule_and_keeps_a_slab(tmp_path):
    slab_file, water_file = tmp_path / "Al111.extxyz", tmp_path / "water.xyz"
    slab().write(slab_file)
    water().write(water_file)
    out = tmp_path / "run"
    common = ["--out", str(out), "--driver", EMT_NAME, "--temperature", "300", "--steps", "10", "--snapshots", "2",
              "--relax-steps", "5", "--thermalize", "0", "--cutoff", "4.5", "--natx", "60"]
    for extra, message in ((["--pressure", "0", "10"], "is a slab (periodic along a, b; vacuum along c)"),
                           (["--ensemble", "npt"], "NPT would change its cell along the vacuum")):
        res = CliRunner().invoke(app, ["explore", str(slab_file), *common, *extra])
        assert res.exit_code == 2 and res.output.startswith("error: phase 'Al111'") and message in res.output
        assert not out.exists()
    res = CliRunner().invoke(app, ["explore", str(water_file), *common, "--pressure", "1"])
    assert res.exit_code == 2 and "phase 'water' is a molecule" in res.output and not out.exists()
    res = CliRunner().invoke(app, ["explore", str(water_file), str(slab_file), *common, "--pressure", "0", "3"])
    assert res.exit_code == 2 and res.output.startswith("error: phase 'water'")  # phases named by their files
    res = CliRunner().invoke(app, ["explore", str(slab_file), *common])
    assert res.exit_code == 0, res.output
    for snap in read(out / "snapshots.extxyz", ":"):
        assert snap.pbc.tolist() == [True, True, False]
        np.testing.assert_allclose(snap.cell.array, slab().cell.array, atol=1e-6)
    res = CliRunner().invoke(app, ["explore", str(water_file), *common, "--out", str(tmp_path / "w"),
                                   "--vacuum", "5"])
    assert res.exit_code == 0, res.output
    assert "phase 'water' is a molecule (no periodic axis) without a cell along its vacuum: boxed with 5 Å" in \
        res.output
    snaps = read(tmp_path / "w" / "snapshots.extxyz", ":")
    assert len(snaps) == 2 and all(not a.pbc.any() for a in snaps)
    np.testing.assert_allclose(snaps[0].cell.lengths(), np.ptp(water().positions, axis=0) + 10.0, atol=1e-6)


def test_a_campaign_refuses_a_slab_pressure_or_npt_before_any_side_effect(tmp_path):
    seeds = {"Al111": slab(), "fcc": bulk("Al", "fcc", a=4.05, cubic=True)}
    for n, explore in enumerate((Explore(pressures=[0.0, 5.0]), Explore(ensemble="npt"))):
        folder = tmp_path / f"c{n}"
        write(folder, Campaign("Al", driver=EMT_NAME, explore=explore), seeds)
        res = CliRunner().invoke(app, ["run", "--dir", str(folder)])
        assert res.exit_code == 2 and "explore: phase 'Al111' is a slab" in res.output
        assert sorted(p.name for p in folder.iterdir()) == ["campaign.yaml", "seeds.extxyz"]
    with pytest.raises(ValueError, match="explore.slab_cell must be one of fixed, relax"):
        Campaign.from_dict({"system": "Al", "explore": {"slab_cell": "free"}})
    campaign = yaml.safe_load(json.dumps(Campaign("Al").to_dict()))
    assert campaign["explore"]["slab_cell"] == "fixed" and campaign["explore"]["vacuum"] == 6.0
    boxed, notes = boxed_phases({"water": water(), "fcc": seeds["fcc"]}, 6.0)
    assert boxed["fcc"] is seeds["fcc"] and len(notes) == 1 and "boxed with 6 Å" in notes[0]
