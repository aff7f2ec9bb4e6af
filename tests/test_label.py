"""Labelling: the dataset store, the parallel executor, failures, timeouts, kill -9 resume, the CLI.

The fake oracle of oracle_helpers.py stands in where a test needs an oracle that sleeps, crashes or
returns NaN; everything else runs the reference oracle (LAMMPS).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from typer.testing import CliRunner

from dael.calculators.dft import ESPRESSO_DEFAULTS, gpaw_parameters
from dael.calculators.registry import make_calculator
from dael.cli import app
from dael.data.dataset import Dataset, oracle_spec, structure_hash
from dael.label.labelling import label, label_dataset
from dael.numeric.fingerprint import FingerprintSettings

from conftest import skewed
from oracle_helpers import FAKE, fake_batch

TESTS = Path(__file__).parent
runner = CliRunner()


def candidates(rng: np.random.Generator) -> list[Atoms]:
    """Rattled, strained Si, NaCl and C structures (8 atoms each), two of each system."""
    seeds = [bulk("Si", "diamond", a=5.43, cubic=True), bulk("NaCl", "rocksalt", a=5.64, cubic=True),
             bulk("C", "diamond", a=3.567, cubic=True)]
    return [skewed(s, rng, strain=0.02, rattle=0.05) for s in seeds for _ in range(2)]


def test_store_round_trip_refuses_duplicates_and_exports_for_nequip(tmp_path, rng):
    frames = candidates(rng)[:4]
    frames[0].calc = SinglePointCalculator(frames[0], energy=123.0)  # a model's guess is not copied
    dataset = Dataset(tmp_path / "d.db")
    fp = FingerprintSettings(5.0, 40, "s")
    added = dataset.add(frames + [frames[1].copy()], oracle="reference", campaign="c1", round=2,
                        source="entropy", fingerprint=fp)
    assert len(added.ids) == 4 and added.duplicates == [4]
    again = dataset.add([frames[2], bulk("Si", "diamond", a=5.5)], oracle="reference", source="test")
    assert again.duplicates == [0] and len(again.ids) == 1
    assert dataset.counts() == {"pending": 5} and len(dataset) == 5

    oracle = make_calculator("reference")
    expected = {}
    for row_id, atoms in dataset.pending("reference"):
        atoms.calc = oracle
        results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces(),
                   "stress": atoms.get_stress()}
        expected[structure_hash(atoms)] = results
        dataset.record_result(row_id, atoms, results, seconds=0.1)
    stored = list(dataset.structures("labeled", campaign="c1"))
    assert len(stored) == 4
    assert {a.info["source"] for a in stored} == {"entropy"} and stored[0].info["round"] == 2
    assert [stored[0].info[f"fp_{k}"] for k in ("cutoff", "natx", "orbital")] == [5.0, 40, "s"]
    for atoms in stored:
        ref = expected[atoms.info["hash"]]
        assert atoms.get_potential_energy() == ref["energy"]
        np.testing.assert_array_equal(atoms.get_forces(), ref["forces"])
        np.testing.assert_array_equal(atoms.get_stress(), ref["stress"])

    assert dataset.export(tmp_path / "train.extxyz", sources=["test"]) == 1
    assert dataset.export(tmp_path / "train.extxyz") == 5
    back = read(tmp_path / "train.extxyz", index=":")
    for atoms in back:
        ref = expected[structure_hash(atoms)]
        assert atoms.get_potential_energy() == pytest.approx(ref["energy"], abs=1e-9)
        np.testing.assert_allclose(atoms.get_forces(), ref["forces"], atol=1e-7)
        np.testing.assert_allclose(atoms.get_stress(), ref["stress"], atol=1e-10)
    nequip_ase = pytest.importorskip("nequip.data.ase")
    data = nequip_ase.from_ase(back[0])
    assert {"total_energy", "forces", "stress"} <= set(data)

    with pytest.raises(ValueError, match="source must be one of"):
        dataset.add(frames, oracle="reference", source="md")
    with pytest.raises(ValueError, match="no rows match"):
        dataset.export(tmp_path / "none.extxyz", status="failed")
    assert not (tmp_path / "none.extxyz").exists()
    (tmp_path / "text.db").write_text("not a database at all, just text" * 10)
    with pytest.raises(ValueError, match="not an SQLite database"):
        Dataset(tmp_path / "text.db")
    with pytest.raises(ValueError, match="ending in .db"):
        Dataset(tmp_path / "d.sqlite")


def test_executor_equals_direct_calls(rng):
    frames = candidates(rng)
    outcomes = list(label(frames, "reference", workers=2))
    assert sorted(o.index for o in outcomes) == list(range(len(frames)))
    direct = {name: make_calculator("reference", system=name) for name in ("Si", "NaCl", "C")}
    for out in outcomes:
        assert out.ok and out.attempts == 1
        atoms = frames[out.index].copy()
        atoms.calc = direct["NaCl" if "Na" in atoms.symbols else atoms.get_chemical_symbols()[0]]
        assert out.results["energy"] == pytest.approx(atoms.get_potential_energy(), rel=1e-12, abs=1e-10)
        np.testing.assert_allclose(out.results["forces"], atoms.get_forces(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(out.results["stress"], atoms.get_stress(), rtol=1e-10, atol=1e-12)


def test_bad_input_is_recorded_and_the_rest_goes_on(tmp_path):
    good = bulk("Si", "diamond", a=5.43, cubic=True)
    open_nacl = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    open_nacl.pbc = False
    dataset = Dataset(tmp_path / "d.db")
    dataset.add([bulk("Cu", "fcc", a=3.6), open_nacl, good], oracle="reference")
    summary = label_dataset(dataset, "reference", workers=0, retries=2)
    assert (summary.labeled, summary.failed) == (1, 2)
    rows = {row.formula: row for row in dataset.db.select()}
    assert rows["Cu"].status == "failed" and "no potential for the elements {Cu}" in rows["Cu"].error
    assert rows["Na4Cl4"].status == "failed" and "3-D periodic" in rows["Na4Cl4"].error
    assert rows["Cu"].attempts == 1  # bad input is final: no retries
    assert rows["Si8"].status == "labeled" and "error" not in rows["Si8"]

    nan = Dataset(tmp_path / "nan.db")
    nan.add([good], oracle=oracle_spec(FAKE, {"fake": "nan"}))
    summary = label_dataset(nan, FAKE, {"fake": "nan"}, workers=0)
    row = nan.db.get(1)
    assert summary.failed == 1 and row.status == "failed" and "non-finite energy" in row.error
    assert nan.retry_failed() == 1 and nan.counts() == {"pending": 1}


def test_timeouts_retries_and_dead_workers(tmp_path):
    frames = fake_batch(["slow", "slow-once", None, "crash"])
    start = time.perf_counter()
    outcomes = {o.index: o for o in label(frames, FAKE, {"marks": str(tmp_path)}, workers=2, timeout=1.0,
                                          retries=1)}
    assert time.perf_counter() - start < 20  # the 60 s sleeps were cut short
    assert not outcomes[0].ok and outcomes[0].attempts == 2
    assert outcomes[0].error == "TimeoutError: no result after 1 s (2 attempts)"
    assert outcomes[1].ok and outcomes[1].attempts == 2  # timed out once, then succeeded
    assert outcomes[2].ok and outcomes[2].attempts == 1
    assert not outcomes[3].ok and "worker process died (exit code 3)" in outcomes[3].error


def test_dask_backend(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    frames = fake_batch([None, None, "nan"])
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        outcomes = {o.index: o for o in label(frames, FAKE, {}, dask=cluster.scheduler_address)}
    assert outcomes[0].ok and outcomes[1].ok and "non-finite" in outcomes[2].error
    assert outcomes[0].results["energy"] == pytest.approx(0.005 * (frames[0].positions ** 2).sum())


def _counts(db: Path) -> dict[str, int]:
    """Rows per status, read with plain sqlite (the writer may be mid-transaction)."""
    try:
        with sqlite3.connect(db, timeout=10) as con:
            query = "SELECT value, COUNT(*) FROM text_key_values WHERE key='status' GROUP BY value"
            return dict(con.execute(query).fetchall())
    except sqlite3.OperationalError:  # not created yet
        return {}


def test_kill_9_during_labelling_then_resume(tmp_path):
    """SIGKILL the CLI mid-run: no finished label is lost, and a rerun computes only what is left."""
    frames = [skewed(bulk("Si", "diamond", a=5.43), np.random.default_rng(i), 0.02, 0.05) for i in range(12)]
    write(tmp_path / "cands.extxyz", frames)
    log, db = tmp_path / "calls.log", tmp_path / "d.db"
    cmd = [sys.executable, "-m", "dael.cli", "label", str(tmp_path / "cands.extxyz"), "--db", str(db),
           "--oracle", FAKE, "--param", "delay=0.3", "--param", f"log={log}", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while _counts(db).get("labeled", 0) < 3:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "labelling did not start"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # the workers die with the parent (PR_SET_PDEATHSIG)
    first_run = log.read_text().splitlines()
    time.sleep(0.5)
    assert log.read_text().splitlines() == first_run, "a worker outlived its parent"
    assert len({line.split()[0] for line in first_run}) <= 2  # two long-lived workers did every call
    done_before = {a.info["hash"] for a in Dataset(db).structures("labeled")}
    assert 3 <= len(done_before) < len(frames) and _counts(db)["pending"] == len(frames) - len(done_before)

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(frames)} duplicates skipped" in rerun.stdout.replace("\n", " ")
    second_run = [line.split()[1] for line in log.read_text().splitlines()[len(first_run):]]
    assert not set(second_run) & done_before, "a saved label was computed again"
    assert len(second_run) == len(frames) - len(done_before)
    final = list(Dataset(db).structures(None))
    assert len(final) == len(frames) and {a.info["status"] for a in final} == {"labeled"}
    assert sorted(a.info["hash"] for a in final) == sorted(structure_hash(a) for a in frames)


def test_a_lock_file_left_by_a_killed_writer_blocks_nothing(tmp_path, rng):
    """ASE's db lock file (`NAME.db.lock`) survives kill -9 of a writer; the dataset must not wait on it."""
    import threading

    db = tmp_path / "d.db"
    frames = candidates(rng)[:2]
    Dataset(db).add(frames, oracle=oracle_spec(FAKE))
    (tmp_path / "d.db.lock").touch()  # what a writer killed inside ase.db's write or update leaves behind
    writer = threading.Thread(target=label_dataset, args=(Dataset(db), FAKE), kwargs={"workers": 0}, daemon=True)
    writer.start()
    writer.join(timeout=30)
    assert not writer.is_alive(), "the write waited on the stale lock file"
    assert Dataset(db).counts()["labeled"] == 2


