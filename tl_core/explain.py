"""Grad-CAM: which part of the image made the model choose a class (Selvaraju et al., 2017)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .model import TransferModel
from .numerics import FP32, autocast


def grad_cam(model: TransferModel, x: torch.Tensor, target: int | None = None,
             precision: str = FP32) -> tuple[np.ndarray, int]:
    """Grad-CAM heat map of one preprocessed image ``x`` ``[1, 3, H, W]``.

    Uses the last layer group whose output is still a spatial map; works whether or not the
    backbone is frozen (the gradient is taken with respect to that map, not the weights).

    Returns:
        ``(heat map [H, W] scaled to 0..1, the class it explains)``; ``target=None`` explains the
        predicted class. ``precision``: the run's numerics, so the explained class is the predicted one.
    """
    model.eval()
    groups = list(model.body)
    with torch.no_grad(), autocast(x.device, precision):
        maps, acts, last_map = [], x, -1
        for i, module in enumerate(groups):
            acts = module(acts)
            maps.append(acts)
            if acts.ndim == 4:
                last_map = i
    with torch.enable_grad():
        feat = maps[last_map].detach().float().requires_grad_(True)
        with autocast(x.device, precision):
            logits = model.forward_from(feat, last_map + 1).float()
        target = int(logits.argmax(1)) if target is None else target
        logits[0, target].backward()
    weights = feat.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * feat.detach()).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    cam = cam - cam.min()
    cam = cam / cam.max() if cam.max() > 0 else cam
    return cam.cpu().numpy(), target


def overlay(image: Image.Image, cam: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The image with the heat map on top (blue = ignored, red = decisive)."""
    heat = np.clip(cam, 0, 1)
    rgb = np.stack([np.clip(1.5 - np.abs(4 * heat - k), 0, 1) for k in (3, 2, 1)], axis=-1)  # jet-like
    base = np.asarray(image.convert("RGB").resize(cam.shape[::-1]), dtype=np.float32) / 255
    return Image.fromarray(np.uint8(255 * ((1 - alpha) * base + alpha * rgb)))
