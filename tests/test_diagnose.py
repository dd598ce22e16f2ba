"""The fit diagnosis reads the curves the way the method teaches."""

from tl_core.diagnose import diagnose, summarize


def _epochs(train_acc, val_acc, val_loss, stage="finetune"):
    return [{"kind": "epoch", "stage": stage, "epoch": i + 1, "train_acc": t, "val_acc": v, "val_loss": vl,
             "train_loss": 1 - t} for i, (t, v, vl) in enumerate(zip(train_acc, val_acc, val_loss))]


def test_verdicts():
    assert diagnose(_epochs([0.5, 0.6], [0.5, 0.6], [1, 0.9]))["verdict"] == "too early"
    under = diagnose(_epochs([0.4, 0.5, 0.6, 0.65], [0.4, 0.5, 0.55, 0.6], [1.5, 1.3, 1.2, 1.1]))
    assert under["verdict"] == "underfitting" and any("freeze less" in a for a in under["advice"])
    over = diagnose(_epochs([0.8, 0.9, 0.97, 1.0], [0.75, 0.8, 0.82, 0.8], [0.6, 0.5, 0.55, 0.6]))
    assert over["verdict"] == "overfitting" and any("augmentation" in a for a in over["advice"])
    assert "20 points above validation accuracy 80%" in over["why"]  # points, not a relative percentage
    assert not any("dropout" in a for a in over["advice"])  # only advice the app can apply
    rising = diagnose(_epochs([0.9, 0.93, 0.95, 0.96, 0.97, 0.97], [0.9, 0.92, 0.91, 0.9, 0.9, 0.9],
                              [0.3, 0.25, 0.3, 0.35, 0.4, 0.45]))
    assert rising["verdict"] == "overfitting" and "epoch 2" in rising["why"]
    good = diagnose(_epochs([0.9, 0.95, 0.97], [0.9, 0.94, 0.96], [0.3, 0.2, 0.15]))
    assert good["verdict"] == "good fit" and not good["advice"]
    # Only the last stage counts: a short fine-tune after a long head stage is "too early".
    mixed = _epochs([0.5] * 5, [0.5] * 5, [1] * 5, stage="head") + _epochs([0.9], [0.9], [0.2])
    assert diagnose(mixed)["verdict"] == "too early"


def test_summary_line():
    line = summarize(_epochs([0.8, 0.95, 0.99], [0.85, 0.93, 0.92], [0.4, 0.3, 0.35]))
    assert line.startswith("Best validation accuracy 93.0% at epoch 2 of 3 (fine-tuning the unfrozen layers)")
    assert "training 99.0%, validation 92.0%" in line and "rising" in line
    assert summarize([]) == "No finished epoch yet."


def test_best_epoch_is_counted_over_the_whole_run():
    from tl_core.diagnose import epochs_total, overall_epoch

    records = _epochs([0.5] * 20, [0.5] * 20, [1] * 20, stage="head") + _epochs([0.9] * 18, [0.9] * 18, [0.2] * 18)
    assert overall_epoch(records, "finetune", 12) == 32 and overall_epoch(records, "head", 5) == 5
    assert epochs_total(records) == 38
