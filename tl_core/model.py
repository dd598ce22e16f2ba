"""The transfer model: pretrained layer groups, global pooling, and a new classification head.

Its vocabulary follows timm's where the meaning is the same: ``forward_head`` (pooled vector ->
class logits) and ``group_names``. ``forward_pooled`` returns the *pooled* vector (timm's
``forward_features`` returns the unpooled map, so the name is not borrowed).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .backbones import BackboneSpec, count_params


def build_head(in_features: int, num_classes: int, hidden: int = 64, dropout: float = 0.3) -> nn.Sequential:
    """The textbook head: Dense(hidden) + ReLU + Dropout + Linear(num_classes); ``hidden=0`` = linear."""
    if hidden == 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
    return nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                         nn.Linear(hidden, num_classes))


class TransferModel(nn.Module):
    """Pretrained groups (``body``) + pooling + a new head.

    Args:
        groups: ordered ``(name, module)`` pairs from ``BackboneSpec.groups``.
        feature_dim: channels coming out of the last group.
        num_classes: classes of the new task.
        hidden, dropout: head shape (see ``build_head``).
    """

    def __init__(self, groups: list[tuple[str, nn.Module]], feature_dim: int, num_classes: int,
                 hidden: int = 64, dropout: float = 0.3):
        super().__init__()
        self.body = nn.Sequential(OrderedDict(groups))
        self.feature_dim = feature_dim
        self.head = build_head(feature_dim, num_classes, hidden, dropout)
        self.frozen_groups = 0
        self.bn_stats_frozen = False

    def freeze_to(self, frozen_groups: int) -> None:
        """Freeze the first ``frozen_groups`` layer groups and train the rest (fastai's ``freeze_to``).

        Frozen groups get ``requires_grad=False`` and stay in eval mode, so their BatchNorm
        running statistics keep the ImageNet values even while the model trains.
        """
        self.frozen_groups = max(0, min(int(frozen_groups), len(self.body)))
        for i, module in enumerate(self.body):
            module.requires_grad_(i >= self.frozen_groups)
        self.head.requires_grad_(True)
        self.train(self.training)

    def train(self, mode: bool = True) -> "TransferModel":
        super().train(mode)
        for module in list(self.body)[: self.frozen_groups]:
            module.eval()
        if self.bn_stats_frozen:
            # Keras's advice for fine-tuning on small data: BatchNorm keeps its ImageNet statistics
            # (inference mode) in the unfrozen groups too; its scale and shift still learn.
            for module in self.body.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    def trainable_params(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @property
    def group_names(self) -> list[str]:
        return list(self.body._modules)

    def group_param_counts(self) -> list[int]:
        return [count_params(m) for m in self.body]

    def forward_body(self, x: torch.Tensor, start: int = 0, end: int | None = None) -> torch.Tensor:
        """Run groups ``start`` to ``end - 1`` on ``x`` (images when ``start`` is 0, else the
        activations coming out of group ``start - 1``)."""
        for module in list(self.body)[start:end]:
            x = module(x)
        return x

    def forward_pooled(self, x: torch.Tensor, frozen_groups: int = 0) -> torch.Tensor:
        """Pooled feature vector, from images (``frozen_groups=0``) or from the activations coming
        out of the first ``frozen_groups`` groups (the frozen-prefix cache)."""
        x = self.forward_body(x, frozen_groups)
        return x.mean(dim=(2, 3)) if x.ndim == 4 else x

    def forward_from(self, activations: torch.Tensor, frozen_groups: int) -> torch.Tensor:
        """Logits from the activations after the first ``frozen_groups`` groups (the frozen-prefix cache)."""
        return self.head(self.forward_pooled(activations, frozen_groups))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_pooled(x))


def build_model(spec: BackboneSpec, num_classes: int, hidden: int = 64, dropout: float = 0.3, *,
                pretrained: bool = True, weights: str | None = None, empty: bool = False) -> TransferModel:
    """A ``TransferModel`` on ``spec``'s network, with ImageNet weights unless ``pretrained=False``;
    then random ones, or none at all with ``empty=True`` (for a checkpoint to fill: no random init)."""
    if pretrained:
        net = spec.load_pretrained(weights)
    else:
        net = spec.build_empty() if empty else spec.build()
    model = TransferModel(spec.groups(net), spec.feature_dim, num_classes, hidden, dropout)
    return model
