"""Measured size and similarity (the advisor that measures instead of asking)."""

from __future__ import annotations

import json

import torch

from conftest import run_cli
from tl_core.measure import knn_accuracy, measure


def test_knn_accuracy_on_separable_and_mixed_features():
    torch.manual_seed(0)
    a = torch.randn(20, 8) + torch.tensor([5.0] + [0] * 7)
    b = torch.randn(20, 8) - torch.tensor([5.0] + [0] * 7)
    labels = [0] * 20 + [1] * 20
    assert knn_accuracy(torch.cat([a, b]), labels) == 1.0
    noise = torch.randn(40, 8)
    assert knn_accuracy(noise, labels) < 0.8


def test_measure_reports_its_evidence(image_folder):
    m = measure(str(image_folder), per_class=10)
    assert m["size"] == "small" and m["similarity"] in ("similar", "different") and m["scenario"] in (1, 3)
    e = m["evidence"]
    assert e["median_images_per_class"] == 12 and e["sampled_images"] == 30
    assert e["knn_accuracy_frozen_features"] >= 0.9  # the three patterns are easy for ImageNet features
    assert 0 < e["imagenet_mean_top_probability"] <= 1 and 0 <= e["imagenet_mean_normalized_entropy"] <= 1


def test_advise_measures_with_data_via_cli(image_folder):
    proc = run_cli("advise", "--data", str(image_folder), "--json")
    assert proc.returncode == 0, proc.stderr[-1000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"size", "similarity", "scenario", "evidence"} <= set(out)
    bad = run_cli("advise")
    assert bad.returncode == 2 and "--data DIR" in bad.stderr
