"""Run settings as frozen dataclasses that round-trip through JSON.

``None`` means "use the default for this backbone / scenario"; ``resolve`` fills every ``None``
so that the ``config.json`` saved with a run is enough to re-run it headless.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .i18n import _

AUGMENT_PRESETS = ("none", "light", "strong")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides what a training run does.

    Attributes:
        data: image folder (class sub-folders, or ``train/`` + ``val|validation|test/``).
        test_data: optional separate folder used as the test split.
        backbone: registry name of the pretrained network.
        weights: path to a weights file; ``None`` uses the registry's default source.
        scenario: 1-4 of the method (decides the frozen share when ``frozen_fraction`` is None).
        frozen_fraction: explicit share of backbone parameters to freeze (0..1).
        frozen_groups: explicit number of layer groups to freeze from the input side (the Model
            page's slider, kept in the unit it is chosen in); wins over ``frozen_fraction``.
        epochs: epochs of the main stage (head-only for scenario 1, fine-tuning otherwise).
        head_epochs: epochs training only the new head before unfreezing (two-stage recipe).
        head_hidden: units of the hidden Dense layer of the head; 0 = a single linear layer.
        dropout: dropout before the last layer of the head.
        batch_size: images per step.
        head_lr: learning rate of the new head; pretrained groups get smaller ones.
        lr_ratio: head_lr / lr of the earliest trainable pretrained group (geometric up to
            head_lr / sqrt(lr_ratio) for the last group); None = 100 for scenarios 1-2, 10 for 3-4.
        weight_decay: AdamW weight decay.
        augment: "none", "light" or "strong"; None = "none", which lets every frozen part run
            once and be cached (measured better and several times faster than "light" here).
        val_fraction, test_fraction: share of a single folder held out for validation and test.
        seed: seeds the split, the head init and the batch order.
        patience: early stopping patience in epochs (0 = off).
        feature_cache: reuse cached backbone features when the backbone is fully frozen.
        cache_dir: where feature caches live (shared across runs).
        max_images_per_class: cap per class (0 = all) for quick experiments.
        label_smoothing: target smoothing of the cross-entropy loss (0 = off).
        bn_stats: "frozen" keeps every BatchNorm layer's ImageNet statistics while fine-tuning
            (recommended for small data); "train" lets unfrozen groups re-estimate them.
    """

    data: str
    test_data: str | None = None
    backbone: str = "efficientnet_lite0"  # backbones.DEFAULT_BACKBONE (a test checks they agree)
    weights: str | None = None
    scenario: int | None = None
    frozen_fraction: float | None = None
    frozen_groups: int | None = None
    epochs: int | None = None
    head_epochs: int | None = None
    head_hidden: int = 64
    dropout: float = 0.3
    batch_size: int = 32
    head_lr: float = 1e-3
    lr_ratio: float | None = None
    weight_decay: float = 1e-4
    augment: str | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    seed: int = 0
    patience: int = 5
    feature_cache: bool = True
    cache_dir: str | None = None
    max_images_per_class: int = 0
    bn_stats: str = "frozen"
    label_smoothing: float = 0.1

    def __post_init__(self) -> None:
        problems = validate_config(self)
        if problems:
            raise ConfigError("; ".join(problems))

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(_("unknown setting(s) {unknown}; valid ones: {known}",
                                unknown=unknown, known=sorted(known)))
        return cls(**data)

    def save(self, path: str | Path) -> None:
        from .runs import write_json_atomic

        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(_("cannot read config {path}: {exc}", path=path, exc=exc)) from None


def validate_config(cfg: TrainConfig) -> list[str]:
    """Every problem with a config, in words (empty list when it is fine)."""
    problems = []
    if cfg.scenario is not None and cfg.scenario not in (1, 2, 3, 4):
        problems.append(_("scenario must be 1, 2, 3 or 4, got {value!r}", value=cfg.scenario))
    if cfg.frozen_fraction is not None and not 0.0 <= cfg.frozen_fraction <= 1.0:
        problems.append(_("frozen fraction must be between 0 and 1, got {value}", value=cfg.frozen_fraction))
    for name in ("epochs", "head_epochs", "frozen_groups"):
        value = getattr(cfg, name)
        if value is not None and value < 0:
            problems.append(_("{name} must be 0 or more, got {value}", name=name, value=value))
    if cfg.batch_size < 1:
        problems.append(_("batch size must be at least 1, got {value}", value=cfg.batch_size))
    if cfg.head_hidden < 0:
        problems.append(_("head hidden size must be 0 (linear) or more, got {value}", value=cfg.head_hidden))
    if not 0.0 <= cfg.dropout < 1.0:
        problems.append(_("dropout must be in [0, 1), got {value}", value=cfg.dropout))
    if cfg.head_lr <= 0 or (cfg.lr_ratio is not None and cfg.lr_ratio < 1):
        problems.append(_("head learning rate must be > 0 and lr ratio >= 1"))
    if cfg.bn_stats not in ("frozen", "train"):
        problems.append(_("bn_stats must be 'frozen' or 'train', got {value!r}", value=cfg.bn_stats))
    if cfg.augment is not None and cfg.augment not in AUGMENT_PRESETS:
        problems.append(_("augment must be one of {names}, got {value!r}", names=AUGMENT_PRESETS, value=cfg.augment))
    if not (0 <= cfg.val_fraction < 1 and 0 <= cfg.test_fraction < 1 and cfg.val_fraction + cfg.test_fraction < 0.9):
        problems.append(_("validation and test fractions must each be in [0, 1) and leave at least 10% for training"))
    return problems
