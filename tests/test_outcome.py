"""Outcome first: the verdict with the test count, and at most three steps the app can apply."""

from tl_core.config import TrainConfig
from tl_core.outcome import Step, outcome, retrain_config


def _test(right, n, mistakes=None):
    wrong = n - right if mistakes is None else mistakes
    return {"n": n, "accuracy": right / n, "misclassified": [{"path": f"{i}.jpg"} for i in range(wrong)]}


def _epochs(train_acc, val_acc, val_loss):
    return [{"kind": "epoch", "stage": "finetune", "epoch": i + 1, "train_acc": t, "val_acc": v, "val_loss": vl}
            for i, (t, v, vl) in enumerate(zip(train_acc, val_acc, val_loss))]


GOOD_CURVES = _epochs([0.9, 0.95, 0.97], [0.9, 0.94, 0.94], [0.3, 0.2, 0.2])
UNDER = _epochs([0.4, 0.5, 0.6, 0.65], [0.4, 0.5, 0.55, 0.6], [1.5, 1.3, 1.2, 1.1])
OVER = _epochs([0.8, 0.9, 0.97, 1.0], [0.75, 0.8, 0.82, 0.8], [0.6, 0.5, 0.55, 0.6])


def test_a_good_result_says_so_with_the_count_and_points_to_predict():
    o = outcome(_test(27, 30), GOOD_CURVES, {"scenario": 3, "epochs": 12}, measured_scenario=1)
    assert o.level == "good"
    assert o.sentence == "Good for this data: 27 of 30 test photos right (90%)."
    assert [s.action for s in o.steps] == ["predict", "mistakes"]  # no retraining advice on a good result
    assert o.steps[1].label == "See the 3 mistakes"


def test_a_poor_result_offers_the_measured_scenario_and_more_epochs():
    o = outcome(_test(15, 30), UNDER, {"scenario": 1, "epochs": 30, "augment": "none"}, measured_scenario=3)
    assert o.level == "poor" and "only 15 of 30 test photos right (50%)" in o.sentence
    assert [s.action for s in o.steps] == ["scenario", "epochs", "mistakes"]
    assert o.steps[0].value == 3 and o.steps[1].value == 60


def test_never_more_than_three_steps_and_only_settings_the_app_has():
    o = outcome(_test(22, 30), OVER, {"scenario": 1, "epochs": 12, "augment": "none"}, measured_scenario=3)
    assert o.level == "fair" and len(o.steps) <= 3
    assert {s.action for s in o.steps} <= {"predict", "mistakes", "scenario", "epochs", "augment"}
    assert "augment" in [s.action for s in o.steps]
    assert not any("dropout" in s.label.lower() for s in o.steps)
    # the measured scenario is not offered when the run already used it
    same = outcome(_test(22, 30), OVER, {"scenario": 3, "epochs": 12}, measured_scenario=3)
    assert "scenario" not in [s.action for s in same.steps]


def test_no_test_images_no_verdict():
    assert outcome(None, GOOD_CURVES, {}) is None
    assert outcome({"n": 0, "accuracy": None}, GOOD_CURVES, {}) is None


def test_retrain_config_changes_only_what_the_step_says():
    cfg = TrainConfig(data="d", scenario=1, frozen_groups=18, epochs=100, head_epochs=0, lr_ratio=100.0)
    s3 = retrain_config(cfg, Step("scenario", "", 3))
    assert (s3.scenario, s3.frozen_groups, s3.epochs, s3.lr_ratio) == (3, None, None, None) and s3.data == "d"
    assert retrain_config(cfg, Step("epochs", "", 60)).epochs == 60
    light = retrain_config(cfg, Step("augment", ""))
    assert light.augment == "light" and light.epochs is None
