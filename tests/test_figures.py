"""Every chart's one-line text summary says what the chart shows, with the numbers."""

from tl_core.figures import (
    compare_curves,
    describe_confusion,
    describe_counts,
    describe_curves,
    describe_grid,
    describe_lab,
    describe_top_k,
    val_curves,
)


def test_summaries_carry_the_numbers():
    assert "scenario 3, for small and different" in describe_grid(3)
    text = describe_counts({"cats": 100, "dogs": 300})
    assert "400 images" in text and "fewest in 'cats' (100)" in text and "3.0x the smallest" in text
    assert describe_counts({"a": 10, "b": 11}).endswith("balanced.")
    cm = [[8, 2, 0], [0, 9, 1], [5, 0, 5]]
    text = describe_confusion(cm, ["a", "b", "c"])
    assert "22 of 30" in text and "'c' taken for 'a' (5 times)" in text
    assert describe_top_k([{"label": "dog", "prob": 0.9}, {"label": "cat", "prob": 0.1}]).endswith(
        "dog 90%; then cat 10%.")
    assert "Highest: 95.0%, run r2 at epoch 3" in describe_curves({"r1": [0.5, 0.9], "r2": [None, 0.8, 0.95]})
    assert describe_curves({"r1": [None]}) == "Chart: no validation accuracy recorded yet."
    rows = [{"scenario": 1, "test_accuracy": 0.9, "trainable_params": 1000, "seconds": 5.0}]
    assert "advisor's pick (3)" in describe_lab(rows, 3) and "scenario 1: 90.0%, 1,000 trainable, 5 s" in \
        describe_lab(rows, 3)


def test_run_comparison_takes_each_runs_epochs_in_order_over_both_stages():
    records = {"a": [{"kind": "batch", "val_acc": 0.1}, {"kind": "epoch", "stage": "head", "val_acc": 0.5},
                     {"kind": "epoch", "stage": "finetune", "val_acc": 0.7}],
               "b": [{"kind": "epoch", "val_acc": None}, {"kind": "epoch", "val_acc": 0.9}]}
    series = val_curves(records)
    assert series == {"a": [0.5, 0.7], "b": [None, 0.9]}
    fig = compare_curves(series)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].x) == [1, 2] and list(fig.data[1].y) == [None, 0.9]
    assert fig.layout.yaxis.title.text == "validation accuracy"
