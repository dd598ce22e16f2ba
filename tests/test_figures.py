"""Every chart's one-line text summary says what the chart shows, with the numbers."""

import pytest

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


def _texts(fig) -> list[str]:
    """Every word a reader sees on a figure: titles, axis titles, trace names and texts, annotations."""
    spec, out = fig.to_plotly_json(), []
    layout = spec["layout"]
    for key, value in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(value, dict):
            out.append(((value.get("title") or {}).get("text")) or "")
    out += [a.get("text", "") for a in layout.get("annotations", [])]
    for trace in spec["data"]:
        out.append(trace.get("name") or "")
        out += [t for t in (trace.get("text") or []) if isinstance(t, str)]
        out += [t for row in (trace.get("text") or []) if isinstance(row, (list, tuple)) for t in row]
        for axis in ("x", "y"):
            out += [t for t in (trace.get(axis) or []) if isinstance(t, str)]
    return [t for t in out if t]


def test_chart_labels_are_korean_in_korean():
    import re

    from tl_core import figures
    from tl_core.i18n import set_language

    epochs = [{"kind": "epoch", "stage": "head", "epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_acc": 0.5,
               "val_acc": 0.4}, {"kind": "batch", "stage": "head", "epoch": 1, "batch": 1, "batches": 2, "loss": 1.2}]
    lab = [{"scenario": 1, "test_accuracy": 0.9, "trainable_params": 1000, "seconds": 5.0}]
    set_language("ko")
    try:
        figs = [figures.scenario_grid(1), figures.training_curves(epochs), figures.layer_groups(["g"], [1], 0, 10),
                figures.confusion_matrix([[1, 0], [0, 1]], ["a", "b"]), figures.class_counts({"a": 1}),
                figures.lab_chart(lab, 1), figures.compare_curves({"r1": [0.5, 0.6]})]
        english = [t for f in figs for t in _texts(f)
                   if re.search(r"[A-Za-z]{3,}", t) and not re.search(r"[가-힣]", t)]
    finally:
        set_language("en")
    assert not english, english


def test_lab_chart_draws_each_scenarios_95_percent_interval():
    from tl_core.figures import lab_chart

    rows = [{"scenario": 1, "test_accuracy": 0.9, "trainable_params": 1000, "seconds": 5.0, "test_images": 30},
            {"scenario": 2, "test_accuracy": 0.95, "trainable_params": 10 ** 6, "seconds": 50.0}]
    fig = lab_chart(rows, 1)
    bar = fig.data[0].error_y
    assert bar.array[0] == pytest.approx(6.54, abs=0.01) and bar.arrayminus[0] == pytest.approx(15.62, abs=0.01)
    assert fig.data[1].error_y.array is None  # an older lab without the test count: no bar, no guess
