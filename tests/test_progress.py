"""The run's one progress bar: phases weighted by their expected cost."""

from tl_core.config import TrainConfig
from tl_core.progress import eta_seconds, meaningful_speed, run_budget
from tl_core.recipe import plan_run


def test_a_cached_head_is_almost_all_feature_extraction():
    plan = plan_run(TrainConfig(data="d", scenario=1), [10] * 4, 140)
    b = run_budget(plan, 140, 30, 200, [1.0] * plan.total_groups)
    assert [name for name, _w in b.phases] == ["features", "head"]
    assert b.at("features", 1.0) > 0.8 and b.at("head", 1.0) == 1.0


def test_fine_tuning_phases_follow_each_other_without_going_back():
    plan = plan_run(TrainConfig(data="d", scenario=3), [10] * 6, 140)
    b = run_budget(plan, 140, 30, 200, [1.0] * plan.total_groups)
    assert [name for name, _w in b.phases] == ["features", "head", "prefix", "finetune"]
    points = [b.at(p, f) for p in ("features", "head", "prefix", "finetune") for f in (0, 0.5, 1)]
    assert points == sorted(points) and points[-1] == 1.0
    assert b.at("finetune", 0.0) < 0.5  # the fine-tuning epochs are most of the work


def test_speed_and_eta_only_when_they_mean_something():
    assert meaningful_speed(17333.0, 0.2) is None and meaningful_speed(106.04, 5) == 106.0
    assert eta_seconds(0.01, 10) is None and eta_seconds(0.5, 20) == 20.0


def test_a_layer_group_costs_its_operations_not_its_parameters():
    """The early groups of a CNN hold few parameters and most of the operations: the time a run
    needs follows the operations (the lab measured scenario 4 at 2.9x scenario 3's time on sign
    digits, where the parameter shares said 1.6x)."""
    from tl_core.backbones import group_table

    _names, params, flops = group_table("efficientnet_lite0")
    assert len(flops) == len(params) and all(f > 0 for f in flops[:-1])
    assert flops[0] / sum(flops) > 5 * params[0] / sum(params)  # the stem: ~0% of parameters, a large share of work
    n_all, n_train, n_val = 2062, 1443, 309
    s3 = run_budget(plan_run(TrainConfig(data="d", scenario=3, epochs=5), params, n_train), n_train, n_val, n_all,
                    flops).total
    s4 = run_budget(plan_run(TrainConfig(data="d", scenario=4, epochs=5), params, n_train), n_train, n_val, n_all,
                    flops).total
    assert 2.2 < s4 / s3 < 4.0
