"""A campaign on the user's own structures (`dael init --structures`): phases from any file ASE reads, the
oracle and driver by name, bad input refused before anything is written, driver and oracle checked on every
element before any MD, imported labels, a test set that ends the campaign early."""

import json

import pytest
import yaml
from ase.build import bulk, molecule
from ase.calculators.emt import EMT
from ase.io import write
from typer.testing import CliRunner

import dael
from dael.cli import app
from dael.data.dataset import Dataset

EMT_NAME = "ase:ase.calculators.emt:EMT"


def init(folder, *args):
    return CliRunner().invoke(app, ["init", *args, "--dir", str(folder)])


def shorten(folder, **budget):
    c = yaml.safe_load((folder / "campaign.yaml").read_text())
    c["explore"].update(steps=40, snapshots=4, thermalize=10, relax_steps=10, workers=1)
    c["budget"].update(total=budget.get("total", 8), per_round=budget.get("per_round", 5))
    c["train"].update(epochs=2, settings={})
    c["model_check"]["enabled"] = False
    (folder / "campaign.yaml").write_text(yaml.safe_dump(c, sort_keys=False))


def test_phases_from_files_named_by_tag_or_stem_and_frame(tmp_path):
    write(tmp_path / "Cu.cif", bulk("Cu", "fcc", a=3.61, cubic=True))
    tagged = bulk("Cu", "bcc", a=2.87)
    tagged.info["phase"] = "bcc"
    frames = [bulk("Cu", "hcp", a=2.55, c=4.16) * (1, 1, k) for k in (1, 2)]
    write(tmp_path / "tagged.extxyz", tagged)
    write(tmp_path / "hcp.traj", frames)
    res = init(tmp_path / "c", "--structures", str(tmp_path / "Cu.cif"), str(tmp_path / "tagged.extxyz"),
               f"{tmp_path / 'hcp.traj'}@0", "--oracle", EMT_NAME, "--driver", EMT_NAME,
               "--temperatures", "400", "900")
    assert res.exit_code == 0, res.output
    campaign = dael.Campaign.load(tmp_path / "c")
    assert list(campaign.seeds) == ["Cu", "bcc", "hcp"] and len(campaign.seeds["hcp"]) == 2  # frame 0
    assert campaign.system == "Cu" and campaign.explore.temperatures == [400.0, 900.0]
    assert campaign.explore.k_global == [0.25] and campaign.budget.anchor_fraction == 0.2  # a bulk solid's
    assert "explore.k_global" in res.output  # where to edit the defaults


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("empty", "the file is empty"),
    ("twice", "phase name 'Cu' is given twice"),
    ("no oracle", "--structures needs --oracle"),
    ("bad oracle", "unknown calculator 'dft'; use one of"),
    ("bad param", "foo"),
    ("preset too", "give a preset (dael init Si) or --structures"),
    ("molecule pressure", "a molecule has no pressure"),
])
def test_bad_input_is_one_error_before_anything_is_written(case, message, tmp_path):
    write(tmp_path / "Cu.cif", bulk("Cu", "fcc", a=3.61, cubic=True))
    (tmp_path / "empty.cif").write_text("")
    write(tmp_path / "h2o.xyz", molecule("H2O"))
    cu = str(tmp_path / "Cu.cif")
    args = {"missing": ["--structures", str(tmp_path / "nope.cif"), "--oracle", EMT_NAME],
            "empty": ["--structures", str(tmp_path / "empty.cif"), "--oracle", EMT_NAME],
            "twice": ["--structures", cu, cu, "--oracle", EMT_NAME],
            "no oracle": ["--structures", cu],
            "bad oracle": ["--structures", cu, "--oracle", "dft"],
            "bad param": ["--structures", cu, "--oracle", EMT_NAME, "--oracle-param", "foo=1"],
            "preset too": ["Si", "--structures", cu, "--oracle", EMT_NAME],
            "molecule pressure": ["--structures", str(tmp_path / "h2o.xyz"), "--oracle", EMT_NAME, "--pressures",
                                  "5"]}[case]
    res = init(tmp_path / "c", *args, "--driver", EMT_NAME)
    assert res.exit_code == 2 and res.output.count("error:") == 1, res.output
    assert message in res.output, res.output
    assert not (tmp_path / "c").exists()


def test_a_molecule_without_a_cell_is_boxed_and_says_so(tmp_path):
    write(tmp_path / "h2o.xyz", molecule("H2O"))
    res = init(tmp_path / "c", "--structures", str(tmp_path / "h2o.xyz"), "--oracle", EMT_NAME, "--driver",
               EMT_NAME, "--vacuum", "5")
    assert res.exit_code == 0 and "boxed with 5 Å of vacuum" in res.output, res.output
    h2o = dael.Campaign.load(tmp_path / "c").seeds["h2o"]
    assert not h2o.pbc.any() and h2o.cell.lengths().min() >= 10


