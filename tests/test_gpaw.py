"""The gpaw oracle: real DFT (PBE, plane waves) on 2-atom Si through the labelling executor and the store.

Skipped when GPAW is not installed (scripts/setup.sh installs it with its PAW setups, gpaw-data).
"""

import numpy as np
import pytest
from ase.build import bulk

from dael.data.dataset import Dataset
from dael.label.labelling import label_dataset

gpaw = pytest.importorskip("gpaw")


def test_gpaw_labels_two_atom_si(tmp_path):
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.positions[1] += 0.03  # along [111]: forces stay on that axis, symmetry keeps it fast (~5 s)
    dataset = Dataset(tmp_path / "si.db")
    dataset.add([atoms], oracle="gpaw")
    summary = label_dataset(dataset, "gpaw", workers=0, keep="all")
    assert summary.labeled == 1, summary.errors
    row = next(dataset.structures())
    folder = tmp_path / "labels" / row.info["hash"]  # its own folder: GPAW's log and the structure as sent
    assert "Total:" in (folder / "gpaw.txt").read_text() and (folder / "structure.extxyz").is_file()
    assert f"; GPAW {gpaw.__version__}; " in row.info["versions"]
    energy, forces, stress = row.get_potential_energy(), row.get_forces(), row.get_stress()
    assert -5.6 < energy / 2 < -5.2  # PBE cohesive scale of GPAW's Si setup: about -5.4 eV/atom
    np.testing.assert_allclose(forces[0], -forces[1], atol=1e-4)  # Newton's third law
    np.testing.assert_allclose(forces[0], forces[0][0], atol=1e-4)  # along [111]
    assert 0.1 < forces[0][0] < 1.0  # pushed back towards the ideal site
    assert stress.shape == (6,) and np.all(np.isfinite(stress)) and abs(stress[0]) < 0.05
