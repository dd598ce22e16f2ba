"""Suspect labels: images whose given class the rest of the data set disagrees with.

Each image gets class probabilities from a small head (multinomial logistic regression on the
cached frozen features) that never saw it: K stratified folds, K heads, out-of-fold predictions.
Images are ranked by *self-confidence*, the out-of-fold probability of their given label (the
ranking of confident learning, Northcutt et al. 2021; a few lines here rather than the AGPL
``cleanlab``). How many images are suspects comes from confident learning's confident joint;
which ones, from that ranking (``rank_suspects``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .curation import excluded_paths, load_curation, relative
from .data import Item, Scan, scan_folder, validate
from .errors import DatasetError
from .i18n import _

FOLDS = 5


@dataclass
class DataFeatures:
    """Frozen features of every usable image of a data set, excluded ones included (``excluded``
    marks them), so that excluding an image never invalidates the feature cache."""

    scan: Scan
    items: list[Item]
    features: torch.Tensor
    excluded: torch.Tensor  # bool per item
    cache: str
    backbone: str


class OnDemand:
    """The backbone, built on first use: a feature-cache hit needs no network (building and loading
    it took 10 s of a 40 s suspects search on a busy machine)."""

    def __init__(self, build: Callable[[], torch.nn.Module]):
        self._build, self._model = build, None

    def __getattr__(self, name: str):
        if self._model is None:
            self._model = self._build()
        return getattr(self._model, name)


def data_features(data: str | Path, backbone: str | None = None, cache_dir: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> DataFeatures:
    """Pooled features of the backbone (pretrained, frozen) for every readable image of ``data``,
    from the same cache training uses."""
    from .backbones import get_backbone
    from .features import cached_features
    from .model import build_model
    from .numerics import choose

    report, scan = validate(scan_folder(data, honour_exclusions=False))
    if not report.ok:
        raise DatasetError(" ; ".join(i.message for i in report.errors()))
    spec = get_backbone(backbone)
    items = sorted(scan.items, key=lambda it: it.path)
    model = OnDemand(lambda: build_model(spec, len(scan.classes), hidden=0))
    # The numerics a run of this machine would use: the same cache file serves both.
    feats, status = cached_features(model, items, spec, cache_dir, progress=progress, numerics=choose(spec))
    left_out = excluded_paths(data)
    excluded = torch.tensor([os.path.normpath(it.path) in left_out for it in items], dtype=torch.bool)
    return DataFeatures(scan, items, feats, excluded, status, spec.name)


def stratified_folds(labels: list[int], k: int = FOLDS, seed: int = 0) -> torch.Tensor:
    """Fold number (0..k-1) of each sample, each class spread evenly over the folds."""
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor(labels)
    fold = torch.empty(len(labels), dtype=torch.long)
    offset = 0
    for c in y.unique():
        idx = (y == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        fold[idx] = (torch.arange(len(idx)) + offset) % k
        offset += len(idx)  # small classes do not all start in fold 0
    return fold


def fit_logistic(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1.0) -> torch.nn.Linear:
    """Multinomial logistic regression (L-BFGS, L2 penalty ``l2`` on the weights) on standardised
    ``x``; returns the fitted layer. A strong penalty ranked planted label errors best on sign digits
    (1.0: 92 of 103 flips in the 103 worst; 0.01: 84) and converges several times faster."""
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], n_classes)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=200, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(x), y) + l2 * head.weight.pow(2).sum() / 2
        loss.backward()
        return loss

    opt.step(closure)
    return head


def out_of_fold_probs(features: torch.Tensor, labels: list[int], n_classes: int, k: int = FOLDS,
                      seed: int = 0) -> torch.Tensor:
    """Class probabilities of every sample from a head trained on the other ``k - 1`` folds."""
    if len(labels) < 2 * k:
        raise DatasetError(_("need at least {n} images to find suspect labels; found {m}", n=2 * k, m=len(labels)))
    x, y = features.float(), torch.tensor(labels)
    fold = stratified_folds(labels, k, seed)
    probs = torch.zeros(len(labels), n_classes)
    for f in range(k):
        train, held = fold != f, fold == f
        mean, std = x[train].mean(0), x[train].std(0)
        # A feature (nearly) constant in the training folds must not blow up in a held-out image:
        # floor every spread at the average one (planted flips on sign digits: 92 of 103 found).
        std = std.clamp_min(float(std.mean()) + 1e-6)
        with torch.enable_grad():
            head = fit_logistic((x[train] - mean) / std, y[train], n_classes)
        with torch.no_grad():
            probs[held] = head((x[held] - mean) / std).softmax(1)
    return probs


def rank_suspects(probs: torch.Tensor, labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(order of samples, least self-confident first; boolean suspect flag per sample).

    Confident learning, choosing like cleanlab's ``filter_by="low_self_confidence"``: the confident
    joint says *how many* images are suspects, the ranking says *which*. The confident joint counts
    the images another class claims confidently (its probability reaches that class's own threshold,
    the mean over the images labelled with it, and it is the likeliest such class); a hard but
    correct image, unsure between classes, adds nothing to the count. That many images are flagged,
    the least self-confident first over the whole data set, with two limits of our own: only images
    another class wins, and never a whole class (so fewer than the count can be flagged). Measured
    against choosing class by class (cleanlab's ``prune_by_class``) in docs/DATA_QUALITY.md."""
    y = torch.tensor(labels)
    rows = torch.arange(len(y))
    self_conf = probs[rows, y]
    thresholds = torch.ones(probs.shape[1])  # a class no image is labelled with is never "confident"
    for c in y.unique():
        thresholds[c] = self_conf[y == c].mean()
    confident = probs >= thresholds
    likeliest = torch.where(confident, probs, torch.full_like(probs, -1.0)).argmax(1)
    count = int((confident.any(1) & (likeliest != y)).sum())
    order = torch.argsort(self_conf, stable=True)
    disputed = probs.argmax(1) != y  # only an image some other class wins can be flagged
    room = {int(c): int((y == c).sum()) - 1 for c in y.unique()}  # never a whole class
    flag = torch.zeros(len(y), dtype=torch.bool)
    for i in order[disputed[order]].tolist():
        if count == 0:
            break
        if room[int(y[i])] > 0:
            flag[i], room[int(y[i])], count = True, room[int(y[i])] - 1, count - 1
    return order, flag


