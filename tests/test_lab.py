"""The scenario lab: four scenarios, one budget, compared; and its one-line verdict."""

from __future__ import annotations

import json

import pytest

from conftest import run_cli

from tl_core.figures import lab_chart
from tl_core.lab import read_lab, summarize_lab
from tl_core.runs import RunDir, run_state


@pytest.mark.slow
def test_lab_cli_trains_all_four_scenarios_as_runs(tmp_path, image_folder):
    proc = run_cli("lab", "--data", str(image_folder), "--runs-dir", str(tmp_path / "runs"), "--epochs", "1",
                   "--cache-dir", str(tmp_path / "cache"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["advised"] in (1, 2, 3, 4)
    rows = result["scenarios"]
    assert [r["scenario"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert {"test_accuracy", "seconds", "trainable_params", "run_dir"} <= set(r)
        assert 0 <= r["test_accuracy"] <= 1 and r["seconds"] > 0
        assert run_state(RunDir(r["run_dir"])) == "succeeded"  # a normal run, listed on the Runs page
    params = [r["trainable_params"] for r in rows]
    assert params == sorted(params) and len(set(params)) == 4  # freezing less trains more
    assert rows[0]["test_accuracy"] >= 0.8  # the easy colour patterns: the frozen features suffice
    lab = read_lab(result["lab_dir"])
    assert lab["advised"] == result["advised"] and len(lab["scenarios"]) == 4
    assert json.loads((tmp_path / "runs" / result["lab_dir"].rsplit("/", 1)[-1] / "status.json").read_text())[
        "state"] == "succeeded"
    assert result["summary"].startswith("Best: scenario")


def _row(k, acc, seconds=10.0):
    return {"scenario": k, "test_accuracy": acc, "seconds": seconds, "trainable_params": 10 ** (3 + k),
            "run_dir": f"/runs/r{k}"}


def test_summary_says_whether_the_advisor_was_within_a_point():
    rows = [_row(1, 0.90), _row(2, 0.95), _row(3, 0.945), _row(4, 0.93)]
    assert "That is the scenario the advisor picked" in summarize_lab({"advised": 2, "scenarios": rows})
    text = summarize_lab({"advised": 3, "scenarios": rows})
    assert text.startswith("Best: scenario 2 with 95.0%") and "within 1 point of the best" in text
    assert "5.0 points below the best" in summarize_lab({"advised": 1, "scenarios": rows})
    assert "has not finished" in summarize_lab({"advised": 4, "scenarios": rows[:2]})
    assert summarize_lab({"scenarios": []}) == "No scenario has finished yet."


def test_lab_chart_marks_the_advised_scenario():
    fig = lab_chart([_row(1, 0.9), _row(2, 0.95, 40), _row(3, 0.94), _row(4, None)], advised=3)
    assert len(fig.data) == 3  # unfinished scenario 4 is not drawn
    symbols = {t.name: t.marker.symbol for t in fig.data}
    assert symbols == {"scenario 1": "circle", "scenario 2": "circle", "scenario 3 (advised)": "star"}
    assert fig.layout.xaxis.type == "log" and list(fig.data[1].y) == [95.0]


def test_the_lab_bar_is_weighted_by_each_scenarios_expected_cost():
    from tl_core.backbones import group_table
    from tl_core.lab import lab_configs, lab_progress, lab_weights

    configs = lab_configs("sample", epochs=5)
    weights = lab_weights(configs, 200, *group_table(configs[0].backbone)[1:])
    assert weights["1"] < weights["2"] < weights["4"]  # freezing less costs more
    measured = {"weights": weights, "measurement": {}, "scenarios": []}
    after_s1 = {**measured, "scenarios": [{"scenario": 1}]}
    # scenario 1 on cached features is a small share of the work, not a quarter of the bar
    assert lab_progress(measured) < lab_progress(after_s1) < 0.25
    halfway = {**after_s1, "current": {"scenario": 2}}
    assert lab_progress(after_s1) < lab_progress(halfway, 0.5) < lab_progress(halfway, 1.0)
    done = {**measured, "scenarios": [{"scenario": k} for k in (1, 2, 3, 4)]}
    assert lab_progress(done) == 1.0
    assert lab_progress({}) == 0.0  # before the measurement ends


def test_summary_gives_intervals_and_compares_the_pick_photo_by_photo():
    best = {**_row(4, 0.95), "test_images": 100, "test_wrong": [f"w{i}" for i in range(5)]}
    # The pick is 2 points below, but on the photos where they disagree it is 5 against 3: chance.
    close = {**_row(3, 0.93), "test_images": 100, "test_wrong": [f"w{i}" for i in range(2)] + ["v1", "v2", "v3", "v4", "v5"]}
    text = summarize_lab({"advised": 3, "scenarios": [best, close]})
    assert "95.0% test accuracy (95% interval 89%-98%)" in text
    assert "2.0 points below the best" in text
    assert "5 only the best got right, 3 only the pick: no measurable difference (paired test, p = 0.73)" in text
    # Ten photos the pick misses and the best gets, none the other way: a real difference.
    far = {**_row(1, 0.85), "test_images": 100, "test_wrong": [f"w{i}" for i in range(5)] + [f"u{i}" for i in range(10)]}
    text = summarize_lab({"advised": 1, "scenarios": [best, far]})
    assert "10 only the best got right, 0 only the pick: a real difference (paired test, p = 0.002)" in text
    same = {**_row(2, 0.95), "test_images": 100, "test_wrong": best["test_wrong"]}  # a tie on the same photos
    text = summarize_lab({"advised": 2, "scenarios": [best, same]})
    assert text.endswith("Both got exactly the same 100 test photos right or wrong.") and "chance" not in text


def test_summary_offers_the_cheaper_scenario_within_the_margin_or_the_noise():
    from tl_core.lab import cheaper_in_lab

    def row(k, wrong, seconds):
        return {**_row(k, 1 - len(wrong) / 310, seconds), "test_images": 310, "test_wrong": wrong}

    base = [f"w{i}" for i in range(3)]
    best = row(4, base, 410)
    s3 = row(3, base + [f"a{i}" for i in range(4)], 139)  # 1.3 points below, 4 photos against 0: chance
    s2 = row(2, base + [f"b{i}" for i in range(12)], 76)  # 3.9 points below, 12 against 0: real
    assert cheaper_in_lab([s2, s3, best], best)["scenario"] == 3
    text = summarize_lab({"advised": 4, "scenarios": [s2, s3, best]})
    assert "scenario 3 reached 97.7% in 139 s, 1.3 points below the best at 2.9x less time" in text
    assert cheaper_in_lab([s2, best], best) is None  # measurably worse and beyond the margin: no offer
    assert cheaper_in_lab([s2, best], best, margin=5.0)["scenario"] == 2  # the user's margin


def test_repeated_seeds_report_the_spread_and_compare_one_split():
    from tl_core.lab import lab_progress, spread

    rows = [{**_row(k, acc), "seed": seed} for seed, accs in enumerate(((0.95, 0.97), (0.93, 0.98), (0.96, 0.96)))
            for k, acc in zip((1, 4), accs)]
    table = spread(rows)
    assert table[1] == {"mean": pytest.approx(0.9467, abs=1e-4), "low": 0.93, "high": 0.96, "n": 3}
    text = summarize_lab({"advised": 1, "scenarios": rows})
    assert text.startswith("Best: scenario 4 with 97.0%")  # seed 0's split, not the best of all seeds
    assert "Over 3 seeds (each its own split, head and batch order): scenario 1 94.7% (93.0%-96.0%), " \
           "scenario 4 97.0% (96.0%-98.0%)." in text
    assert "Over" not in summarize_lab({"advised": 1, "scenarios": rows[:2]})  # one seed: no spread
    weights = {"measure": 10.0, "1": 10.0, "2": 10.0, "3": 10.0, "4": 10.0}
    state = {"weights": weights, "measurement": {}, "repeats": 3, "scenarios": [{"scenario": k} for k in (1, 2, 3, 4)]}
    assert lab_progress(state) == pytest.approx(50 / 130, abs=1e-3)  # one seed of three done


def test_lab_page_shows_every_seed_and_the_spread(env):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    lab = env / "runs" / "20260101-000000-lab-abcdef"
    lab.mkdir(parents=True)
    (lab / "status.json").write_text(json.dumps({"state": "succeeded"}))
    rows = [{**_row(k, acc), "seed": seed, "frozen_fraction": 0.5}
            for seed, accs in enumerate(((0.95, 0.97), (0.93, 0.98))) for k, acc in zip((1, 4), accs)]
    (lab / "lab.json").write_text(json.dumps({"data": "/x/sign", "advised": 1, "scenarios": rows, "repeats": 2,
                                              "seconds": 40}))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.query_params["lab"] = lab.name
    at.switch_page("pages/lab.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert list(at.dataframe[0].value["seed"]) == [0, 0, 1, 1]
    assert any("Over 2 seeds" in c.value for c in at.caption)
