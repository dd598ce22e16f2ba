"""The method's four scenarios, freeze plans on layer groups, and discriminative learning rates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # the plan's arithmetic stays importable without torch
    from torch import nn

from .errors import ConfigError
from .i18n import N_, _

@dataclass(frozen=True)
class Scenario:
    number: int
    size: str
    similarity: str
    frozen_target: float
    frozen_range: tuple[float, float]
    title: str
    reason: str

    @property
    def way(self) -> str:
        return "feature_extractor" if self.frozen_target >= 1.0 else "fine_tune"


SCENARIOS = {
    1: Scenario(1, "small", "similar", 1.0, (1.0, 1.0), N_("Freeze the whole pretrained network, train a new head"),
                N_("Your images look like ImageNet photos, so the pretrained features already describe them well, "
                   "and with few images any change to millions of pretrained weights would overfit. Keep the whole "
                   "network frozen as a feature extractor and train only a small new classifier on top. This is the "
                   "cheapest option: the features can be computed once and reused every epoch.")),
    2: Scenario(2, "large", "similar", 0.7, (0.6, 0.8), N_("Freeze most of the network (~70%), fine-tune the top"),
                N_("Your images look like ImageNet photos and you have plenty of them. The early and middle layers "
                   "(edges, textures, parts) transfer as they are, so they stay frozen; the last blocks encode "
                   "ImageNet-specific object parts, and with enough data you can adapt them to your classes. Fine-tune "
                   "the top ~20-40% of the network with small learning rates and a larger one for the new head.")),
    3: Scenario(3, "small", "different", 0.4, (0.33, 0.5),
                N_("Freeze only the early layers (~1/3-1/2), fine-tune the rest"),
                N_("Your images do not look like ImageNet photos, so the late, ImageNet-specific layers fit them "
                   "poorly, but the early layers (edges, colours, simple textures) are useful for any image. Freeze "
                   "those early layers, which also limits overfitting on a small data set, and fine-tune the rest with "
                   "small learning rates.")),
    4: Scenario(4, "large", "different", 0.0, (0.0, 0.0), N_("Fine-tune the whole network from pretrained weights"),
                N_("Your images differ from ImageNet and you have many of them, so every layer can and should adapt. "
                   "Start from the pretrained weights anyway (it converges faster and better than random ones) and "
                   "fine-tune the whole network, the earliest layers with the smallest learning rates.")),
}


WORDS = (N_("small"), N_("large"), N_("similar"), N_("different"))  # the two answers, shown translated


def scenario_for(size: str, similarity: str) -> Scenario:
    """The scenario for a data set of ``size`` ("small"|"large") and ``similarity`` ("similar"|"different")."""
    if size not in ("small", "large"):
        raise ConfigError(_("size must be 'small' or 'large', got {value!r}", value=size))
    if similarity not in ("similar", "different"):
        raise ConfigError(_("similarity must be 'similar' or 'different', got {value!r}", value=similarity))
    return next(s for s in SCENARIOS.values() if s.size == size and s.similarity == similarity)


def get_scenario(number: int) -> Scenario:
    if number not in SCENARIOS:
        raise ConfigError(_("scenario must be 1, 2, 3 or 4, got {value!r}", value=number))
    return SCENARIOS[number]


def plan_freeze(param_counts: list[int], fraction: float) -> int:
    """How many leading groups to freeze so their share of parameters is closest to ``fraction``.

    ``fraction`` 1.0 freezes every group and 0.0 none, exactly; otherwise the prefix whose share of
    parameters is nearest wins (ties go to freezing less).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(_("frozen fraction must be between 0 and 1, got {value}", value=fraction))
    n = len(param_counts)
    if fraction >= 1.0:
        return n
    if fraction <= 0.0:
        return 0
    total = sum(param_counts) or 1
    shares, running = [0.0], 0
    for count in param_counts:
        running += count
        shares.append(running / total)
    return min(range(n + 1), key=lambda k: (abs(shares[k] - fraction), k))


def frozen_share(param_counts: list[int], n_frozen: int) -> float:
    total = sum(param_counts) or 1
    return sum(param_counts[:n_frozen]) / total


def default_lr_ratio(scenario: int | None) -> float:
    """head_lr / lr of the earliest trainable pretrained group: 100 when the data resemble ImageNet
    (the pretrained layers are nearly right and must move little), 10 when they differ (the layers
    must adapt more). Measured on the sign-language digits: 10 gave 98% test accuracy, 100 gave 97%."""
    return 10.0 if scenario in (3, 4) else 100.0


def discriminative_lrs(n_groups: int, n_frozen: int, head_lr: float, lr_ratio: float = 100.0) -> list[float]:
    """Learning rates of the trainable pretrained groups, earliest first.

    Geometric from ``head_lr / lr_ratio`` (earliest trainable group) up to
    ``head_lr / sqrt(lr_ratio)`` (last group), so early, general layers move least. The head
    itself trains at ``head_lr``.
    """
    m = n_groups - n_frozen
    if m <= 0:
        return []
    lo, hi = head_lr / lr_ratio, head_lr / lr_ratio ** 0.5
    if m == 1:
        return [hi]
    return [lo * (hi / lo) ** (i / (m - 1)) for i in range(m)]


def param_groups(model: nn.Module, group_lrs: Sequence[float], head_lr: float) -> list[dict]:
    """Optimizer param groups for a ``TransferModel`` after ``freeze_to``: one per trainable group
    (at ``group_lrs``, earliest first, from the plan) + the head."""
    groups = list(model.body)[model.frozen_groups:]
    if len(group_lrs) != len(groups):
        raise ConfigError(_("{n} learning rates for {m} trainable groups", n=len(group_lrs), m=len(groups)))
    names = model.group_names[model.frozen_groups:]
    out = [{"params": [p for p in g.parameters() if p.requires_grad], "lr": lr, "name": name}
           for g, lr, name in zip(groups, group_lrs, names)]
    out = [g for g in out if g["params"]]
    out.append({"params": list(model.head.parameters()), "lr": head_lr, "name": "head"})
    return out
