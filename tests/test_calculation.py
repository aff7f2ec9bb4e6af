"""One oracle call in a folder of its own (labels/<structure hash>/, kept when it failed or with keep all) and the
versions that made each label: VASP and pw.x as stand-in executables (tests/dft_stubs.py: neither is installed
here), the export of the versions and `dael status`."""

import json

import pytest
from ase.build import bulk
from ase.io import read
from typer.testing import CliRunner

from dael.cli import app
from dael.data.dataset import Dataset, oracle_spec, structure_hash
from dael.label.calculation import IN_PLACE, Calculations, attempt, code_version, works_in_folder
from dael.label.labelling import label_dataset
from dael.util.provenance import dael_version

from dft_stubs import install

OUTPUTS = {"vasp": ("INCAR", "POSCAR", "POTCAR", "OUTCAR", "vasprun.xml", "vasp.out"),
           "qe": ("espresso.pwi", "espresso.pwo")}
CODES = {"vasp": "VASP 6.4.2", "qe": "Quantum ESPRESSO 7.2"}


def _oracle(kind: str, tmp_path) -> dict:
    """Parameters of the `kind` oracle running the stand-in executable, with POTCARs / pseudopotentials for Si
    and C."""
    exe = install(tmp_path / "bin")
    for element in ("Si", "C"):
        (tmp_path / "pp" / element).mkdir(parents=True, exist_ok=True)
        (tmp_path / "pp" / element / "POTCAR").write_text(f"  PAW_PBE {element} 08Apr2002\n   4.0\n")
        (tmp_path / "pseudo").mkdir(exist_ok=True)
        (tmp_path / "pseudo" / f"{element}.upf").write_text("stand-in")
    if kind == "vasp":
        return {"command": str(exe["vasp"]), "pp": str(tmp_path / "pp")}
    return {"command": str(exe["qe"]), "pseudo_dir": str(tmp_path / "pseudo"),
            "pseudopotentials": {"Si": "Si.upf", "C": "C.upf"}}


def _structures() -> list:
    """Two rattled 2-atom Si cells (the stand-ins label them) and a carbon one (they fail on it)."""
    out = []
    for k, (symbol, a) in enumerate((("Si", 5.43), ("Si", 5.45), ("C", 3.57))):
        atoms = bulk(symbol, "diamond", a=a)
        atoms.positions[1] += 0.02 * (k + 1)
        out.append(atoms)
    return out


@pytest.mark.parametrize("kind", ["vasp", "qe"])
@pytest.mark.parametrize("keep", ["failed", "all"])
def test_each_calculation_works_in_its_own_folder(kind, keep, tmp_path):
    params = _oracle(kind, tmp_path)
    dataset = Dataset(tmp_path / "d.db")
    structures = _structures()
    dataset.add(structures, oracle=oracle_spec(kind, params))
    summary = label_dataset(dataset, kind, params, workers=2, keep=keep)
    assert (summary.labeled, summary.failed) == (2, 1), summary.errors
    labels = tmp_path / "labels"
    for atoms in structures:
        folder = labels / structure_hash(atoms)
        failed = atoms.get_chemical_symbols()[0] == "C"
        assert folder.is_dir() == (failed or keep == "all"), folder
        if folder.is_dir():  # inputs, outputs, log and the structure as sent, nothing of another structure
            for name in (*OUTPUTS[kind][: 2 if failed else None], "structure.extxyz"):
                assert (folder / name).is_file(), f"{folder}: no {name}"
            sent = read(folder / "structure.extxyz")
            assert structure_hash(sent) == folder.name
    (error,) = summary.errors
    carbon = labels / structure_hash(structures[2])
    assert error.endswith(f"(its files: {carbon})"), error  # the error names the folder that stays
    assert "carbon refused" in (carbon / ("vasp.out" if kind == "vasp" else "espresso.pwo")).read_text()
    rows = list(dataset.structures())
    assert {a.info["versions"] for a in rows} == {f"dael {dael_version()}; {CODES[kind]}; " +
                                                  rows[0].info["versions"].split(f"{CODES[kind]}; ")[1]}
    assert not list(tmp_path.glob("vasp-*")) and not list(tmp_path.glob("espresso-*"))  # no shared folder


def test_a_structure_computed_again_reuses_its_folder(tmp_path):
    """Dask may compute a structure twice (a worker lost after it finished); the second call works in the same
    folder and the dataset stores one label."""
    from dael.calculators.registry import make_calculator

    params = _oracle("qe", tmp_path)
    calc = make_calculator("qe", **params)
    atoms = _structures()[0]
    where = Calculations(str(tmp_path / "labels"), "all")
    first, second = attempt(calc, atoms, where), attempt(calc, atoms, where)
    assert first[0] and second[0] and first[1]["energy"] == second[1]["energy"]
    assert [p.name for p in (tmp_path / "labels").iterdir()] == [structure_hash(atoms)]
    assert code_version(calc) == "Quantum ESPRESSO 7.2"
    assert works_in_folder(calc) and not works_in_folder(make_calculator("reference"))
    assert attempt(calc, atoms, IN_PLACE)[0] and (tmp_path / "labels").exists()
    with pytest.raises(ValueError, match="keep must be one of failed, all"):
        Calculations(str(tmp_path), "some")


def test_export_and_status_carry_the_versions(tmp_path):
    from dael.campaign.folder import write
    from dael.campaign.presets import phases, preset

    write(tmp_path, preset("Si"), phases("Si"))
    dataset = Dataset(tmp_path / "dataset.db")
    dataset.add(_structures()[:2], oracle="reference")
    assert label_dataset(dataset, "reference", workers=0).labeled == 2
    res = CliRunner().invoke(app, ["export", "--db", str(tmp_path / "dataset.db"), "--out", str(tmp_path / "t.xyz")])
    assert res.exit_code == 0, res.output
    frames = read(tmp_path / "t.xyz", ":")
    line = frames[0].info["versions"]
    assert line.startswith(f"dael {dael_version()}; LAMMPS ") and "; ase " in line
    assert all(f.info["versions"] == line for f in frames)
    res = CliRunner().invoke(app, ["status", "--dir", str(tmp_path), "--json"])
    state = json.loads(res.output)
    assert state["versions"] == {"labels": {line: 2}, "model": None}
    res = CliRunner().invoke(app, ["status", "--dir", str(tmp_path)])
    assert "versions (labels)" in res.output and line[:40] in res.output.replace("\n", " ")
