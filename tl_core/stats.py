"""How sure an accuracy is: Wilson intervals and paired comparisons on the same test images.

On 300 test images one accuracy point is 3 images, and two runs that differ by a point may differ
by chance alone. Every accuracy the app compares carries a 95% interval, and two runs evaluated on
the same images are compared image by image (an exact McNemar test), not by their totals. Pure
Python, torch-free.
"""

from __future__ import annotations

import math

Z95 = 1.959964  # two-sided 95%
ALPHA = 0.05


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval of an accuracy of ``correct`` out of ``n`` (good at 0%, 100% and
    small ``n``, where the textbook ±1.96·SE interval leaves [0, 1] or collapses to a point)."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def interval_text(accuracy: float, n: int) -> str:
    """"74-97%": the 95% interval of ``accuracy`` measured on ``n`` images, for tables and captions."""
    lo, hi = wilson(round(accuracy * n), n)
    return f"{lo:.0%}-{hi:.0%}"


def mcnemar_p(only_a_right: int, only_b_right: int) -> float:
    """Exact two-sided McNemar p-value: under "no difference" the images one run gets right and the
    other wrong split 50/50 between the two runs (a binomial test on the discordant pairs)."""
    n, k = only_a_right + only_b_right, min(only_a_right, only_b_right)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def paired(wrong_a: set[str] | list[str], wrong_b: set[str] | list[str]) -> dict:
    """Compare two runs on the same test images from the images each got wrong: how many only A got
    right, how many only B got right, the p-value and whether the difference is measurable."""
    wrong_a, wrong_b = set(wrong_a), set(wrong_b)
    only_a, only_b = len(wrong_b - wrong_a), len(wrong_a - wrong_b)
    p = mcnemar_p(only_a, only_b)
    return {"only_a_right": only_a, "only_b_right": only_b, "p": p, "measurable": p < ALPHA}
