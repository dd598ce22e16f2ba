"""The Model page's backbone table: weights labels from the same check as loading, and the measured
reference runs (what a bigger EfficientNet-Lite buys), which match docs/RESULTS.md."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from conftest import ROOT
from tl_core.backbones import get_backbone, list_backbones
from tl_core.reference_runs import PROJECTS, REFERENCE_RUNS, reference_runs


def test_every_lite_size_is_measured_on_both_projects():
    measured = {(r.backbone, r.project) for r in REFERENCE_RUNS}
    assert measured == {(b, p) for b in list_backbones("efficientnet_lite*") for p in PROJECTS}
    for r in REFERENCE_RUNS:
        assert 0.5 < r.test_accuracy <= 1 and r.seconds > 0 and r.images > 0 and r.scenario in (1, 3)
    assert [r.backbone for r in reference_runs("efficientnet_lite1")] == ["efficientnet_lite1"] * 2
    assert [r.project for r in reference_runs()] == ["dogs_vs_cats"] * 3 + ["sign_digits"] * 3


def test_docs_results_show_the_same_numbers():
    text = (ROOT / "docs" / "RESULTS.md").read_text()
    for r in REFERENCE_RUNS:
        row = rf"\| {r.backbone} \| [^|]*\| {r.test_accuracy:.3f} \| {r.seconds:.0f} \| {r.images_per_s:.1f} \|"
        assert re.search(row, text), f"docs/RESULTS.md lacks the row of {r.backbone} on {r.project}"


def test_model_page_labels_weights_by_the_loading_check_and_shows_the_measurements(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TL_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    at.switch_page("pages/model.py").run()
    assert not at.exception, [e.value for e in at.exception]
    backbones = at.dataframe[0].value
    labels = dict(zip(backbones["backbone"], backbones["weights"]))
    assert labels == {n: get_backbone(n).check_weights().label for n in list_backbones()}
    assert {labels[n] for n in list_backbones("efficientnet_lite*")} == {"ready offline"}
    measured = at.dataframe[1].value
    assert list(measured["backbone"]) == [r.backbone for r in reference_runs()]
