"""Measured forward speed on this machine, and a training-time estimate built on it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .backbones import BackboneSpec, group_flops
from .distributed import to_channels_last
from .config import TrainConfig
from .progress import run_budget, trainable_share
from .settings import cache_root
from .recipe import Plan, plan_run, train_images


def _speed_file() -> Path:
    return cache_root() / "speed.json"


def known_speeds() -> dict[str, float]:
    try:
        return json.loads(_speed_file().read_text())
    except (OSError, json.JSONDecodeError):
        return {}


@torch.inference_mode()
def measure_forward(spec: BackboneSpec, batch: int = 8, repeats: int = 2) -> float:
    """Images per second of one eval forward pass here (random weights: same cost), in the numerics a
    run of ``spec`` would use on this machine (``numerics.choose``), remembered."""
    from .numerics import autocast, choose

    precision = choose(spec).precision
    net = spec.build().eval()
    x = torch.randn(batch, 3, spec.input_size, spec.input_size)
    net, x = to_channels_last(net, spec.channels_last), to_channels_last(x, spec.channels_last)
    with autocast("cpu", precision):
        net(x)  # warm-up
    t0 = time.perf_counter()
    for _repeat in range(repeats):
        with autocast("cpu", precision):
            net(x)
    ips = batch * repeats / (time.perf_counter() - t0)
    speeds = {**known_speeds(), spec.name: round(ips, 2)}
    _speed_file().parent.mkdir(parents=True, exist_ok=True)
    _speed_file().write_text(json.dumps(speeds, indent=1))
    return ips


def estimate_seconds(plan: Plan, n_images: int, n_train: int, n_val: int, forward_ips: float, flops) -> float:
    """Rough wall time of a planned run from the measured forward speed: its planned work
    (``progress.run_budget``, in image forward passes, the trainable part weighed by its FLOPs)."""
    return run_budget(plan, n_train, n_val, n_images, flops).total / forward_ips


def preflight(cfg: TrainConfig, batch_size: int = 16, batches: int = 2) -> dict:
    """Time a few real batches of ``data`` before training: decoding and preprocessing, the frozen
    forward pass, and one training step at the planned freeze (forward + backward), per image.
    From those, the expected duration of the run ``cfg`` plans and of the cached-feature mode
    (no augmentation: features and frozen-prefix activations computed once).

    Returns:
        ``{"seconds", "cached_seconds", "ms_per_image": {"load", "forward", "step"}, "images", "train_images"}``.
    """
    from torch.utils.data import DataLoader

    from .backbones import get_backbone
    from .data import scan_folder, validate
    from .model import build_model
    from .transforms import ImageDataset, eval_transform, train_transform

    spec = get_backbone(cfg.backbone)
    scan = validate(scan_folder(cfg.data))[1]
    n = len(scan.items)
    n_train = train_images(n, cfg)
    model = build_model(spec, max(2, len(scan.classes)), pretrained=False)
    model = to_channels_last(model, spec.channels_last)
    counts = model.group_param_counts()
    plan = plan_run(cfg, counts, n_train)
    k, augment, e = plan.frozen_groups, plan.augment, plan.epochs
    flops = group_flops(model.body, spec.input_size)
    trainable = trainable_share(flops, k)  # the cached epochs' share of a step
    step_items = [scan.items[i * len(scan.items) // (batch_size * batches)] for i in range(batch_size * batches)]
    pre = spec.preprocess

    def timed_batches(transform):
        loader = DataLoader(ImageDataset(step_items, transform, pre), batch_size=batch_size)
        t0, out = time.perf_counter(), []
        for x, y, _index in loader:
            out.append((to_channels_last(x, spec.channels_last), y))
        return out, (time.perf_counter() - t0) / len(step_items)

    evals, load = timed_batches(eval_transform(pre))
    model.eval()
    with torch.inference_mode():
        model(evals[0][0])  # warm-up
        t0 = time.perf_counter()
        for x, _labels in evals:
            model(x)
    forward = (time.perf_counter() - t0) / len(step_items)
    trains, load_aug = timed_batches(train_transform(pre, augment)) if augment != "none" else (evals, load)
    model.freeze_to(k)
    model.train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    t0 = time.perf_counter()
    for x, y in trains:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    step = (time.perf_counter() - t0) / len(step_items)
    head_only = plan.head_only
    extract = n * (load + forward)
    if head_only:
        cached = extract
    else:
        # features once; prefix activations once; then epochs over the unfrozen part only
        cached = 2 * extract + e * n_train * step * trainable
    if augment == "none":
        seconds = cached
    elif head_only:
        seconds = e * (n_train * (load_aug + forward) + (n - n_train) * forward)
    else:
        seconds = extract + e * (n_train * (load_aug + step) + (n - n_train) * forward)
    return {"seconds": round(seconds, 1), "cached_seconds": round(cached, 1), "images": n, "train_images": n_train,
            "epochs": e, "frozen_groups": k, "ms_per_image": {"load": round(1000 * load, 2),
                                                               "load_augmented": round(1000 * load_aug, 2),
                                                               "forward": round(1000 * forward, 2),
                                                               "step": round(1000 * step, 2)}}
