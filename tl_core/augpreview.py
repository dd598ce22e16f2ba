"""Augmentation preview: what the training transform makes of one image at a preset, as pictures."""

from __future__ import annotations

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from .backbones import Preprocess
from .transforms import DecodedImages, crop_transform, load_for, train_transform


def augmented_versions(path: str, pre: Preprocess, level: str, n: int = 8, seed: int = 0) -> list[Image.Image]:
    """``n`` versions of the image at ``path`` as the training loop would feed them with augmentation
    ``level`` ("none", "light" or "strong"), turned back into viewable RGB pictures.

    The same code as training: the image is decoded and resized as ``DecodedImages`` does, then the
    preset's ``train_transform`` runs with per-sample seeds, then the normalisation is undone.
    """
    if level == "none":
        return [TF.to_pil_image(crop_transform(pre)(load_for(path, pre)))] * n
    picture = DecodedImages(pre, max_bytes=0)(path)
    transform = train_transform(pre, level, predecoded=True)
    mean = torch.tensor(pre.mean).view(-1, 1, 1)
    std = torch.tensor(pre.std).view(-1, 1, 1)
    out = []
    for i in range(n):
        x = transform(picture, seed * 1_000_003 + i)
        out.append(TF.to_pil_image((x * std + mean).clamp(0, 1)))
    return out
