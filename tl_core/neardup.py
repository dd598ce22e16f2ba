"""Near duplicates by feature distance: the same photo resized, recompressed, slightly cropped or
brightened has almost the same frozen features, though not the same bytes. A near duplicate in
train and another in test inflates the test score, so each group is kept on one side of every
split (``splits.make_split`` reads the groups from the data set's ``tl_curation.json``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from .curation import load_curation, relative, save_curation

# Cosine similarity of pooled EfficientNet-Lite0 features from which two photos count as the same.
# Measured on cats-vs-dogs/train (2000 photos) with 60 planted copies (70% resize, 4% crop or +15%
# brightness, all recompressed at JPEG quality 70): 57 of them score >= 0.93 (median 0.96), the
# closest pair of distinct photos 0.865, and one pair already in the data set 0.99.
THRESHOLD = 0.92
# Photos that all look alike (the 100-px hand signs: distinct photos up to 0.95, copies down to 0.74)
# cannot be told apart this way: their pairs chain into big groups. When a group has more than
# MAX_GROUP images, or more than MAX_GROUPED_SHARE of all images are grouped, nothing is grouped
# and the result says so, rather than pushing much of the data set into train.
MAX_GROUP = 10
MAX_GROUPED_SHARE = 0.3


def similar_pairs(features: torch.Tensor, threshold: float = THRESHOLD, chunk: int = 1024) -> list[tuple[int, int, float]]:
    """Index pairs ``(i, j)``, ``i < j``, whose cosine similarity is at least ``threshold`` (in
    row chunks, so memory stays ``chunk x N``)."""
    f = torch.nn.functional.normalize(features.float(), dim=1)
    pairs = []
    for start in range(0, len(f), chunk):
        sim = f[start:start + chunk] @ f.T
        rows, cols = (sim >= threshold).nonzero(as_tuple=True)
        for r, c in zip(rows.tolist(), cols.tolist()):
            if start + r < c:
                pairs.append((start + r, c, float(sim[r, c])))
    return pairs


def group_pairs(n: int, pairs: list[tuple[int, int, float]]) -> list[list[int]]:
    """Connected components (union-find) of the pairs, each sorted, only those of 2 or more."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _sim in pairs:
        parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in {k for pair in pairs for k in pair[:2]}:
        groups.setdefault(find(i), []).append(i)
    return sorted(sorted(g) for g in groups.values())


def find_near_duplicates(data: str | Path, backbone: str | None = None, cache_dir: str | None = None,
                         threshold: float = THRESHOLD, progress: Callable[[int, int], None] | None = None,
                         remember: bool = True) -> dict:
    """Groups of near-identical images in ``data`` (all parts), most similar first.

    With ``remember`` the groups are stored in the data set's ``tl_curation.json``, and every later
    split keeps each group on one side.

    Returns:
        ``{"data", "backbone", "images", "threshold", "seconds", "too_alike", "groups": [{"paths", "parts",
        "classes", "similarity"}, ...]}`` with paths relative to ``data``; ``parts`` is where the
        default split (seed 0) would have put them before keeping them together.
    """
    from .splits import make_split
    from .suspects import data_features

    t0 = time.time()
    df = data_features(data, backbone, cache_dir, progress)
    pairs = similar_pairs(df.features, threshold)
    best = {}
    for i, j, sim in pairs:
        best[i], best[j] = max(best.get(i, 0.0), sim), max(best.get(j, 0.0), sim)
    rels = [relative(data, it.path) for it in df.items]
    part_of = {relative(data, it.path): part for part, items in make_split(df.scan, keep_groups=False).items()
               for it in items}
    groups = []
    for g in group_pairs(len(df.items), pairs):
        groups.append({"paths": [rels[i] for i in g], "parts": [part_of.get(rels[i], "") for i in g],
                       "classes": [df.scan.classes[df.items[i].label] for i in g],
                       "similarity": round(max(best[i] for i in g), 4)})
    groups.sort(key=lambda g: -g["similarity"])
    too_alike = (any(len(g["paths"]) > MAX_GROUP for g in groups)
                 or sum(len(g["paths"]) for g in groups) > MAX_GROUPED_SHARE * len(df.items))
    if too_alike:
        groups = []
    if remember:
        cur = load_curation(data)
        cur.groups = [g["paths"] for g in groups]
        save_curation(data, cur)
    return {"data": str(Path(data).resolve()), "backbone": df.backbone, "images": len(df.items),
            "threshold": threshold, "seconds": round(time.time() - t0, 2), "too_alike": too_alike, "groups": groups}
