"""The gpaw oracle: real DFT (PBE, plane waves) on 2-atom Si through the labelling executor and the store.

Skipped when GPAW is not installed (scripts/setup.sh installs it with its PAW setups, gpaw-data).
"""

import numpy as np
import pytest
from ase.build import bulk

from dael.data.dataset import Dataset, oracle_spec
from dael.label.labelling import label_dataset

gpaw = pytest.importorskip("gpaw")


def test_gpaw_labels_two_atom_si(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.positions[1] += 0.03  # along [111]: forces stay on that axis, symmetry keeps it fast (~5 s)
    dataset = Dataset(tmp_path / "si.db")
    params = {"kpts": {"density": 2.0, "gamma": True}}  # coarser than the default 3.5: 4x faster, same checks
    dataset.add([atoms], oracle=oracle_spec("gpaw", params))
    summary = label_dataset(dataset, "gpaw", params, workers=0, keep="all")
    assert summary.labeled == 1, summary.errors
    row = next(dataset.structures())
    folder = tmp_path / "labels" / row.info["hash"]  # its own folder: GPAW's log and the structure as sent
    assert "Free energy:" in (folder / "gpaw.txt").read_text() and (folder / "structure.extxyz").is_file()
    assert f"; GPAW {gpaw.__version__}; " in row.info["versions"]
    energy, forces, stress = row.get_potential_energy(), row.get_forces(), row.get_stress()
    assert -5.6 < energy / 2 < -5.2  # PBE cohesive scale of GPAW's Si setup: about -5.4 eV/atom
    np.testing.assert_allclose(forces[0], -forces[1], atol=1e-4)  # Newton's third law
    np.testing.assert_allclose(forces[0], forces[0][0], atol=1e-4)  # along [111]
    assert 0.1 < forces[0][0] < 1.0  # pushed back towards the ideal site
    assert stress.shape == (6,) and np.all(np.isfinite(stress)) and abs(stress[0]) < 0.05


def test_gpaw_labels_a_slab_and_molecules_without_stress_and_spin_polarised_where_magnetic(tmp_path):
    """Al(111) (2 layers, Γ-only in z) and a H atom with and without an initial moment (~10 s): no stress for
    cells that are not 3-D periodic; the moment survives the dataset and makes the label spin-polarised."""
    from ase import Atoms
    from ase.build import fcc111

    slab = fcc111("Al", (1, 1, 2), vacuum=3.0)
    del slab.info["adsorbate_info"]
    slab.rattle(0.05, seed=1)
    magnetic = Atoms("H", positions=[[0.0, 0.0, 0.0]])
    magnetic.center(vacuum=2.5)
    plain = magnetic.copy()
    magnetic.set_initial_magnetic_moments([1.0])
    dataset = Dataset(tmp_path / "mixed.db")
    slab_params, molecule_params = {"ecut": 200, "kpts": [2, 2, 1]}, {"ecut": 200}
    dataset.add([slab], oracle=oracle_spec("gpaw", slab_params))
    dataset.add([magnetic, plain], oracle=oracle_spec("gpaw", molecule_params))
    for params in (slab_params, molecule_params):
        summary = label_dataset(dataset, "gpaw", params, workers=0)
        assert summary.failed == 0, summary.errors
    rows = list(dataset.structures("labeled"))
    assert [a.get_chemical_formula() for a in rows] == ["Al2", "H", "H"]
    for atoms in rows:
        assert np.isfinite(atoms.get_forces()).all()
        assert "stress" not in atoms.calc.results  # not 3-D periodic: no stress label
    assert rows[0].pbc.tolist() == [True, True, False] and not rows[1].pbc.any()
    assert rows[1].get_initial_magnetic_moments().tolist() == [1.0]
    assert rows[1].get_potential_energy() < rows[2].get_potential_energy() - 0.5  # spin-polarised H: about -1.1 eV


def test_gpaw_oracle_turns_spin_polarisation_on_for_initial_moments_unless_told(monkeypatch):
    """The GPAW calculator is rebuilt with spinpol=True for a structure with initial magnetic moments (and
    without for one without), unless spinpol is given."""
    from types import SimpleNamespace

    from ase.calculators.emt import EMT

    from dael.calculators.dft import GPAWOracle

    built = []

    def fake_gpaw(**params):
        built.append(params)
        return EMT()

    cu = bulk("Cu", "fcc", a=3.6)
    magnetic = cu.copy()
    magnetic.set_initial_magnetic_moments([0.5])
    for overrides, expected in (({}, [False, True, False]), ({"spinpol": False}, [False, False, False])):
        oracle, built[:] = GPAWOracle(**overrides), []
        oracle._gpaw = SimpleNamespace(GPAW=fake_gpaw)
        for atoms in (cu, magnetic, magnetic, cu):
            oracle.compute(atoms, ["energy"])
        assert [p.get("spinpol", False) for p in built] == expected  # rebuilt only when the spin changes


def test_gpaw_oracle_computes_a_structures_forces_and_stress_from_the_scf_of_its_energy(tmp_path):
    """Labelling asks for energy, then forces, then stress of one structure in its folder: one GPAW calculator
    (one SCF) serves all three; the next structure's folder gets a new one, and so does a retry after a
    failure."""
    from types import SimpleNamespace

    from ase.calculators.emt import EMT

    from dael.calculators.dft import GPAWOracle
    from dael.label.calculation import compute

    built = []

    def fake_gpaw(**params):
        built.append(params)
        return EMT()

    oracle = GPAWOracle()
    oracle._gpaw = SimpleNamespace(GPAW=fake_gpaw)
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    for k, name in enumerate(("a", "b")):
        oracle.directory = str(tmp_path / name)
        cu.positions[0, 0] += 0.01 * k  # another structure in another folder
        results = compute(oracle, cu)
        assert set(results) == {"energy", "free_energy", "forces", "stress"}
    assert [p["txt"] for p in built] == [str(tmp_path / "a" / "gpaw.txt"), str(tmp_path / "b" / "gpaw.txt")]
    oracle.dft.get_potential_energy = None  # the kept calculator breaks: the next call raises
    cu.positions[0, 0] += 0.01
    with pytest.raises(TypeError):
        compute(oracle, cu)
    assert oracle.dft is None
    compute(oracle, cu)
    assert len(built) == 3


def test_a_campaign_round_on_a_non_preset_material_labels_with_gpaw(tmp_path):
    """dael init --structures with the gpaw oracle at a low cut-off and Γ-centred 2×2×2 k-points, EMT driving
    the MD: round 0 labels the seed, round 1 labels what the filter took (about a minute on one core)."""
    import yaml
    from ase.io import write
    from typer.testing import CliRunner

    from dael.cli import app

    write(tmp_path / "Al.vasp", bulk("Al", "fcc", a=4.05) * (2, 1, 1), format="vasp")
    res = CliRunner().invoke(app, ["init", "--structures", str(tmp_path / "Al.vasp"), "--oracle", "gpaw",
                                   "--oracle-param", "ecut=200", "--oracle-param", 'kpts={"size": [2, 2, 2]}',
                                   "--driver", "ase:ase.calculators.emt:EMT", "--dir", str(tmp_path / "al")])
    assert res.exit_code == 0, res.output
    config = yaml.safe_load((tmp_path / "al" / "campaign.yaml").read_text())
    config["explore"].update(steps=30, snapshots=3, thermalize=5, relax_steps=5, workers=1, temperatures=[600.0])
    config["budget"].update(total=4, per_round=3)
    config["label"]["workers"] = 0
    config["train"].update(epochs=1, settings={})
    config["model_check"]["enabled"] = False
    (tmp_path / "al" / "campaign.yaml").write_text(yaml.safe_dump(config))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path / "al"), "--rounds", "1"])
    assert res.exit_code == 0, res.output
    rows = list(Dataset(tmp_path / "al" / "dataset.db").structures("labeled"))
    assert len(rows) == 4 and {r.info["oracle"].split()[0] for r in rows} == {"gpaw"}
    assert all(-4.5 < r.get_potential_energy() / len(r) < -3.0 for r in rows)  # PBE Al, GPAW's setup scale


