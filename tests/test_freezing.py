"""Scenarios, freeze plans on layer groups, frozen BatchNorm, discriminative learning rates."""

from __future__ import annotations

import pytest
import torch

from tl_core.backbones import get_backbone, group_table
from tl_core.errors import ConfigError
from tl_core.config import TrainConfig
from tl_core.freezing import discriminative_lrs, param_groups, plan_freeze, scenario_for
from tl_core.recipe import plan_run
from tl_core.model import build_model


@pytest.fixture(scope="module")
def lite0():
    return build_model(get_backbone("efficientnet_lite0"), num_classes=4, pretrained=False)


def plan(scenario: int, counts) -> object:
    return plan_run(TrainConfig(data="", scenario=scenario), counts, n_train=100)


def test_the_two_answers_map_to_the_four_cells():
    assert scenario_for("small", "similar").number == 1
    assert scenario_for("large", "similar").number == 2
    assert scenario_for("small", "different").number == 3
    assert scenario_for("large", "different").number == 4
    a = scenario_for("small", "similar")
    assert a.way == "feature_extractor" and len(a.reason) > 100
    assert scenario_for("large", "different").way == "fine_tune"
    with pytest.raises(ConfigError, match="size must be"):
        scenario_for("medium", "similar")


def test_plan_freeze_picks_closest_prefix():
    counts = [10, 10, 30, 50]  # cumulative shares 0, .1, .2, .5, 1
    assert plan_freeze(counts, 1.0) == 4
    assert plan_freeze(counts, 0.0) == 0
    assert plan_freeze(counts, 0.45) == 3
    assert plan_freeze(counts, 0.12) == 1
    with pytest.raises(ConfigError):
        plan_freeze(counts, 1.5)


@pytest.mark.parametrize("scenario,lo,hi", [(1, 1.0, 1.0), (2, 0.6, 0.8), (3, 0.33, 0.5), (4, 0.0, 0.0)])
def test_trainable_parameters_per_scenario(lite0, scenario, lo, hi):
    counts = lite0.group_param_counts()
    advice = plan(scenario, counts)
    assert lo <= advice.frozen_share <= hi and advice.way == ("feature_extractor" if scenario == 1 else "fine_tune")
    lite0.freeze_to(advice.frozen_groups)
    body = sum(counts)
    head = sum(p.numel() for p in lite0.head.parameters())
    assert lite0.trainable_params() == head + sum(counts[advice.frozen_groups:])
    assert sum(counts[:advice.frozen_groups]) / body == pytest.approx(advice.frozen_share, abs=1e-4)
    if scenario == 1:
        assert lite0.trainable_params() == head
    if scenario == 4:
        assert lite0.trainable_params() == body + head


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "resnet50", "convnext_tiny", "mobilenet_v3_large"])
def test_scenario_shares_on_other_backbones(name):
    counts = list(group_table(name)[1])
    early = plan(3, counts).frozen_share
    most = plan(2, counts).frozen_share
    if name == "resnet18":
        # Its last two blocks hold 42% of the parameters each: the whole-block shares near the
        # targets are 25% and 58%, and the plan takes the closest one.
        assert (early, most) == (pytest.approx(0.249, abs=1e-3), pytest.approx(0.5776, abs=1e-3))
    else:
        assert 0.3 <= early <= 0.5 and 0.6 <= most <= 0.8


def test_frozen_batchnorm_stays_in_eval_and_keeps_statistics(lite0):
    lite0.freeze_to(10)
    lite0.train()
    frozen = [m for g in list(lite0.body)[:10] for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    trainable = [m for g in list(lite0.body)[10:] for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert frozen and trainable
    assert all(not m.training for m in frozen)
    assert all(m.training for m in trainable)
    before = frozen[0].running_mean.clone()
    lite0(torch.randn(4, 3, 64, 64) * 3 + 1)
    assert torch.equal(frozen[0].running_mean, before)
    assert all(not p.requires_grad for g in list(lite0.body)[:10] for p in g.parameters())


def test_discriminative_learning_rates(lite0):
    lrs = discriminative_lrs(n_groups=10, n_frozen=4, head_lr=1e-3, lr_ratio=100)
    assert len(lrs) == 6
    assert lrs[0] == pytest.approx(1e-5) and lrs[-1] == pytest.approx(1e-4)  # /100 and /sqrt(100)
    assert all(a < b for a, b in zip(lrs, lrs[1:]))
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert max(ratios) == pytest.approx(min(ratios))  # geometric
    lite0.freeze_to(12)
    groups = param_groups(lite0, discriminative_lrs(18, 12, 1e-3, 100), head_lr=1e-3)
    assert groups[-1]["name"] == "head" and groups[-1]["lr"] == 1e-3
    assert [g["name"] for g in groups[:-1]] == lite0.group_names[12:]
    assert groups[0]["lr"] == pytest.approx(1e-5)
    assert all(p.requires_grad for g in groups for p in g["params"])
    n_params = sum(p.numel() for g in groups for p in g["params"])
    assert n_params == lite0.trainable_params()
