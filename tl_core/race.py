"""A short race of the scenarios on the user's own images, and a trend that predicts the last one.

The textbook's table guesses which scenario wins from two facts (size, similarity). The race
measures it instead, at a fraction of the lab's cost:

- it uses the training and validation images a run on the same folder would get (same split and
  seed); the test images are never looked at, so the lab's test stays an independent check;
- one forward pass caches the activations at the shallowest freeze boundary a cached scenario
  uses (scenario 3's), so scenarios 1-3 train only their unfrozen top groups on those tensors,
  each with the recipe ``plan_run`` gives it and the lab's fine-tuning budget;
- they run in order of cost, and a costlier one runs only while it could still win by the user's
  margin (once the best so far is within the margin of 100%, the rest are stopped before they start);
- scenario 4 (nothing frozen) cannot use the cache and alone would cost more than half the lab, so
  it is not trained: its accuracy is extrapolated from the measured ones, along the share of the
  network each one trains (a least-squares line through 3 points). It is picked only when that
  prediction beats the best measured scenario by the margin, and the advice says it is a prediction.

Every candidate's validation predictions are kept image by image, for paired comparisons.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch
from torch import nn

from .backbones import BackboneSpec
from .config import TrainConfig
from .data import Item
from .distributed import to_channels_last
from .features import extract_features
from .freezing import SCENARIOS
from .model import TransferModel, build_head
from .recipe import Plan, plan_run
from .stages import finetune_recipe


@dataclass(frozen=True)
class RaceSettings:
    """The race's budget: the lab's fine-tuning epochs, and the runs' split seed."""

    epochs: int = 5
    seed: int = 0


@dataclass
class RaceData:
    """The sample, its labels, and its cached activations at the freeze ``boundary``."""

    train: list[Item]
    holdout: list[Item]
    boundary: int
    acts: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    extract_seconds: float


def race_split(data: str, settings: RaceSettings) -> tuple[list[Item], list[Item]]:
    """The training and validation images a run on ``data`` would get (same split, same seed); the
    test images are never looked at."""
    from .data import scan_folder, validate
    from .splits import make_split

    cfg = TrainConfig(data=data, seed=settings.seed)
    split = make_split(validate(scan_folder(data))[1], cfg.val_fraction, cfg.test_fraction, cfg.seed)
    return split["train"], split["val"]


def race_plans(param_counts: list[int], n_train: int, settings: RaceSettings) -> dict[int, Plan]:
    """Each scenario's recipe (from ``plan_run``, the one owner) with the race's fine-tuning budget."""
    return {k: plan_run(TrainConfig(data="", scenario=k, epochs=None if k == 1 else settings.epochs),
                        param_counts, n_train) for k in sorted(SCENARIOS)}


def prepare(model: TransferModel, spec: BackboneSpec, train: list[Item], holdout: list[Item],
            boundary: int) -> RaceData:
    """One forward pass over the sample, cached at ``boundary`` (fp16, like the training cache)."""
    t0 = time.perf_counter()
    acts = {part: extract_features(model, items, spec, frozen_groups=boundary)
            for part, items in (("train", train), ("holdout", holdout))}
    labels = {part: torch.tensor([it.label for it in items], dtype=torch.long)
              for part, items in (("train", train), ("holdout", holdout))}
    return RaceData(train, holdout, boundary, acts, labels, time.perf_counter() - t0)


