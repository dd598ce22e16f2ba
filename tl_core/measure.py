"""Measure the method's two facts on the user's own images instead of asking for them.

Size: images per class against a threshold. Similarity to ImageNet: on a seeded sample, (a) how
sure the pretrained ImageNet classifier is (mean top probability, entropy) and (b) how separable
the classes already are with frozen features (leave-one-out k-nearest-neighbour accuracy).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict

import torch

from .backbones import get_backbone
from .data import Item, scan_folder, validate
from .errors import DatasetError
from .evaluate import predict_probs
from .features import extract_features
from .freezing import scenario_for
from .i18n import _
from .model import TransferModel

LARGE_PER_CLASS = 1000  # images per class from which a data set counts as large
CONFIDENT = 0.35  # mean top ImageNet probability above which images look like ImageNet photos
SEPARABLE = 0.9  # k-NN accuracy on frozen features above which the features already fit


def _sample(items: list[Item], per_class: int, seed: int) -> list[Item]:
    by_class = defaultdict(list)
    for it in items:
        by_class[it.label].append(it)
    rng = random.Random(seed)
    out = []
    for label in sorted(by_class):
        group = sorted(by_class[label], key=lambda it: it.path)
        out += rng.sample(group, min(per_class, len(group)))
    return out


def knn_accuracy(features: torch.Tensor, labels: list[int], k: int = 5) -> float:
    """Leave-one-out accuracy of a cosine k-nearest-neighbour vote on ``features``."""
    f = torch.nn.functional.normalize(features.float(), dim=1)
    sim = f @ f.T
    sim.fill_diagonal_(-2.0)
    k = max(1, min(k, len(labels) - 1))
    idx = sim.topk(k, dim=1).indices
    y = torch.tensor(labels)
    votes = torch.zeros(len(labels), int(y.max()) + 1).scatter_add_(1, y[idx], torch.ones(idx.shape))
    return float((votes.argmax(1) == y).float().mean())


def size_of(counts: dict[str, int]) -> tuple[str, int]:
    """The method's size answer for these class counts: ("small"|"large", median images per non-empty class)."""
    nonzero = sorted(n for n in counts.values() if n)
    per = nonzero[len(nonzero) // 2] if nonzero else 0
    return ("large" if per >= LARGE_PER_CLASS else "small"), per


def measure(data: str, backbone: str | None = None, per_class: int = 30, seed: int = 0) -> dict:
    """Size, similarity, the scenario they give, and the evidence (numbers and thresholds)."""
    scan = validate(scan_folder(data))[1]
    counts = scan.counts()
    if sum(1 for n in counts.values() if n) < 2:
        raise DatasetError(_("{data}: need at least 2 classes with readable images to measure anything", data=data))
    size, per = size_of(counts)
    spec = get_backbone(backbone)
    net = spec.load_pretrained()
    sample = _sample(scan.items, per_class, seed)
    probs = predict_probs(net, sample, spec)
    top = probs.max(1).values
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(1) / math.log(probs.shape[1])
    features = extract_features(TransferModel(spec.groups(net), spec.feature_dim, 2), sample, spec)
    knn = knn_accuracy(features, [it.label for it in sample])
    votes = int(top.mean() >= CONFIDENT) + int(knn >= SEPARABLE)
    similarity = "similar" if votes == 2 else "different"
    scenario = scenario_for(size, similarity).number
    return {
        "size": size, "similarity": similarity, "scenario": scenario,
        "evidence": {
            "classes": len(counts), "images": sum(counts.values()), "median_images_per_class": per,
            "large_from_images_per_class": LARGE_PER_CLASS, "sampled_images": len(sample),
            "imagenet_mean_top_probability": round(float(top.mean()), 4),
            "imagenet_mean_normalized_entropy": round(float(entropy.mean()), 4),
            "confident_from": CONFIDENT, "knn_accuracy_frozen_features": round(knn, 4),
            "separable_from": SEPARABLE, "backbone": spec.name,
        },
    }


def explain_measurement(m: dict, answered: tuple[str, str] | None = None) -> str:
    """The measurement in words, and where it disagrees with the user's own answers."""
    e = m["evidence"]
    lines = [
        _("Size: {per} images per class (median) -> **{size}** (large from {large}).",
          per=e["median_images_per_class"], size=_(m["size"]), large=e["large_from_images_per_class"]),
        _("ImageNet classifier is on average {conf:.0%} sure of its top label (looks like ImageNet from "
          "{conf_from:.0%}); frozen features already sort {knn:.0%} of the sampled images correctly with 5 nearest "
          "neighbours (fits from {knn_from:.0%}) -> **{similarity}**.", conf=e["imagenet_mean_top_probability"],
          conf_from=e["confident_from"], knn=e["knn_accuracy_frozen_features"], knn_from=e["separable_from"],
          similarity=_(m["similarity"])),
        _("Measured scenario: **{n}**.", n=m["scenario"]),
    ]
    if answered and answered != (m["size"], m["similarity"]):
        lines.append(_("You answered *{size} + {similarity}*; the measurement says *{m_size} + {m_similarity}*. The "
                       "numbers describe your images, your answer your intent: if they disagree on similarity, trust "
                       "the nearest-neighbour test (it is measured on your own classes).", size=_(answered[0]),
                       similarity=_(answered[1]), m_size=_(m["size"]), m_similarity=_(m["similarity"])))
    return "\n\n".join(lines)
