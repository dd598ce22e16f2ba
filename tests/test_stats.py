"""Intervals and paired comparisons, checked against values computed by hand / published tables."""

import pytest

from tl_core.stats import mcnemar_p, paired, wilson


def test_wilson_interval_matches_the_formula_and_stays_inside_0_1():
    lo, hi = wilson(27, 30)  # 90% of 30: Wilson 95% interval 74.4% .. 96.5%
    assert lo == pytest.approx(0.7438, abs=1e-3) and hi == pytest.approx(0.9654, abs=1e-3)
    lo, hi = wilson(30, 30)  # all right: the interval is not the point 100%
    assert hi == 1.0 and lo == pytest.approx(0.8865, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    wide, narrow = wilson(90, 100), wilson(900, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]  # more images, a tighter interval


def test_exact_mcnemar_p_values():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(5, 0) == pytest.approx(2 / 32)  # 0.0625: five images to none is not yet enough
    assert mcnemar_p(6, 0) == pytest.approx(2 / 64)  # 0.03125
    assert mcnemar_p(3, 5) == mcnemar_p(5, 3) == pytest.approx(0.7265625)
    assert mcnemar_p(10, 10) == 1.0


def test_paired_comparison_counts_only_the_images_where_the_runs_disagree():
    # Same total (2 wrong each) but different images: no measurable difference.
    assert paired({"a", "b"}, {"c", "d"}) == {"only_a_right": 2, "only_b_right": 2, "p": 1.0, "measurable": False}
    # B gets seven more images right and none fewer: measurable.
    result = paired([f"x{i}" for i in range(7)], [])
    assert result["only_b_right"] == 7 and result["only_a_right"] == 0 and result["measurable"]
