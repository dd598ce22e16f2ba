"""Preprocessing (exactly what the pretrained weights expect), augmentation presets, datasets."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset
from torchvision.transforms import v2 as T

from .backbones import Preprocess
from .data import Item
from .imaging import load_rgb

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


def eval_transform(pre: Preprocess) -> T.Compose:
    """Resize the short side, centre crop, normalise: the transform of evaluation and prediction."""
    return T.Compose([*crop_transform(pre).transforms, *_tail(pre)])


def train_transform(pre: Preprocess, augment: str = "none") -> T.Compose:
    """The training transform for an augmentation preset: "none", "light" or "strong"."""
    if augment == "none":
        return eval_transform(pre)
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


class ImageDataset(Dataset):
    """``(tensor, label, index)`` for a list of ``Item``s; images are opened with ``load_rgb``."""

    def __init__(self, items: list[Item], transform, pre: Preprocess):
        self.items, self.transform, self.pre = items, transform, pre

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        return self.transform(load_for(it.path, self.pre)), it.label, i
