"""Seeded, stratified train/validation/test splits, saved with each run as ``split.json``."""

from __future__ import annotations

import hashlib
import os
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from .curation import load_curation
from .data import Item, Scan
from .errors import DatasetError
from .i18n import _

PARTS = ("train", "val", "test")


def _order_key(root: str, seed: int):
    """Sort key of an item: a seeded hash of its path inside the data set. An image keeps its place
    in the order whatever else is added, excluded or moved, and wherever the folder is copied."""
    def key(it: Item) -> bytes:
        rel = unicodedata.normalize("NFC", Path(os.path.relpath(it.path, root)).as_posix())
        # surrogatepass: a file name that is not UTF-8 (Latin-1 from an old camera) is still a name
        return hashlib.blake2b(f"{seed}/{rel}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return key


def _cut(group: list[Item], fractions: dict[str, float]) -> dict[str, list[Item]]:
    """One class, in its order, cut into the requested held-out parts and train. A class with at
    least 3 images gets at least one image in each requested held-out part; train keeps one."""
    out, start = {}, 0
    for name, frac in fractions.items():
        n = round(len(group) * frac) if frac > 0 else 0
        if frac > 0 and n == 0 and len(group) >= 3:
            n = 1
        n = max(min(n, len(group) - start - 1), 0)
        out[name], start = group[start:start + n], start + n
    out["train"] = group[start:]
    return out


def _stratified(items: list[Item], fractions: dict[str, float], seed: int, root: str,
                excluded: Sequence[Item] = ()) -> dict[str, list[Item]]:
    """Split each class separately so every part keeps the class proportions (``_cut``).

    Each class is ordered by ``_order_key``. The images the user excluded (``excluded``) keep their
    places in that order and are left out after the cut, so excluding images (the suspects found on
    the Data page) moves no other image to another part: the run before and the run after are
    compared on the same validation and test images. Where that would leave a part of a class empty
    that ``_cut`` fills without them, that class is cut without them.
    """
    key = _order_key(root, seed)
    gone = {it.path for it in excluded}
    by_class = defaultdict(list)
    for it in [*items, *excluded]:
        by_class[it.label].append(it)
    out = {name: [] for name in [*fractions, "train"]}
    for label in sorted(by_class):
        group = sorted(by_class[label], key=key)
        kept = [it for it in group if it.path not in gone]
        if not kept:
            continue
        parts = {name: [it for it in part if it.path not in gone] for name, part in _cut(group, fractions).items()}
        if any(promised and not parts[name] for name, promised in _cut(kept, fractions).items()):
            parts = _cut(kept, fractions)
        for name, part in parts.items():
            out[name] += part
    return out


def make_split(scan: Scan, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0,
               test_scan: Scan | None = None, keep_groups: bool = True) -> dict[str, list[Item]]:
    """Train/val/test items for a validated scan.

    A single folder is split into all three parts. A pre-split folder keeps its parts and only
    carves what is missing from ``train``. ``test_scan`` (``--test-data``) replaces the test part.
    With ``keep_groups``, the near-duplicate groups stored with the data set
    (``neardup.find_near_duplicates``) are kept on one side (``keep_together``).
    """
    parts = dict(scan.parts)
    train = parts.pop("train", None) or parts.pop("all")
    fractions = {}
    if "val" not in parts:
        fractions["val"] = val_fraction
    if "test" not in parts and test_scan is None:
        fractions["test"] = test_fraction
    excluded = scan.excluded_items.get("train" if "train" in scan.parts else "all", [])
    split = _stratified(train, fractions, seed, scan.root, excluded)
    split.update({k: v for k, v in parts.items() if k in PARTS})
    if test_scan is not None:
        split["test"] = remap_labels(test_scan, scan.classes)
    for part in PARTS:
        split.setdefault(part, [])
    if keep_groups:
        root = Path(scan.root)
        groups = [[os.path.normpath(root / p) for p in g] for g in load_curation(root).groups]
        split = keep_together(split, groups, fixed=tuple(p for p in PARTS if p != "train" and p not in fractions))
    return split


def keep_together(split: dict[str, list[Item]], groups: list[list[str]],
                  fixed: tuple[str, ...] = ()) -> dict[str, list[Item]]:
    """Move every member of a group (absolute paths) that the split spread over several parts to
    one part: train when a member is there (the held-out parts stay clean), else the first of
    val/test that holds one. A ``fixed`` part (the user's own folder or ``--test-data``) is never
    changed: the group's members elsewhere leave their parts instead (dropped, not moved)."""
    where = {os.path.normpath(it.path): part for part, items in split.items() for it in items}
    moves = {}
    for g in groups:
        parts = {where[p] for p in g if p in where}
        if len(parts) > 1:
            pinned = [p for p in PARTS if p in parts and p in fixed]
            target = pinned[0] if pinned else next(p for p in PARTS if p in parts)
            moves.update({p: None if pinned else target for p in g
                          if p in where and where[p] != target and where[p] not in fixed})
    if not moves:
        return split
    out = {part: [] for part in split}
    for part, items in split.items():
        for it in items:
            to = moves.get(os.path.normpath(it.path), part)
            if to is not None:
                out[to].append(it)
    return out


def remap_labels(other: Scan, classes: list[str]) -> list[Item]:
    """Items of ``other`` relabelled to ``classes`` by name; unknown class names are an error."""
    index = {c: i for i, c in enumerate(classes)}
    used = sorted({it.label for it in other.items})
    unknown = [other.classes[label] for label in used if other.classes[label] not in index]
    if unknown:
        raise DatasetError(_("the test data has class(es) {unknown} that the training data lacks (training classes: "
                             "{classes}); rename or remove those folders", unknown=unknown, classes=classes))
    return [Item(it.path, index[other.classes[it.label]]) for it in other.items]


def split_to_json(split: dict[str, list[Item]], classes: list[str], seed: int) -> dict:
    return {"classes": classes, "seed": seed,
            **{part: [[it.path, it.label] for it in items] for part, items in split.items()}}


def split_from_json(data: dict) -> dict[str, list[Item]]:
    return {part: [Item(p, int(label)) for p, label in data.get(part, [])] for part in PARTS}


def split_summary(split: dict[str, list[Item]], classes: list[str]) -> dict[str, dict[str, int]]:
    """Images per class in each part, e.g. ``{"train": {"cat": 700, ...}, ...}``."""
    out = {}
    for part, items in split.items():
        counts = [0] * len(classes)
        for it in items:
            counts[it.label] += 1
        out[part] = dict(zip(classes, counts))
    return out