def test_gpaw_labels_a_relaxed_cell_stored_at_extxyz_precision():
    """A diamond cell relaxed by an MLIP and read back from extxyz (positions to 1e-8 Å, cell off-diagonals of
    1e-9 Å) stopped GPAW's symmetry analysis at its default tolerance (SymmetryAnalysisBug); the oracle's
    1e-5 Å tolerance labels it (with 24 symmetries: the k-point grid is reduced as for a perfect crystal)."""
    from ase import Atoms

    from dael.calculators.dft import GPAWOracle

    cell = [[5.464198688463808, -8.328005184441352e-10, 1.252026126683718e-09],
            [-8.32799543196363e-10, 5.464198687290867, -8.378601169511736e-10],
            [1.2520217778119777e-09, -8.378589938311966e-10, 5.464198687702481]]
    positions = [[0.0, 0.0, 0.0], [1.36604967, 1.36604967, 1.36604967], [0.0, 2.73209934, 2.73209934],
                 [1.36604967, 4.09814902, 4.09814901], [2.73209935, 0.0, 2.73209935],
                 [4.09814902, 1.36604967, 4.09814902], [2.73209935, 2.73209934, 0.0],
                 [4.09814902, 4.09814901, 1.36604968]]
    atoms = Atoms("Si8", positions=positions, cell=cell, pbc=True)
    from gpaw.new.symmetry import SymmetryAnalysisBug

    with pytest.raises(SymmetryAnalysisBug):  # GPAW's own default
        GPAWOracle(ecut=150.0, kpts=(1, 1, 1), symmetry="on").get_potential_energy(atoms)
    oracle = GPAWOracle(ecut=150.0, kpts=(1, 1, 1))  # Γ only: seconds
    assert np.isfinite(oracle.get_potential_energy(atoms))
    assert np.abs(oracle.get_forces(atoms)).max() < 0.01  # a crystal at rest
    assert len(oracle.dft.dft.ibzwfs.ibz.symmetries) == 24

