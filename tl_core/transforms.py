"""Preprocessing (exactly what the pretrained weights expect), augmentation presets, datasets."""

from __future__ import annotations

import os

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2 as T

from .backbones import Preprocess
from .data import Item
from .imaging import load_rgb

DECODE_CACHE_MAX_BYTES = int(float(os.environ.get("TL_DECODE_CACHE_MAX_GB", "2")) * 1e9)
_INTERP = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
           "nearest": T.InterpolationMode.NEAREST}


def _tail(pre: Preprocess) -> list:
    return [T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(pre.mean, pre.std)]


def crop_transform(pre: Preprocess) -> T.Compose:
    """Resize the short side and centre-crop: the picture the model sees, still a PIL image."""
    interp = _INTERP[pre.interpolation]
    # max_size bounds the long side, so a 20000x20 strip cannot blow up to 256000x256 pixels;
    # only images wider than 8:1 are affected (CenterCrop pads them).
    return T.Compose([T.Resize(pre.resize, interpolation=interp, antialias=True, max_size=pre.resize * 8),
                      T.CenterCrop(pre.crop)])


def eval_transform(pre: Preprocess, predecoded: bool = False) -> T.Compose:
    """Resize the short side, centre crop, normalise: the transform of evaluation and prediction.
    ``predecoded``: for images from ``DecodedImages`` (already resized): crop and normalise only."""
    crop = [T.CenterCrop(pre.crop)] if predecoded else crop_transform(pre).transforms
    return T.Compose([*crop, *_tail(pre)])


def train_transform(pre: Preprocess, augment: str = "none", predecoded: bool = False) -> T.Compose:
    """The training transform for an augmentation preset: "none", "light" or "strong" (the random
    crops work the same on a full picture and on a ``DecodedImages`` one)."""
    if augment == "none":
        return eval_transform(pre, predecoded)
    interp = _INTERP[pre.interpolation]
    if augment == "light":
        ops = [T.RandomResizedCrop(pre.crop, scale=(0.6, 1.0), interpolation=interp, antialias=True),
               T.RandomHorizontalFlip(), T.ColorJitter(0.2, 0.2, 0.1)]
        return T.Compose([*ops, *_tail(pre)])
    ops = [T.RandomResizedCrop(pre.crop, scale=(0.3, 1.0), interpolation=interp, antialias=True),
           T.RandomHorizontalFlip(), T.RandomRotation(15), T.ColorJitter(0.4, 0.4, 0.3, 0.05)]
    return T.Compose([*ops, *_tail(pre), T.RandomErasing(p=0.25)])


def load_for(path_or_bytes, pre: Preprocess):
    """Decode an image for a preprocessing spec, letting JPEG decode at a reduced scale when that
    still leaves at least ``pre.resize`` pixels on the short side (much faster for big photos)."""
    return load_rgb(path_or_bytes, min_side=pre.resize)


class DecodedImages:
    """Each image decoded and resized once (short side ``pre.resize``, the first step of every
    transform), kept in memory as a uint8 tensor; later epochs of augmentation start from there
    instead of decoding the file again. Stops storing at ``max_bytes`` (the rest is decoded each
    time), so memory stays bounded on big data sets."""

    def __init__(self, pre: Preprocess, max_bytes: int = DECODE_CACHE_MAX_BYTES):
        self.pre, self.max_bytes = pre, max_bytes
        self.resize = crop_transform(pre).transforms[0]
        self.store: dict[str, torch.Tensor] = {}
        self.bytes = 0

    def __call__(self, path: str) -> torch.Tensor:
        t = self.store.get(path)
        if t is None:
            t = T.functional.pil_to_tensor(self.resize(load_for(path, self.pre)))
            if self.bytes + t.numel() <= self.max_bytes:
                self.store[path] = t
                self.bytes += t.numel()
        return t


class ImageDataset(Dataset):
    """``(tensor, label, index)`` for a list of ``Item``s; images are opened with ``load_rgb``, or
    taken from ``decoded`` (then ``transform`` must be a ``predecoded`` one)."""

    def __init__(self, items: list[Item], transform, pre: Preprocess, decoded: DecodedImages | None = None):
        self.items, self.transform, self.pre, self.decoded = items, transform, pre, decoded

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        img = self.decoded(it.path) if self.decoded is not None else load_for(it.path, self.pre)
        return self.transform(img), it.label, i
