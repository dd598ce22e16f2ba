"""Cached backbone features: run a frozen backbone once, train heads on the vectors many times.

The cache key covers every input that changes the vectors: the image files (path, size, mtime),
the backbone, its weights, its preprocessing and where in the network the features are taken.
Any change misses; a run that only changes head settings, epochs or the split hits.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader

from . import settings
from .backbones import BackboneSpec
from .data import Item
from .distributed import to_channels_last
from .numerics import FP32, TORCH, Numerics, frozen_forward
from .transforms import ImageDataset, eval_transform, prefetch

Progress = Callable[[int, int], None]


def default_cache_dir() -> Path:
    return settings.cache_root() / "features"


def _file_fingerprint(path: str) -> list:
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


CACHE_FILE = re.compile(r"[A-Za-z0-9_]+-[0-9a-f]{32}\.pt")  # f"{backbone}-{cache_key}.pt"


def cache_key(paths: list[str], spec: BackboneSpec, weights: str | None = None,
              frozen_groups: int = 0, precision: str = FP32, engine: str = TORCH) -> str:
    """Hex key of the features of ``paths`` under ``spec`` (and a custom weights file, if any),
    computed in ``precision`` by ``engine`` (features of different numerics never share a file)."""
    weights_fp = _file_fingerprint(weights) if weights else spec.weights_id
    payload = {
        "files": sorted(_file_fingerprint(p) for p in paths),
        "backbone": spec.name,
        "weights": weights_fp,
        "preprocess": spec.preprocess.to_dict(),
        "frozen_groups": frozen_groups,
        "version": 2,  # 2: resize on uint8 tensors (torchvision) instead of Pillow
    }
    if precision != FP32:  # fp32 keys stay as they were: caches written before numerics were recorded hit
        payload["precision"] = precision
    if engine != TORCH:
        payload["engine"] = engine
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


@torch.inference_mode()
def extract_features(model, items: list[Item], spec: BackboneSpec, batch_size: int = 32,
                     progress: Progress | None = None, frozen_groups: int | None = None,
                     numerics: Numerics | None = None) -> torch.Tensor:
    """Backbone outputs of ``items`` (model in eval mode, no grad), computed in ``numerics`` (fp32
    PyTorch unless given).

    ``frozen_groups=None``: pooled features ``[N, feature_dim]``. ``frozen_groups=k``: the
    activations coming out of the first ``k`` groups (the frozen prefix), in fp16 to halve their memory.
    """
    model.eval()
    device = next(model.parameters()).device
    loader = DataLoader(ImageDataset(items, eval_transform(spec.preprocess), spec.preprocess),
                        batch_size=batch_size, shuffle=False, num_workers=0)
    forward = frozen_forward(model, spec, numerics or Numerics(), frozen_groups)
    out, done = [], 0
    for x, _labels, _index in prefetch(loader):  # decode the next batch while this one runs through the network
        x = to_channels_last(x.to(device), spec.channels_last)
        if frozen_groups is None:
            out.append(forward(x).cpu())
        else:
            out.append(forward(x).half().contiguous().cpu())
        done += len(x)
        if progress:
            progress(done, len(items))
    return torch.cat(out) if out else torch.zeros(0, model.feature_dim)


def activation_bytes(model, spec: BackboneSpec, frozen_groups: int, n_images: int) -> int:
    """fp16 bytes needed to cache the activations after ``frozen_groups`` groups for ``n_images``."""
    with torch.inference_mode():
        x = torch.zeros(1, 3, spec.input_size, spec.input_size, device=next(model.parameters()).device)
        return model.eval().forward_body(x, 0, frozen_groups).numel() * 2 * n_images


def cached_features(model, items: list[Item], spec: BackboneSpec, cache_dir: str | Path | None = None, *,
                    weights: str | None = None, batch_size: int = 32,
                    progress: Progress | None = None,
                    frozen_groups: int | None = None, numerics: Numerics | None = None) -> tuple[torch.Tensor, str]:
    """Features (or prefix activations, with ``frozen_groups``) of ``items``: from the cache when the key
    matches, else extracted and stored.

    Returns:
        ``(tensor with one row per item in the order of items, "hit" | "miss")``.
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    paths = [it.path for it in items]
    numerics = numerics or Numerics()
    key = cache_key(paths, spec, weights, frozen_groups=frozen_groups or 0, precision=numerics.precision,
                    engine=numerics.engine)
    file = cache_dir / f"{spec.name}-{key}.pt"
    if file.is_file():
        try:
            data = torch.load(file, map_location="cpu", weights_only=True)
            rows = {p: i for i, p in enumerate(data["paths"])}
            feats = data["features"][[rows[os.path.abspath(p)] for p in paths]]
            os.utime(file)  # its time is its last use: eviction removes the least recently used first
            return (feats.float() if frozen_groups is None else feats), "hit"
        except Exception:  # noqa: BLE001 - a damaged cache file is simply recomputed
            file.unlink(missing_ok=True)
    feats = extract_features(model, items, spec, batch_size, progress, frozen_groups, numerics).half()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(f".{os.getpid()}.tmp")
    torch.save({"paths": [os.path.abspath(p) for p in paths], "features": feats}, tmp)
    os.replace(tmp, file)
    prune_cache(cache_dir, keep=file)
    # Stored as fp16: return exactly what a later hit returns, so hit and miss train identically.
    return (feats.float() if frozen_groups is None else feats), "miss"


def prune_cache(cache_dir: str | Path, max_bytes: int | None = None, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used cache files until the folder holds at most ``max_bytes``
    (never ``keep``, the file just written); returns what was removed."""
    limit = settings.cache_max_bytes() if max_bytes is None else max_bytes
    files = []
    for f in Path(cache_dir).glob("*.pt"):
        if not CACHE_FILE.fullmatch(f.name):  # only what this cache wrote: never a user's own file
            continue
        try:
            st = f.stat()
        except FileNotFoundError:  # another process evicted it meanwhile
            continue
        files.append((st.st_mtime, st.st_size, f))
    total, removed = sum(size for _mtime, size, _f in files), []
    for _mtime, size, f in sorted(files, key=lambda t: t[0]):
        if total <= limit:
            break
        if keep is not None and f == keep:
            continue
        f.unlink(missing_ok=True)
        total -= size
        removed.append(f)
    return removed
