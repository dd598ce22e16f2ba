"""The training plan of a run, resolved in one place.

``plan_run`` is the single owner of the transfer recipe: from the user's choices (a
``TrainConfig``: scenario, overrides), the backbone's layer-group sizes and the number of training
images it returns the frozen groups, every group's learning rate, the epochs of both stages and
the augmentation. The Plan and Model pages, the pre-flight estimate, ``advise``, the lab and
``train_run`` all ask it; nothing else decides these numbers. Pure and torch-free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from .config import TrainConfig
from .freezing import default_lr_ratio, discriminative_lrs, frozen_share, get_scenario, plan_freeze

FINETUNE_EPOCHS = 12  # fine-tuning stage (scenarios 2-4), measured on sign-language digits
HEAD_EPOCHS_ON_IMAGES = 5  # head-only training that must read images every epoch (augmentation on)


@dataclass(frozen=True)
class Plan:
    """What a run will do, concretely, on one backbone.

    Attributes:
        scenario: 1-4, or None for a freeze given only as ``--freeze`` / groups.
        frozen_groups: leading layer groups kept frozen; ``total_groups`` in all.
        frozen_share: the share of the backbone's parameters those groups hold (achieved, not a target).
        head_only: every group frozen: only the new head trains.
        use_cache: frozen work is computed once (features, or the activations at the freeze boundary).
        head_epochs, epochs: the head stage before fine-tuning, and the main stage.
        head_lr, lr_ratio, group_lrs: the new head's learning rate, head_lr / earliest group's,
            and the rate of every trainable pretrained group, earliest first.
    """

    scenario: int | None
    frozen_groups: int
    total_groups: int
    frozen_share: float
    head_only: bool
    augment: str
    use_cache: bool
    head_epochs: int
    epochs: int
    head_lr: float
    lr_ratio: float
    group_lrs: tuple[float, ...]

    @property
    def way(self) -> str:
        return "feature_extractor" if self.head_only else "fine_tune"

    def to_dict(self) -> dict:
        return {**asdict(self), "way": self.way}


def cached_head_epochs(n_train: int, batch_size: int, min_epochs: int = 30, min_steps: int = 400) -> int:
    """Epochs for a head trained on cached features: cheap, so enough for ``min_steps`` optimizer
    steps even on a tiny data set (a few steps per epoch), capped at 300."""
    steps = max(1, -(-n_train // batch_size))
    return min(300, max(min_epochs, -(-min_steps // steps)))


def train_images(n_images: int, cfg: TrainConfig) -> int:
    """How many of ``n_images`` the split gives to training (the rest: validation and test)."""
    return max(1, round(n_images * (1 - cfg.val_fraction - cfg.test_fraction)))


def plan_run(cfg: TrainConfig, param_counts: Sequence[int], n_train: int) -> Plan:
    """Resolve every ``None`` of ``cfg`` against the backbone's groups and the training-set size.

    Precedence for the freeze: ``frozen_groups`` (the Model page's slider), then
    ``frozen_fraction`` (``--freeze``), then the scenario's target share.
    """
    counts = list(param_counts)
    explicit = cfg.frozen_groups is not None or cfg.frozen_fraction is not None
    scenario = cfg.scenario if cfg.scenario is not None or explicit else 1  # None: a freeze of the user's own
    if cfg.frozen_groups is not None:
        k = min(cfg.frozen_groups, len(counts))
    else:
        target = cfg.frozen_fraction if cfg.frozen_fraction is not None else get_scenario(scenario).frozen_target
        k = plan_freeze(counts, target)
    head_only = k == len(counts)
    augment = cfg.augment or "none"
    use_cache = cfg.feature_cache and augment == "none"
    cached = cached_head_epochs(n_train, cfg.batch_size)
    epochs = cfg.epochs if cfg.epochs is not None else (
        (cached if use_cache else HEAD_EPOCHS_ON_IMAGES) if head_only else FINETUNE_EPOCHS)
    head_epochs = 0 if head_only else (cfg.head_epochs if cfg.head_epochs is not None else
                                       (cached // 3 if cfg.feature_cache else 1))
    lr_ratio = cfg.lr_ratio if cfg.lr_ratio is not None else default_lr_ratio(scenario)
    return Plan(scenario, k, len(counts), round(frozen_share(counts, k), 4), head_only, augment, use_cache,
                head_epochs, epochs, cfg.head_lr, lr_ratio,
                tuple(discriminative_lrs(len(counts), k, cfg.head_lr, lr_ratio)))


def resolved_config(cfg: TrainConfig, plan: Plan) -> TrainConfig:
    """``cfg`` with every choice the plan made written in, so ``config.json`` re-runs the same."""
    return cfg.replace(scenario=plan.scenario, frozen_groups=plan.frozen_groups, augment=plan.augment,
                       epochs=plan.epochs, head_epochs=plan.head_epochs, lr_ratio=plan.lr_ratio)
