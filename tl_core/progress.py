"""One progress bar per run that moves with the work and never resets between stages.

A run is a row of phases (feature extraction, head epochs, frozen-prefix extraction, fine-tuning
epochs), each weighted by its expected cost in "image forward passes": a forward pass over an
image costs 1, a training step about 3 for the part that trains (forward and backward), a head on
cached features almost nothing. The bar is the share of the expected work done; a phase that
turns out cheaper (a cache hit) simply jumps. Pure and torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .recipe import Plan

CACHED_EPOCH = 0.002  # a head epoch on cached feature vectors, per image, relative to a forward pass
MIN_SPEED_SECONDS = 3.0  # images/s of a shorter window is noise (the first batches, a cache hit)
MIN_ETA_SHARE = 0.05  # below this share of the work done, an overall time estimate is a guess


@dataclass(frozen=True)
class Budget:
    """The phases of one run and their expected costs, in order."""

    phases: tuple[tuple[str, float], ...]

    @property
    def total(self) -> float:
        return sum(w for _name, w in self.phases) or 1.0

    def at(self, phase: str, fraction: float) -> float:
        """Share of the whole run's work done when ``phase`` is ``fraction`` (0..1) done."""
        done = 0.0
        for name, weight in self.phases:
            if name == phase:
                return round(min(1.0, (done + weight * min(max(fraction, 0.0), 1.0)) / self.total), 4)
            done += weight
        return round(min(1.0, done / self.total), 4)


def trainable_share(flops: Sequence[float], frozen_groups: int) -> float:
    """The share of a forward pass's operations after the first ``frozen_groups`` layer groups: what
    a fine-tuning step on the frozen-prefix cache runs (operations, not parameters)."""
    return sum(flops[frozen_groups:]) / (sum(flops) or 1.0)


def run_budget(plan: Plan, n_train: int, n_val: int, n_all: int, flops: Sequence[float]) -> Budget:
    """The expected work of a run planned as ``plan`` on a split of ``n_all`` images; ``flops``: each
    layer group's forward FLOPs (``backbones.group_flops``), which set the trainable part's share of
    a forward pass. (Its share of the parameters does not: on sign digits that estimated scenario 4
    at 1.6x scenario 3's time, the FLOPs at 2.5x; the lab measured 2.9x.)"""
    if len(flops) != plan.total_groups:
        raise ValueError(f"{len(flops)} FLOP counts for {plan.total_groups} layer groups")
    phases: list[tuple[str, float]] = []
    head_epochs = plan.epochs if plan.head_only else plan.head_epochs
    if plan.head_only and not plan.use_cache:  # augmentation on: the whole network runs every epoch
        phases.append(("head", head_epochs * (n_train + n_val)))
    else:
        phases.append(("features", float(n_all)))
        phases.append(("head", head_epochs * (n_train + n_val) * CACHED_EPOCH))
    if not plan.head_only:
        trainable = trainable_share(flops, plan.frozen_groups)
        if plan.use_cache and plan.frozen_groups > 0:  # the frozen prefix runs once, then only the rest
            phases.append(("prefix", float(n_all)))
            per_epoch = 3 * trainable * n_train + trainable * n_val
        else:
            per_epoch = (1 + 2 * trainable) * n_train + n_val
        phases.append(("finetune", plan.epochs * per_epoch))
    return Budget(tuple(phases))


def eta_seconds(progress: float, elapsed: float) -> float | None:
    """Seconds left for the whole run, from the share done so far (None while that is a guess)."""
    if progress < MIN_ETA_SHARE or elapsed < MIN_SPEED_SECONDS:
        return None
    return round(elapsed * (1 - progress) / progress, 1)


def meaningful_speed(images_per_s: float | None, seconds: float) -> float | None:
    """The speed of a window long enough to mean something, else None (not shown)."""
    return round(images_per_s, 1) if images_per_s and seconds >= MIN_SPEED_SECONDS else None
