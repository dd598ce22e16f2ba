"""Measured size and similarity (the advisor that measures instead of asking)."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli
from tl_core.measure import knn_accuracy, measure, size_of


def test_knn_accuracy_on_separable_and_mixed_features():
    torch.manual_seed(0)
    a = torch.randn(20, 8) + torch.tensor([5.0] + [0] * 7)
    b = torch.randn(20, 8) - torch.tensor([5.0] + [0] * 7)
    labels = [0] * 20 + [1] * 20
    assert knn_accuracy(torch.cat([a, b]), labels) == 1.0
    noise = torch.randn(40, 8)
    assert knn_accuracy(noise, labels) < 0.8


def test_measure_reports_its_evidence(image_folder):
    """Drawn stripes, dots and squares: easy to tell apart with ImageNet features (k-NN 1.0), but
    nothing ImageNet's classifier recognises (measured top-1 confidence 0.14): *different*."""
    m = measure(str(image_folder), per_class=10)
    e = m["evidence"]
    assert (m["size"], m["similarity"], m["scenario"]) == ("small", "different", 3)
    assert e["median_images_per_class"] == 12 and e["sampled_images"] == 30
    assert e["knn_accuracy_frozen_features"] >= 0.9  # the three patterns are easy for ImageNet features
    assert e["imagenet_mean_top_probability"] < e["confident_from"] == 0.35  # the reason for "different"
    assert 0 <= e["imagenet_mean_normalized_entropy"] <= 1


@pytest.mark.slow
def test_measure_on_real_hand_photos():
    """The bundled hand signs (measured: 20 per class, ImageNet confidence 0.20, 5-NN 0.685)."""
    from conftest import ROOT

    m = measure(str(ROOT / "sample_data" / "sign-language-digits"), per_class=10)
    e = m["evidence"]
    assert (m["size"], m["similarity"], m["scenario"]) == ("small", "different", 3)
    assert e["median_images_per_class"] == 20 and e["sampled_images"] == 100
    assert 0.1 <= e["imagenet_mean_top_probability"] <= 0.3 and 0.4 <= e["knn_accuracy_frozen_features"] <= 0.9


@pytest.mark.slow
def test_advise_measures_with_data_via_cli(image_folder):
    proc = run_cli("advise", "--data", str(image_folder), "--json")
    assert proc.returncode == 0, proc.stderr[-1000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    here = measure(str(image_folder))  # the command prints what the library measures
    assert {k: out[k] for k in ("size", "similarity", "scenario")} == {k: here[k] for k in ("size", "similarity",
                                                                                            "scenario")}
    assert out["evidence"] == pytest.approx(here["evidence"], abs=1e-3)
    bad = run_cli("advise")
    assert bad.returncode == 2 and "--data DIR" in bad.stderr


def test_size_is_decided_by_the_median_class_not_the_mean():
    # One huge class must not make a data set "large": the Data page and measure() share this rule.
    assert size_of({"a": 5000, "b": 10, "c": 10}) == ("small", 10)
    assert size_of({"a": 1000, "b": 1200, "c": 0}) == ("large", 1200)
    assert size_of({"a": 999, "b": 999}) == ("small", 999)