def find_suspects(data: str | Path, backbone: str | None = None, cache_dir: str | None = None,
                  top: int | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Suspect labels of the data set ``data``, worst first.

    Every readable, not excluded image is ranked (all parts of a pre-split folder: a wrong label in
    the test part misleads as much as one in train). Images the user marked "keep" are not listed.

    Args:
        top: list the ``top`` least self-confident images, flagged or not; None lists the flagged ones.

    Returns:
        ``{"data", "backbone", "classes", "images", "seconds", "feature_cache", "flagged", "suspects":
        [{"path", "given", "likely", "p_given", "p_likely", "suspect"}, ...]}`` with paths relative
        to ``data``.
    """
    t0 = time.time()
    df = data_features(data, backbone, cache_dir, progress)
    keep = (~df.excluded).nonzero().flatten().tolist()
    items = [df.items[i] for i in keep]
    labels = [it.label for it in items]
    classes = df.scan.classes
    probs = out_of_fold_probs(df.features[keep], labels, len(classes))
    order, flag = rank_suspects(probs, labels)
    kept = set(load_curation(data).kept)
    rels = [relative(data, it.path) for it in items]
    listed = torch.tensor([rel not in kept for rel in rels], dtype=torch.bool)
    rows = []
    for i in order.tolist():
        if not listed[i] or (top is None and not flag[i]):
            continue
        likely = int(probs[i].argmax())
        rows.append({"path": rels[i], "given": classes[labels[i]], "likely": classes[likely],
                     "p_given": round(float(probs[i, labels[i]]), 4), "p_likely": round(float(probs[i, likely]), 4),
                     "suspect": bool(flag[i])})
        if top is not None and len(rows) >= top:
            break
    return {"data": str(Path(data).resolve()), "backbone": df.backbone, "classes": classes, "images": len(items),
            "seconds": round(time.time() - t0, 2), "feature_cache": df.cache,
            "flagged": int((flag & listed).sum()),  # an image the user kept is no longer counted
            "suspects": rows}