def test_cli_label_and_export(tmp_path, rng):
    frames = candidates(rng)[:4]
    write(tmp_path / "c.extxyz", frames)
    db, out = tmp_path / "d.db", tmp_path / "train.extxyz"
    args = ["label", str(tmp_path / "c.extxyz"), "--db", str(db), "--workers", "0", "--source", "anchor",
            "--round", "3", "--campaign", "si-nacl", "--param", "system=Si", "--fingerprint", "5.0,50,s"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output  # done, but some failed
    assert "2 labeled, 2 failed, 0 duplicates skipped" in result.output  # NaCl with the Si system fails
    rows = list(Dataset(db).structures(None))
    assert {a.info["oracle"] for a in rows} == {'reference {"system":"Si"}'}
    assert {(a.info["source"], a.info["round"], a.info["campaign"], a.info["fp_natx"]) for a in rows} == {
        ("anchor", 3, "si-nacl", 50)}
    result = runner.invoke(app, ["export", "--db", str(db), "--out", str(out), "--source", "anchor"])
    assert result.exit_code == 0, result.output
    assert [len(a) for a in read(out, index=":")] == [8, 8]

    new = ["label", str(tmp_path / "c.extxyz"), "--db", str(tmp_path / "n.db")]
    bad = [
        (new + ["--oracle", "nope"], "unknown calculator"),
        (new + ["--param", "system"], "key=value"),
        (new + ["--param", "system=Fe"], "unknown reference system"),
        (new + ["--source", "md"], "--source"),
        (new + ["--timeout", "0"], "timeout"),
        (new + ["--workers", "2", "--dask", "local"], "not both"),
        (new + ["--fingerprint", "5"], "CUTOFF"),
        (new + ["--campaign", "2024"], "campaign must be a name"),
        (["label", str(tmp_path / "missing.extxyz"), "--db", str(tmp_path / "n.db")], "no such file"),
        (["label", str(tmp_path / "c.extxyz"), "--db", str(tmp_path / "c.extxyz")], "ending in .db"),
        (["export", "--db", str(tmp_path / "n.db")], "no such dataset"),
        (["export", "--db", str(db), "--out", str(tmp_path / "x.extxyz"), "--status", "done"], "status"),
        (["export", "--db", str(db), "--out", str(tmp_path / "x.extxyz"), "--source", "test"], "no rows"),
    ]
    for args, message in bad:
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    assert not (tmp_path / "n.db").exists() and not (tmp_path / "x.extxyz").exists()


def test_dft_oracle_templates(tmp_path, monkeypatch):
    for name in ("ASE_VASP_COMMAND", "VASP_COMMAND", "VASP_SCRIPT", "VASP_PP_PATH", "ASE_ESPRESSO_COMMAND",
                 "ESPRESSO_PSEUDO"):
        monkeypatch.delenv(name, raising=False)
    assert gpaw_parameters(["Si"])["mode"] == {"name": "pw", "ecut": 300.0}
    assert gpaw_parameters(["Si", "C"])["mode"]["ecut"] == 500.0
    assert gpaw_parameters(["Si"], ecut=400, kpts=(2, 2, 2))["mode"]["ecut"] == 400 and \
        gpaw_parameters(["Si"], kpts=(2, 2, 2))["kpts"] == (2, 2, 2)
    with pytest.raises(ValueError, match="command"):
        make_calculator("vasp")
    with pytest.raises(ValueError, match="POTCAR"):
        make_calculator("vasp", command="vasp_std")
    vasp = make_calculator("vasp", command="vasp_std", pp=str(tmp_path), encut=520, directory=str(tmp_path / "v"))
    assert vasp.parameters["encut"] == 520 and vasp.parameters["kspacing"] == 0.25
    with pytest.raises(ValueError, match="command"):
        make_calculator("qe", pseudopotentials={"Si": "Si.upf"})
    with pytest.raises(ValueError, match="pseudopotentials"):
        make_calculator("qe", command="pw.x", pseudo_dir=str(tmp_path))
    qe = make_calculator("qe", command="pw.x", pseudo_dir=str(tmp_path), pseudopotentials={"Si": "Si.upf"},
                     ecutwfc=60, directory=str(tmp_path / "run"))
    atoms = bulk("Si", "diamond", a=5.43)
    qe.write_inputfiles(atoms, ["energy", "forces", "stress"])
    text = (tmp_path / "run" / "espresso.pwi").read_text().lower()
    assert "ecutwfc          = 60" in text and "tstress          = .true." in text
    assert f"ecutrho          = {ESPRESSO_DEFAULTS['ecutrho']}" in text and "si.upf" in text
    assert "k_points automatic" in text


def mixed_dataset(path: Path, rng: np.random.Generator) -> tuple[Dataset, list[Atoms]]:
    """A dataset as `dael label` leaves it: 3 labelled Si cells, a failed NaN-position cell and a failed Cu
    cell, one row pending for another oracle, and 2 labelled test cells. Returns it and the 3 used cells."""
    si8 = bulk("Si", "diamond", a=5.43, cubic=True)
    train = [skewed(si8, rng, strain=0.02, rattle=0.05) for _ in range(3)]
    broken = skewed(si8, rng, strain=0.02, rattle=0.05)
    broken.positions[3, 0] = np.nan
    dataset = Dataset(path)
    dataset.add(train + [broken, bulk("Cu", "fcc", a=3.6)], oracle="reference")
    dataset.add([skewed(si8, rng, strain=0.02, rattle=0.05) for _ in range(2)], oracle="reference",
                source="test")
    dataset.add([skewed(si8, rng, strain=0.02, rattle=0.05)], oracle="other")
    summary = label_dataset(dataset, "reference", workers=0)
    assert (summary.labeled, summary.failed) == (5, 2)
    return dataset, train


def test_training_and_entropy_read_labelled_training_rows_only(tmp_path, rng):
    """Failed and pending rows are kept and reported but never used; test rows are never trained on."""
    from dael.numeric.entropy import GlobalEntropy
    from dael.numeric.fingerprint import fingerprint
    from dael.train.metrics import load_structures

    dataset, train = mixed_dataset(tmp_path / "d.db", rng)
    assert dataset.counts() == {"labeled": 5, "failed": 2, "pending": 1}  # nothing is deleted
    loaded = load_structures(dataset.path)
    assert [structure_hash(a) for a in loaded] == [structure_hash(a) for a in train]
    assert [structure_hash(a) for a in load_structures(dataset.path, sources=["test"])] == [
        a.info["hash"] for a in dataset.structures(sources=["test"])]
    assert dataset.left_out() == "2 failed and 1 pending rows not used; 2 test rows held out"

    settings = FingerprintSettings(4.5, 40, "s")
    expected = GlobalEntropy("atom", 1e-3, settings)
    expected.add(fingerprint(train, cutoff=4.5, natx=40))
    write(tmp_path / "pool.extxyz", [skewed(train[0], rng, strain=0.02, rattle=0.1) for _ in range(3)])
    state = tmp_path / "state.npz"
    result = runner.invoke(app, ["filter", str(tmp_path / "pool.extxyz"), "--dataset", str(dataset.path),
                                 "--budget", "1", "--min-gain", "1e9", "--cutoff", "4.5", "--natx", "40",
                                 "--out", str(tmp_path / "o.extxyz"), "--save-state", str(state)])
    assert result.exit_code == 0, result.output
    assert "2 failed and 1 pending rows not used" in " ".join(result.output.split())  # rich wraps lines
    assert GlobalEntropy.load(state).logdet == pytest.approx(expected.logdet, abs=1e-9)


def test_one_reader_for_files_pools_and_datasets(tmp_path, rng):
    """read_structures: a dael dataset gives its labelled training rows (as train, filter, fingerprint and
    pools see them), any other file its frames; ASE index syntax; clear errors."""
    from dael.data.structures import read_structures
    from dael.selection.pool import iter_pool

    dataset, train = mixed_dataset(tmp_path / "d.db", rng)
    hashes = [structure_hash(a) for a in train]
    assert [structure_hash(a) for a in read_structures(dataset.path)] == hashes
    assert [structure_hash(a) for _, _, a in iter_pool([dataset.path])] == hashes
    assert [structure_hash(a) for a in read_structures(dataset.path, "-1")] == hashes[-1:]
    write(tmp_path / "t.extxyz", train)
    assert [structure_hash(a) for a in read_structures([tmp_path / "t.extxyz", dataset.path], "1:")] == (
        hashes[1:] * 2)
    result = runner.invoke(app, ["fingerprint", str(dataset.path), "--out", str(tmp_path / "f.npz")])
    assert result.exit_code == 0 and result.output.startswith("3 structures"), result.output
    failed = Dataset(tmp_path / "failed.db")
    failed.add([bulk("Cu", "fcc", a=3.6)], oracle="reference")
    label_dataset(failed, "reference", workers=0)
    with pytest.raises(ValueError, match="no labelled rows .*1 failed row not used.*dael label"):
        read_structures(failed.path)
    with pytest.raises(ValueError, match="missing.extxyz: no such file"):
        read_structures(tmp_path / "missing.extxyz")


def test_rows_keep_the_explorers_tags_through_labelling(tmp_path, rng):
    """Provenance: a candidate's atoms.info tags (phase, trajectory, step, gain, ...) come back with its row,
    pending and labelled; the dataset's own keys win over a tag of the same name; arrays are not kept."""
    atoms = skewed(bulk("Si", "diamond", a=5.43, cubic=True), rng, strain=0.01, rattle=0.05)
    atoms.info.update(phase="diamond", trajectory="diamond-8GPa-1000K-k0.25", step=40, gain=np.float64(0.12),
                      accepted=True, source="random", arr=np.arange(3))
    db = Dataset(tmp_path / "d.db")
    db.add([atoms], oracle="reference", source="entropy")
    pending = next(db.structures(status="pending"))
    assert pending.info["trajectory"] == "diamond-8GPa-1000K-k0.25" and pending.info["step"] == 40
    label_dataset(db, "reference", workers=0)
    (row,) = db.labelled()
    assert row.info["phase"] == "diamond" and row.info["gain"] == 0.12 and row.info["accepted"] is True
    assert row.info["source"] == "entropy" and "arr" not in row.info


def test_initial_magnetic_moments_make_a_structure_of_their_own_and_survive_the_dataset(tmp_path):
    """A magnetic and a non-magnetic start of the same positions are two rows (the hash of a structure without
    moments is what it was before moments counted), and the moments come back from the dataset and extxyz."""
    si = bulk("Si", "diamond", a=5.43)
    assert structure_hash(si) == "h8042a6cddc78a3301d41"
    magnetic = si.copy()
    magnetic.set_initial_magnetic_moments([1.0, -1.0])
    assert structure_hash(magnetic) != structure_hash(si)
    dataset = Dataset(tmp_path / "spin.db")
    added = dataset.add([si, magnetic], oracle="reference")
    assert len(added.ids) == 2 and not added.duplicates
    back = [atoms for _, atoms in dataset.pending()]
    assert back[1].get_initial_magnetic_moments().tolist() == [1.0, -1.0]
    write(tmp_path / "spin.extxyz", back)
    assert [structure_hash(a) for a in read(tmp_path / "spin.extxyz", ":")] == [structure_hash(si),
                                                                                 structure_hash(magnetic)]
    qe = make_calculator("qe", command="pw.x", pseudo_dir=str(tmp_path), pseudopotentials={"Si": "Si.upf"},
                         directory=str(tmp_path / "qe"))
    qe.write_inputfiles(back[1], ["energy", "forces"])  # ASE's Espresso turns spin on from the moments
    text = " ".join((tmp_path / "qe" / "espresso.pwi").read_text().lower().split())
    assert "nspin = 2" in text and "starting_magnetization(1)" in text
