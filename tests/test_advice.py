"""The measured advice: deciding from planted race results, and the race itself on planted images
whose right answer is known by construction."""

from __future__ import annotations

import pytest

from tl_core.advice import cheaper_pick, cheaper_sentence, final_pick, pick, race_rows, verdict_sentence
from tl_core.race import extrapolate, worth_racing

SMALL_DIFFERENT = {"size": "small", "similarity": "different", "scenario": 3}


def _cand(k, correct, seconds, n=200, wrong=None):
    wrong = wrong if wrong is not None else [f"k{k}-{i}" for i in range(n - correct)]
    return {"scenario": k, "correct": correct, "n": n, "accuracy": correct / n, "estimated_seconds": seconds,
            "seconds": seconds / 10, "wrong": wrong, "interval": [0.0, 1.0]}


def test_pick_is_the_best_measured_and_the_cheapest_among_equals():
    cands = [_cand(1, 180, 60), _cand(2, 184, 90), _cand(3, 190, 140), _cand(4, 196, 400)]
    assert pick(cands)["scenario"] == 4
    tie = [_cand(1, 198, 60), _cand(2, 198, 90)]
    assert pick(tie)["scenario"] == 1  # equal accuracy: the cheaper one


def test_a_costlier_scenario_races_only_while_it_could_win_by_the_margin():
    assert worth_racing([], 1.0)  # the cheapest always runs
    assert worth_racing([_cand(1, 190, 60)], 1.0)  # 95%: 5 points left to win
    assert not worth_racing([_cand(1, 199, 60)], 1.0)  # 99.5%: nothing costlier can win by a point
    assert worth_racing([_cand(1, 199, 60)], 0.5)  # ... unless the user's margin is smaller
    assert worth_racing([_cand(1, 200, 60)], 0.0)  # a margin of 0: always race


def test_the_trend_along_the_trainable_share_predicts_the_untrained_scenario():
    rows = [{"trainable_share": x, "accuracy": a} for x, a in ((0.0, 0.955), (0.3, 0.952), (0.58, 0.977))]
    assert extrapolate(rows, 1.0) == pytest.approx(0.988, abs=0.001)  # rising: fine-tuning more should pay
    flat = [{"trainable_share": x, "accuracy": 0.991} for x in (0.0, 0.3, 0.58)]
    assert extrapolate(flat, 1.0) == pytest.approx(0.991)
    assert extrapolate(rows[:2], 1.0) is None  # two points are no trend
    steep = [{"trainable_share": x, "accuracy": a} for x, a in ((0.0, 0.80), (0.3, 0.90), (0.58, 0.99))]
    assert extrapolate(steep, 1.0) == 1.0  # capped: never above 100%
    same = [{"trainable_share": 0.5, "accuracy": a} for a in (0.8, 0.9, 0.95)]
    assert extrapolate(same, 1.0) is None  # no spread in the share: no line


def test_final_pick_takes_the_prediction_only_when_it_wins_by_the_margin():
    cands = [_cand(1, 191, 60), _cand(2, 190, 90), _cand(3, 195, 140)]
    ahead = [{"scenario": 4, "accuracy": 0.99, "predicted": True, "estimated_seconds": 400}]
    best, cheap = final_pick(cands, ahead, 1.0)
    assert best["scenario"] == 4 and cheap["scenario"] == 3 and cheap["reason"] == "predicted"
    assert "predicted 1.5 points better" in cheaper_sentence(best, cheap, 1.0)
    close = [{**ahead[0], "accuracy": 0.98}]  # half a point: not worth 3x the time on a guess
    best, cheap = final_pick(cands, close, 1.0)
    assert best["scenario"] == 3 and cheap is None or cheap["scenario"] in (1, 2)
    assert final_pick(cands, close, 0.5)[0]["scenario"] == 4


def test_cheaper_pick_by_margin_and_by_noise():
    shared = [f"x{i}" for i in range(4)]
    best = _cand(4, 196, 400, wrong=shared)
    # 0.5 points below on the same images: inside the 1-point margin.
    close = _cand(3, 195, 140, wrong=shared + ["y"])
    assert cheaper_pick([best, close], best, margin=1.0)["reason"] == "margin"
    # 2 points below, but the images they disagree on split 5 to 1: chance.
    noisy = _cand(3, 192, 140, wrong=shared[:3] + [f"y{i}" for i in range(5)])
    got = cheaper_pick([best, noisy], best, margin=1.0)
    assert got["reason"] == "noise" and got["p"] > 0.05
    # 10 points below, all on images the best got right: measurable and beyond the margin.
    far = _cand(1, 176, 60, wrong=shared + [f"z{i}" for i in range(20)])
    assert cheaper_pick([best, far], best, margin=1.0) is None
    assert cheaper_pick([best, far], best, margin=15.0)["scenario"] == 1  # the user's margin decides
    text = cheaper_sentence(best, got, 1.0)
    assert text.startswith("Cheaper pick: scenario 3 reached 96.0%") and "in 35% of the time" in text