def _fit(model: TransferModel, forward, opt, sched, x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int,
         channels_last: bool, batch_size: int = 32) -> None:
    loss_fn = nn.CrossEntropyLoss(label_smoothing=TrainConfig.label_smoothing)
    gen = torch.Generator().manual_seed(seed)
    for _epoch in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            loss = loss_fn(forward(to_channels_last(x[idx].float(), channels_last)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()


@torch.inference_mode()
def _predict(model: TransferModel, forward, x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    model.eval()
    return torch.cat([forward(to_channels_last(c.float(), channels_last)).argmax(1) for c in x.split(64)])


@torch.inference_mode()
def _advance(model: TransferModel, data: RaceData, frozen_groups: int, channels_last: bool) -> dict[str, torch.Tensor]:
    """The cached activations carried through the frozen groups between the cache's boundary and
    ``frozen_groups``, once, so the fine-tuning epochs run only the trainable groups (fp16, as cached)."""
    if frozen_groups == data.boundary:
        return data.acts
    model.eval()
    return {part: torch.cat([model.forward_body(to_channels_last(c.float(), channels_last), data.boundary,
                                                frozen_groups).half() for c in a.split(64)])
            for part, a in data.acts.items()}


def train_candidate(base: TransferModel, spec: BackboneSpec, plan: Plan, data: RaceData, n_classes: int,
                    seed: int) -> dict:
    """Train one cached scenario as ``plan`` says (head warm-up on pooled features, then the unfrozen
    groups on the cached activations); returns its validation predictions and seconds."""
    t0 = time.perf_counter()
    cl = spec.channels_last
    model = copy.deepcopy(base)
    torch.manual_seed(seed)
    model.head = build_head(model.feature_dim, n_classes, TrainConfig.head_hidden, TrainConfig.dropout)
    model.freeze_to(plan.total_groups)
    with torch.inference_mode():
        pooled = {p: torch.cat([model.forward_pooled(to_channels_last(c.float(), cl), data.boundary)
                                for c in a.split(64)]) for p, a in data.acts.items()}
    head_epochs = plan.epochs if plan.head_only else plan.head_epochs
    cfg = TrainConfig(data="", seed=seed)
    opt = torch.optim.AdamW(model.head.parameters(), lr=plan.head_lr, weight_decay=cfg.weight_decay)
    _fit(model, model.forward_head, opt, None, pooled["train"], data.labels["train"], head_epochs, seed, False)
    if plan.head_only:
        pred = _predict(model, model.forward_head, pooled["holdout"], False)
    else:
        model.freeze_to(plan.frozen_groups)
        model.bn_stats_frozen = cfg.bn_stats == "frozen"
        acts = _advance(model, data, plan.frozen_groups, cl)

        def forward(a):
            return model.forward_from(a, plan.frozen_groups)

        opt, sched = finetune_recipe(model, plan, cfg, -(-len(data.train) // cfg.batch_size))
        _fit(model, forward, opt, sched, acts["train"], data.labels["train"], plan.epochs, seed + 1, cl,
             batch_size=cfg.batch_size)  # the steps per epoch the one-cycle schedule was sized for
        pred = _predict(model, forward, acts["holdout"], cl)
    right = pred == data.labels["holdout"]
    return {"scenario": plan.scenario, "correct": int(right.sum()), "n": len(right),
            "accuracy": round(float(right.float().mean()), 4), "seconds": round(time.perf_counter() - t0, 1),
            "wrong": sorted(it.path for it, ok in zip(data.holdout, right.tolist()) if not ok)}


def worth_racing(done: list[dict], margin: float) -> bool:
    """Race the next, costlier scenario only if it could still win by ``margin`` accuracy points:
    when the best so far is within ``margin`` of 100% on the holdout, nothing costlier can be
    worth its time, and it is not trained."""
    if not done:
        return True
    return 100 * (1 - max(d["accuracy"] for d in done)) >= margin


def extrapolate(done: list[dict], share: float) -> float | None:
    """Accuracy at trainable ``share`` from a least-squares line through the measured candidates'
    (trainable share, accuracy); None with fewer than 3 points. Capped at 100%."""
    if len(done) < 3:
        return None
    xs, ys = [d["trainable_share"] for d in done], [d["accuracy"] for d in done]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var
    return round(min(1.0, my + slope * (share - mx)), 4)


def run_race(model: TransferModel, spec: BackboneSpec, data_path: str, n_classes: int,
             settings: RaceSettings = RaceSettings(), margin: float = 1.0) -> dict:
    """Race the cached scenarios on ``data_path``'s split and predict the uncached ones;
    ``model`` is the pretrained ``TransferModel``.

    Returns:
        ``{"candidates": [...], "predicted": [{"scenario", "accuracy", "trainable_share"}],
        "stopped": [...], "sample": {...}, "seconds", "images_per_second"}``; each candidate has its
        validation accuracy, counts, seconds, trainable share and the paths it got wrong.
    """
    t0 = time.perf_counter()
    train, holdout = race_split(data_path, settings)
    plans = race_plans(model.group_param_counts(), len(train), settings)
    order = sorted(plans, key=lambda k: -plans[k].frozen_groups)  # freezing less costs more
    boundary = min(p.frozen_groups for p in plans.values() if p.frozen_groups > 0)
    data = prepare(model, spec, train, holdout, boundary)
    done: list[dict] = []
    for k in (k for k in order if plans[k].frozen_groups >= boundary):
        if not worth_racing(done, margin):
            break
        result = train_candidate(model, spec, plans[k], data, n_classes, settings.seed)
        done.append({**result, "trainable_share": round(1 - plans[k].frozen_share, 4)})
    predicted = [{"scenario": k, "trainable_share": round(1 - plans[k].frozen_share, 4),
                  "accuracy": extrapolate(done, 1 - plans[k].frozen_share)}
                 for k in order if plans[k].frozen_groups < boundary]
    predicted = [p for p in predicted if p["accuracy"] is not None]
    raced = {d["scenario"] for d in done} | {p["scenario"] for p in predicted}
    return {"candidates": done, "predicted": predicted, "stopped": [k for k in order if k not in raced],
            "sample": {"train": len(train), "holdout": len(holdout), "epochs": settings.epochs,
                       "boundary_groups": boundary},
            "images_per_second": round((len(train) + len(holdout)) / max(data.extract_seconds, 1e-6), 1),
            "seconds": round(time.perf_counter() - t0, 1)}
