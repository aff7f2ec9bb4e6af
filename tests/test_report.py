"""The benchmark's report: tables, ratios against random MD, the verdict in words, per-condition tables, HTML."""

import pytest

from dael.benchmark.report import condition_tables, markdown_table, ratios, summarize, verdict, write_report


def test_report_tables_ratios_and_html(tmp_path):
    records = []
    for pool, scale in (("stream", 1.0), ("random", 3.0), ("mixed", 1.5)):
        for n in (10, 20):
            for d in range(2):
                records.append({"pool": pool, "size": n, "draw": d, "set": "test", "energy_mae": scale * (10 + d) / n,
                                "force_mae": scale * 100 / n, "stress_mae": scale})
    rows = summarize(records)
    entropy10 = next(r for r in rows if r["pool"] == "stream" and r["size"] == 10)
    assert entropy10["energy_mae"] == pytest.approx(1.05) and entropy10["energy_mae_std"] == pytest.approx(0.05)
    assert all(r["energy_mae"] == pytest.approx(3.0) for r in ratios(rows))
    assert "| test | stream | 10 | 2 | 1.05 ± 0.05" in markdown_table(rows)
    html = write_report(records, tmp_path, "t", {"a": 1}, ["note"]).read_text()
    assert "3.00×" in html and (tmp_path / "curves-test.png").stat().st_size > 1000
    assert "test, N = 20: stream is best (0.53); random MD 1.57 (3.00× the error)." in html
    assert (tmp_path / "results.csv").read_text().count("\n") == 7


def test_verdict_compares_the_best_selection_with_random_md_and_its_anchored_control():
    records = [{"pool": pool, "size": 20, "draw": 0, "set": "test", "energy_mae": e, "force_mae": 1.0,
                "stress_mae": 1.0}
               for pool, e in (("stream-fill", 3.0), ("mixed", 2.0), ("random-anchored", 1.6), ("random", 4.0))]
    assert verdict(summarize(records)) == [
        "test, N = 20: random-anchored is best (1.60); random MD 4.00 (2.50× the error); random MD with the same"
        " anchors (random-anchored) 1.60 (0.80× mixed's error)."]
    without = verdict(summarize([r for r in records if r["pool"] != "random-anchored"]))
    assert without == ["test, N = 20: mixed is best (2.00); random MD 4.00 (2.00× the error)."]
    thermal = verdict(summarize([{**r, "energy_mae": 1.0} if r["pool"] == "random" else r for r in records]))
    assert thermal == ["test, N = 20: random is best (1.00); the best selection, mixed, has 2.00× random MD's error;"
                       " random MD with the same anchors (random-anchored) 1.60 (0.80× mixed's error)."]


def test_condition_tables_say_where_on_the_grid_each_set_errs(tmp_path):
    """Per-condition test errors are tabled at the largest N with random MD's error over the best other
    strategy's, and kept out of the plots and the verdict."""
    records = [{"pool": pool, "size": n, "draw": 0, "set": f"test@B2 0 GPa {t} K", "energy_mae": e * t / 300,
                "force_mae": 2 * e, "stress_mae": 1.0}
               for pool, e in (("mixed", 2.0), ("stream-fill", 4.0), ("random", 1.0)) for n in (10, 20)
               for t in (300, 1000)]
    records += [{**r, "set": "test"} for r in records if r["set"].endswith("300 K")]
    energy, force = condition_tables(summarize(records))
    assert energy.splitlines()[0] == "Test energy MAE (meV/atom) by condition, N = 20:"
    assert "| condition | stream-fill | mixed | random | random / best other |" in energy
    assert "| B2 0 GPa 1000 K | 13.33 | 6.67 | 3.33 | 0.50 |" in energy
    assert "| B2 0 GPa 300 K | 8.00 | 4.00 | 2.00 | 0.50 |" in force
    zero = [{**r, "force_mae": 1e-4 if r["pool"] == "random" else 1e-3} for r in records]  # symmetric cells
    assert "| B2 0 GPa 300 K | 0.00 | 0.00 | 0.00 | – |" in condition_tables(summarize(zero))[1]
    html = write_report(records, tmp_path, "t", {}).read_text()
    assert "B2 0 GPa 1000 K | 13.33" in html and "test@" not in "".join(verdict(summarize(records)))
    assert [p.name for p in tmp_path.glob("curves-*.png")] == ["curves-test.png"]


def test_the_robustness_check_is_tabled_per_strategy_and_size_not_plotted(tmp_path):
    """Records of the 'robustness' set (failure fraction, median time to failure of the models' own MD) get their
    own table in report.html and results.md, mean ± std over draws, '–' where no trajectory failed; no curve, no
    row in the error tables."""
    records = [{"pool": "random", "size": 20, "draw": d, "set": "test", "energy_mae": 2.0, "force_mae": 1.0,
                "stress_mae": 1.0} for d in range(2)]
    records += [{"pool": "random", "size": 20, "draw": d, "set": "robustness", "failure_fraction": f,
                 "median_time_to_failure_ps": t} for d, f, t in ((0, 0.5, 2.0), (1, 0.25, 4.0))]
    records += [{"pool": "mixed", "size": 20, "draw": 0, "set": "robustness", "failure_fraction": 0.0,
                 "median_time_to_failure_ps": None}]
    html = write_report(records, tmp_path, "t", {}).read_text()
    assert "<h2>MD robustness" in html
    assert "<td>random</td><td>20</td><td>2</td><td>0.38 ± 0.12</td><td>3.00 ± 1.00</td>" in html
    assert "<td>mixed</td><td>20</td><td>1</td><td>0.00 ± 0.00</td><td>–</td>" in html
    assert not (tmp_path / "curves-robustness.png").exists()
    errors, robust = (tmp_path / "results.md").read_text().split("MD robustness")  # its own table, after the errors
    assert "robustness" not in errors and "| random | 20 | 2 | 0.38 ± 0.12 | 3.00 ± 1.00 |" in robust
    assert "| mixed | 20 | 1 | 0.00 ± 0.00 | – |" in robust
    assert "MD robustness" not in write_report(records[:2], tmp_path / "none", "t", {}).read_text()