def test_verdict_names_the_textbook_and_the_measured_difference():
    cands = [_cand(1, 184, 60), _cand(2, 185, 90), _cand(3, 187, 65), _cand(4, 191, 357)]
    text = verdict_sentence(SMALL_DIFFERENT, cands, pick(cands))
    assert text == ("The textbook says 3 for small + different; on your images fine-tuning everything measured "
                    "2.0 points better, at 5.5x the time.")
    guess = {"scenario": 4, "accuracy": 0.951, "predicted": True, "estimated_seconds": 357}
    text = verdict_sentence(SMALL_DIFFERENT, cands[:3] + [guess], guess)
    assert text == ("The textbook says 3 for small + different; on your images the trend of the measured scenarios "
                    "predicts fine-tuning everything 1.6 points better, at 5.5x the time.")
    agree = verdict_sentence(SMALL_DIFFERENT, cands[:3], pick(cands[:3]))
    assert agree.startswith("The textbook says 3 for small + different, and the race on your images agrees")
    # The textbook's scenario was never raced: the race stopped before it.
    large = {"size": "large", "similarity": "different", "scenario": 4}
    stopped = verdict_sentence(large, cands[:2], pick(cands[:2]))
    assert "fully frozen" not in stopped and "so it was not trained" in stopped and "scenario 2" not in stopped


def test_race_rows_mark_textbook_pick_cheaper_and_unraced():
    advice = {"textbook": 3, "pick": 2, "cheaper": 1,
              "race": {"candidates": [_cand(1, 190, 60), _cand(2, 192, 90)],
                       "predicted": [{"scenario": 4, "accuracy": 0.9, "estimated_seconds": 400}]}}
    rows = race_rows(advice)
    assert [r[""] for r in rows] == ["cheaper", "pick", "textbook", ""]
    assert rows[2]["validation accuracy"] == "not raced" and rows[0]["validation accuracy"] == "95.0%"
    assert rows[3]["validation accuracy"] == "~90.0% (predicted)" and rows[3]["estimated full run (s)"] == 400


def _planted_advice(data: str) -> dict:
    cands = [{**_cand(1, 184, 60), "interval": [0.87, 0.95]}, {**_cand(3, 190, 140), "interval": [0.91, 0.97]}]
    for c in cands:
        c.pop("wrong")
    return {"data": data, "size": "small", "similarity": "different", "scenario": 3, "textbook": 3, "pick": 4,
            "pick_is_prediction": True, "cheaper": 3, "margin_points": 1.0,
            "verdict": "The textbook says 3 for small + different; on your images the trend of the measured "
                       "scenarios predicts fine-tuning everything 1.6 points better, at 2.9x the time.",
            "cheaper_text": "Cheaper pick: scenario 3 measured 95.0%.",
            "race": {"candidates": cands, "predicted": [{"scenario": 4, "accuracy": 0.966, "estimated_seconds": 400}],
                     "stopped": [2], "sample": {"train": 140, "holdout": 200, "epochs": 5}},
            "cost": {"seconds": 90.0, "cpu_seconds": 170.0, "lab_estimate_seconds": 700.0, "share_of_lab": 0.129}}


def test_advice_jobs_are_found_by_data_folder(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr("tl_core.runs.pid_alive", lambda pid: pid == os.getpid())  # this process: "the job"
    from tl_core.advice import advice_job
    from tl_core.runs import RunDir, write_json_atomic

    data = tmp_path / "photos"
    data.mkdir()
    assert advice_job(tmp_path / "runs", str(data)) == ("none", None)
    job = RunDir.create(tmp_path / "runs", prefix="advice")
    job.write_status(data=str(data.resolve()), pid=os.getpid())
    assert advice_job(tmp_path / "runs", str(data)) == ("running", job.path)
    job.write_status(pid=2 ** 22 + 12345)  # no such process: it died before writing its answer
    assert advice_job(tmp_path / "runs", str(data))[0] == "failed"
    write_json_atomic(job.path / "advice.json", _planted_advice(str(data.resolve())))
    state, advice = advice_job(tmp_path / "runs", str(data))
    assert state == "done" and advice["pick"] == 4
    assert advice_job(tmp_path / "runs", str(tmp_path / "other")) == ("none", None)


def test_plan_page_shows_the_textbook_beside_the_measured_pick(env):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT
    from tl_core.runs import RunDir, write_json_atomic

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert any("Choose a data set on the Data page" in c.value for c in at.caption)  # no data yet: no race
    data = env / "data" / "photos"
    data.mkdir(parents=True)
    job = RunDir.create(env / "runs", prefix="advice")
    write_json_atomic(job.path / "advice.json", _planted_advice(str(data.resolve())))
    at.session_state["wizard"]["data_dir"] = str(data)
    at.radio(key="q_similarity").set_value("different").run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Textbook (your answers)"] == "scenario 3" and metrics["Measured on your images"] == "scenario 4"
    assert any("predicts fine-tuning everything 1.6 points better" in m.value for m in at.markdown)
    assert any(i.value.startswith("Cheaper pick: scenario 3") for i in at.info)
    table = at.dataframe[0].value
    assert list(table["validation accuracy"]) == ["92.0%", "not raced", "95.0%", "~96.6% (predicted)"]
    assert at.button(key="p_race").label == "Race again"


def test_the_race_in_words_names_measured_predicted_and_unraced_scenarios():
    from tl_core.advice import explain_race

    text = explain_race(_planted_advice("/data"))
    assert "Race on your images (140 training, 200 validation images; 5 fine-tuning epochs each):" in text
    assert "- scenario 3: 95.0% (95% interval 91%-97%) on 200 validation images; raced in 14 s" in text
    assert "- scenario 4: about 96.6%, predicted from the measured ones (not trained)" in text
    assert "- not raced (the best so far left less than your margin to win): 2" in text
    assert "**Measured pick: scenario 4.** The textbook says 3" in text and "Cheaper pick: scenario 3" in text
    assert "about 13% of a full lab" in text