def test_run_names_the_oracle_error_on_a_seed_and_the_fixed_rerun_labels_it(tmp_path):
    """EMT has no Mg: the oracle's own error, found on the seed before any MD; after the fix the seed is labelled
    (round 0, an anchor, counted in the budget)."""
    write(tmp_path / "Mg.cif", bulk("Mg", "hcp", a=3.21, c=5.21))
    assert init(tmp_path / "c", "--structures", str(tmp_path / "Mg.cif"), "--oracle", EMT_NAME, "--driver",
                "ase:ase.calculators.lj:LennardJones").exit_code == 0
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path / "c")])
    assert res.exit_code == 2 and "failed on seed Mg (Mg2)" in res.output and "fix label.oracle" in res.output
    assert "No EMT-potential for Mg" in res.output, res.output
    assert not (tmp_path / "c" / "rounds" / "round-01").exists()  # no MD ran
    config = yaml.safe_load((tmp_path / "c" / "campaign.yaml").read_text())
    config["label"]["oracle"] = "ase:ase.calculators.lj:LennardJones"
    (tmp_path / "c" / "campaign.yaml").write_text(yaml.safe_dump(config))
    dael.run_campaign(tmp_path / "c", max_rounds=0)
    rows = list(Dataset(tmp_path / "c" / "dataset.db").structures("labeled"))
    assert len(rows) == 1 and rows[0].info["source"] == "anchor" and rows[0].info["round"] == 0


def test_a_driver_that_lacks_an_element_is_named_before_any_md(tmp_path):
    write(tmp_path / "Mg.cif", bulk("Mg", "hcp", a=3.21, c=5.21))
    assert init(tmp_path / "c", "--structures", str(tmp_path / "Mg.cif"), "--oracle",
                "ase:ase.calculators.lj:LennardJones", "--driver", EMT_NAME).exit_code == 0
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path / "c")])
    assert res.exit_code == 2 and f"driver {EMT_NAME} cannot compute seed Mg" in res.output, res.output
    assert "covers Mg" in res.output


def test_a_binary_with_imported_labels_and_a_test_set_that_stops_it(tmp_path):
    """Cu3Au (L1₂ and a random fcc cell) with EMT: imported labels are trained on and not counted in the budget;
    each round's model is evaluated on the user's test set, and stop_at ends the campaign before its budget."""
    l12 = bulk("Cu", "fcc", a=3.75, cubic=True)
    l12.symbols[0] = "Au"
    a1 = l12.copy()
    a1.symbols = ["Cu", "Au", "Cu", "Cu"]
    write(tmp_path / "L12.cif", l12)
    write(tmp_path / "A1.vasp", a1, format="vasp")
    labelled = []
    for k in range(6):
        atoms = l12.copy()
        atoms.rattle(0.05, seed=k)
        atoms.calc = EMT()
        atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        labelled.append(atoms)
    write(tmp_path / "mine.extxyz", labelled[:3])
    write(tmp_path / "c-test.extxyz", labelled[3:])
    res = init(tmp_path / "c", "--structures", str(tmp_path / "L12.cif"), str(tmp_path / "A1.vasp"), "--oracle",
               EMT_NAME, "--driver", EMT_NAME, "--dataset", str(tmp_path / "mine.extxyz"))
    assert res.exit_code == 0 and "3 labelled structures" in res.output, res.output
    shorten(tmp_path / "c", total=20, per_round=5)
    config = yaml.safe_load((tmp_path / "c" / "campaign.yaml").read_text())
    (tmp_path / "c" / "test.extxyz").write_bytes((tmp_path / "c-test.extxyz").read_bytes())
    config["evaluate"] = {"test": "test.extxyz", "stop_at": {"energy_mae": 1e6}}
    (tmp_path / "c" / "campaign.yaml").write_text(yaml.safe_dump(config))
    res = CliRunner().invoke(app, ["run", "--dir", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    state = json.loads(CliRunner().invoke(app, ["status", "--dir", str(tmp_path / "c"), "--json"]).output)
    assert state["imported"] == 3 and state["stopped"].startswith("evaluate.stop_at reached: energy_mae")
    first = state["rounds"][0]
    assert len(state["rounds"]) == 1 and first["test"]["energy_mae"] > 0
    assert first["structures"] == 3 + state["budget"]["used"] < 20  # imported + labelled, stopped early
