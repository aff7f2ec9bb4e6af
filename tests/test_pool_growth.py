"""A benchmark's pools grow with benchmark.repeats and sizes: only the new trajectories and anchors are explored,
the stored structures stay first and unchanged, the labels marker is dropped, and the holdout takes 10 % of the
new structures only (a holdouts.json kept before it listed its structures included); a run without the oracle
does not grow them."""

import json

import pytest
from ase import Atoms
from ase.io import read, write

from dael.benchmark import pools
from dael.benchmark.evaluation import holdout_indices
from dael.benchmark.pools import explore_pools
from dael.campaign.config import Benchmark
from dael.campaign.loop import fingerprint_settings
from dael.campaign.presets import phases, preset
from dael.data.dataset import structure_hash
from dael.explore.anchors import ANCHOR_STRAINS
from dael.util.files import mark

from pool_helpers import labelled_copies


def test_more_repeats_and_a_larger_n_grow_the_stored_pools(tmp_path):
    campaign = preset("Si")
    e = campaign.explore
    e.pressures, e.temperatures, e.k_global, e.steps, e.thermalize, e.relax_steps = [0.0], [900.0], [0.25], 30, 5, 5
    campaign.benchmark = Benchmark(sizes=[8], draws=1, repeats=1, snapshots=3, test_repeats=1, transfer_labels=0)
    seeds = phases("Si")
    settings = fingerprint_settings(campaign, seeds)
    said = []
    first = explore_pools(campaign, seeds, tmp_path, settings, "reference", "reference", said.append)
    jobs = len(seeds)  # one trajectory per phase at one pressure, temperature and bias
    assert len(first["entropy"]) == len(first["random"]) == 3 * jobs
    assert json.loads((tmp_path / "pools" / "entropy.json").read_text()) == {"repeats": 1}
    thermal = [a for a in first["anchor"] if a.info["kind"] == "thermal"]
    assert len(thermal) == 2 * jobs and len(first["anchor"]) == jobs * (1 + len(ANCHOR_STRAINS) + 2)

    # a folder as an older dael left it: holdouts.json without the structures it was drawn from
    data = {name: labelled_copies(first[name]) for name in ("entropy", "random")}
    held = holdout_indices(data, campaign.seed, tmp_path)
    kept = json.loads((tmp_path / "holdouts.json").read_text())
    (tmp_path / "holdouts.json").write_text(json.dumps({name: kept[name] for name in ("entropy", "random")}))
    mark(tmp_path / "labels.done", {"labelled": 0, "pools": ["entropy", "random", "anchor", "test", "transfer"]})

    campaign.benchmark.repeats, campaign.benchmark.sizes = 2, [80]
    said.clear()
    grown = explore_pools(campaign, seeds, tmp_path, settings, "reference", "reference", said.append)
    for name in ("entropy", "random", "anchor"):
        assert len(grown[name]) > len(first[name])
        assert [structure_hash(a) for a in grown[name][:len(first[name])]] == [
            structure_hash(a) for a in first[name]], name  # the stored ones first, unchanged
    assert len(grown["entropy"]) == len(grown["random"]) == 2 * 3 * jobs
    new_names = {a.info["trajectory"] for a in grown["entropy"][len(first["entropy"]):]}
    assert not new_names & {a.info["trajectory"] for a in first["entropy"]}  # new seeds, not the old runs again
    # N = 80: 20 % anchors over 0.8 of the pool → 20 anchors over 2 groups → 5 thermal snapshots each
    assert sum(a.info["kind"] == "thermal" for a in grown["anchor"]) == 5 * jobs
    assert not (tmp_path / "labels.done").exists()  # the new structures get labelled
    assert any("grown from 6 to 12" in line for line in said)

    # the holdout keeps what it held and takes 10 % (at least one) of the new structures of each pool
    data = {name: labelled_copies(grown[name]) for name in ("entropy", "random")}
    again = holdout_indices(data, campaign.seed, tmp_path)
    for name in ("entropy", "random"):
        old = {data[name][i].info["hash"] for i in held[name]}
        now = {data[name][i].info["hash"] for i in again[name]}
        assert old < now and len(now - old) == 1
        assert all(i >= len(first[name]) for i in again[name] if data[name][i].info["hash"] not in old)

    # a rerun explores nothing; a stored pool without its record counts the repeats its trajectory tags name
    (tmp_path / "pools" / "random.json").unlink()
    said.clear()
    same = explore_pools(campaign, seeds, tmp_path, settings, "reference", "reference", said.append)
    assert not said and {k: len(v) for k, v in same.items()} == {k: len(v) for k, v in grown.items()}
    assert len(read(tmp_path / "pools" / "entropy.extxyz", ":")) == 12

    # without the oracle (grow False) a campaign asking for more is one error, before any MD
    campaign.benchmark.repeats = 3
    with pytest.raises(ValueError, match=r"benchmark.repeats 3 asks for more structures .* \(repeats 2\)"):
        explore_pools(campaign, seeds, tmp_path, settings, "reference", "reference", said.append, grow=False)
    campaign.benchmark.repeats, campaign.benchmark.sizes = 2, [160]
    with pytest.raises(ValueError, match=r"N = 160 asks .*\(20 anchors, 5 thermal per phase and pressure; "
                                         r"40 anchors need 15\)"):
        explore_pools(campaign, seeds, tmp_path, settings, "reference", "reference", said.append, grow=False)
    # a subset folder's anchors, cut to one thermal snapshot per phase and pressure, serve an N they suffice for
    cut = [a for a in grown["anchor"] if a.info["kind"] != "thermal"] + thermal[::2]
    write(tmp_path / "pools" / "anchor.extxyz", cut, format="extxyz")
    campaign.benchmark.sizes = [len(cut) * 4]  # 20 % of N over 0.8 of the pool: exactly the stored anchors
    assert len(explore_pools(campaign, seeds, tmp_path, settings, "reference", "reference", said.append,
                             grow=False)["anchor"]) == len(cut)
    campaign.benchmark.sizes = [len(cut) * 4 + 4]
    with pytest.raises(ValueError, match=r"asks for more structures .*\(12 anchors, 1 thermal per phase"):
        explore_pools(campaign, seeds, tmp_path, settings, "reference", "reference", said.append, grow=False)
    assert not list((tmp_path / "pools" / "entropy-md" / "trajectories").glob("*_s20000.extxyz"))


def test_a_new_anchor_pool_hashes_as_its_file_reads_back(tmp_path, monkeypatch):
    # 1.2345650001 Å rounds to 1.23457 at the hash's 5 decimals, but extxyz stores 1.23456500, which rounds to
    # 1.23456: an anchor hashed before it was written would miss its label when the next run reads the file
    atoms = Atoms("Si2", positions=[[0, 0, 0], [1.2345650001, 1.3, 1.4]], cell=[5.43] * 3, pbc=True,
                  info={"kind": "thermal"})
    monkeypatch.setattr(pools, "anchors", lambda *args, **kwargs: [atoms.copy()])
    campaign = preset("Si")
    returned = pools.anchor_pool(campaign, phases("Si"), tmp_path, "reference", lambda line: None)
    stored = read(tmp_path / "anchor.extxyz", ":")
    assert structure_hash(atoms) != structure_hash(stored[0])  # the case write_pool exists for
    assert [structure_hash(a) for a in returned] == [structure_hash(a) for a in stored]
