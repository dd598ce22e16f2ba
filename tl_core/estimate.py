"""Measured forward speed on this machine, and a training-time estimate built on it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .backbones import BackboneSpec
from .features import cache_root


def _speed_file() -> Path:
    return cache_root() / "speed.json"


def known_speeds() -> dict[str, float]:
    try:
        return json.loads(_speed_file().read_text())
    except (OSError, json.JSONDecodeError):
        return {}


@torch.inference_mode()
def measure_forward(spec: BackboneSpec, batch: int = 8, repeats: int = 2) -> float:
    """Images per second of one eval forward pass here (random weights: same cost), remembered."""
    net = spec.build().eval()
    x = torch.randn(batch, 3, spec.input_size, spec.input_size)
    if spec.channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    net(x)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        net(x)
    ips = batch * repeats / (time.perf_counter() - t0)
    speeds = {**known_speeds(), spec.name: round(ips, 2)}
    _speed_file().parent.mkdir(parents=True, exist_ok=True)
    _speed_file().write_text(json.dumps(speeds, indent=1))
    return ips


def estimate_seconds(n_images: int, n_train: int, forward_ips: float, frozen_groups: int, total_groups: int,
                     epochs: int, augment: str) -> float:
    """Rough wall time of a run: one feature pass over all images, plus fine-tuning epochs.

    A training step costs about 3x a forward pass (forward + backward) for the unfrozen part;
    with the frozen-prefix cache (no augmentation) the frozen part is never re-run.
    """
    extract = n_images / forward_ips
    if frozen_groups >= total_groups:
        return extract * (1 if augment == "none" else epochs * 3)
    trainable = 1 - frozen_groups / total_groups
    per_epoch = n_train / forward_ips * (3 * trainable + (0 if augment == "none" else 1 - trainable))
    return extract + epochs * per_epoch + epochs * (n_images - n_train) / forward_ips * 0.5
