"""What the network sees: a 2-D map (PCA) of the frozen features of a data set, and which classes
overlap there. Classes that form separate clouds are easy for a new head on frozen features
(similar to ImageNet's world); clouds that mix need fine-tuning or better photos."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

import torch

from .i18n import _

MAX_POINTS_PER_CLASS = 150  # the map stays readable and light in the browser
NEIGHBOURS = 5
MIN_MAP_IMAGES = 3  # two directions of variation need three points


def pca_2d(features: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """The first two principal components of ``features`` and the share of variance each explains."""
    x = features.float() - features.float().mean(0)
    _u, s, v = torch.linalg.svd(x, full_matrices=False)
    var = s.pow(2)
    return x @ v[:2].T, [round(float(v_ / var.sum()), 4) for v_ in var[:2]]


def nearest(features: torch.Tensor, k: int, chunk: int = 1024) -> torch.Tensor:
    """``[N, k]``: each row's ``k`` nearest other rows by cosine similarity, computed in row chunks
    so memory stays ``chunk x N`` (15,000 images would need 900 MB as one matrix)."""
    f = torch.nn.functional.normalize(features.float(), dim=1)
    out = []
    for start in range(0, len(f), chunk):
        sim = f[start:start + chunk] @ f.T
        rows = torch.arange(len(sim))
        sim[rows, rows + start] = -2.0  # never its own neighbour
        out.append(sim.topk(k, dim=1).indices)
    return torch.cat(out)


def class_overlap(features: torch.Tensor, labels: list[int], n_classes: int, k: int = NEIGHBOURS,
                  chunk: int = 1024) -> torch.Tensor:
    """``[C, C]``: share of the images of class i whose ``k`` nearest neighbours (cosine, in the full
    feature space, not the 2-D map) are mostly of class j (diagonal: mostly their own)."""
    k = max(1, min(k, len(labels) - 1))
    y = torch.tensor(labels)
    votes = torch.zeros(len(labels), n_classes).scatter_add_(1, y[nearest(features, k, chunk)], torch.ones(len(y), k))
    majority = votes.argmax(1)
    out = torch.zeros(n_classes, n_classes)
    for i in range(n_classes):
        mine = majority[y == i]
        if len(mine):
            out[i] = torch.bincount(mine, minlength=n_classes).float() / len(mine)
    return out


def describe_overlap(overlap: torch.Tensor, classes: list[str], at_least: float = 0.05) -> str:
    """One line: the class pairs that overlap most, or that every class stands apart."""
    pairs = []
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            share = float(overlap[i, j] + overlap[j, i]) / 2
            if share >= at_least:
                pairs.append((share, classes[i], classes[j]))
    if not pairs:
        return _("Every class forms its own cloud: for no two classes do more than {p:.0%} of their images have "
                 "mostly neighbours of the other class.", p=at_least)
    pairs.sort(reverse=True)
    shown = ", ".join(_("'{a}' and '{b}' ({p:.0%})", a=a, b=b, p=p) for p, a, b in pairs[:3])
    return _("Classes that overlap most (share of images whose nearest neighbours are of the other class): "
             "{pairs}.", pairs=shown)


def embedding_map(data: str | Path, backbone: str | None = None, cache_dir: str | None = None,
                  progress: Callable[[int, int], None] | None = None, seed: int = 0) -> dict:
    """The 2-D map of ``data``'s frozen features (at most ``MAX_POINTS_PER_CLASS`` images per class
    drawn, the overlap measured on all of them).

    Returns:
        ``{"classes", "x", "y", "labels", "paths", "variance", "overlap", "summary", "images"}``.
    """
    from .suspects import data_features

    df = data_features(data, backbone, cache_dir, progress)
    keep = (~df.excluded).nonzero().flatten().tolist()
    feats, items = df.features[keep], [df.items[i] for i in keep]
    labels = [it.label for it in items]
    return feature_map(feats, labels, [it.path for it in items], df.scan.classes, seed)


def feature_map(feats: torch.Tensor, labels: list[int], paths: list[str], classes: list[str], seed: int = 0) -> dict:
    """The map of ``feats``: PCA to 2-D (at most ``MAX_POINTS_PER_CLASS`` drawn per class) and the
    class overlap measured on all of them; the dict ``embedding_map`` returns."""
    overlap = class_overlap(feats, labels, len(classes))
    points, variance = pca_2d(feats)
    rng, by_class = random.Random(seed), {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    shown = sorted(i for idx in by_class.values() for i in rng.sample(idx, min(len(idx), MAX_POINTS_PER_CLASS)))
    return {"classes": classes, "x": [round(float(points[i, 0]), 4) for i in shown],
            "y": [round(float(points[i, 1]), 4) for i in shown], "labels": [labels[i] for i in shown],
            "paths": [paths[i] for i in shown], "variance": variance, "images": len(labels),
            "overlap": [[round(float(v), 4) for v in row] for row in overlap],
            "summary": describe_overlap(overlap, classes)}


def run_maps(run_dir: str | Path, cache_dir: str | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """A run's test images as the pretrained network saw them (``before``) and as the trained one
    sees them (``after``): fine-tuning moves the features, and the map shows whether the classes
    came apart. A run that froze the whole body (scenario 1) has the same map twice.

    Returns:
        ``{"before": map, "after": map, "same": bool}`` (maps as ``feature_map`` returns them).
    """
    from .backbones import get_backbone
    from .features import cached_features, extract_features
    from .model import build_model
    from .predict import Predictor
    from .runs import RunDir, read_json
    from .splits import split_from_json
    from .suspects import OnDemand

    run = RunDir.open(run_dir)
    cfg = read_json(run.config_file, {}) or {}
    items = split_from_json(read_json(run.split_file, {}))["test"]
    if len(items) < MIN_MAP_IMAGES:
        from .errors import DatasetError

        raise DatasetError(_("{run} has {n} test images: a map needs at least {k}. Train with a test part (or "
                             "--test-data) to see one.", run=run.id, n=len(items), k=MIN_MAP_IMAGES))
    predictor = Predictor.from_run(run.path)
    spec, labels, paths = get_backbone(cfg.get("backbone")), [it.label for it in items], [it.path for it in items]
    pretrained = OnDemand(lambda: build_model(spec, len(predictor.labels), hidden=0, weights=cfg.get("weights")))
    before_feats, _status = cached_features(pretrained, items, spec, cache_dir, weights=cfg.get("weights"),
                                            progress=progress)
    before = feature_map(before_feats, labels, paths, predictor.labels)
    same = ((run.status().get("result") or {}).get("frozen_fraction") == 1.0)
    after = before if same else feature_map(extract_features(predictor.model, items, spec, progress=progress),
                                            labels, paths, predictor.labels)
    return {"before": before, "after": after, "same": same}
