"""Measured reference runs: the method's two projects trained with each EfficientNet-Lite size.

The Model page shows these so that a user sees what a bigger network buys (accuracy) and costs
(time) on real data, before choosing one. ``docs/RESULTS.md`` has the commands and the conditions.
"""

from __future__ import annotations

from dataclasses import dataclass

from .i18n import N_

PROJECTS = {
    "dogs_vs_cats": N_("dogs vs cats, frozen features + head (scenario 1; 2000 training, 1000 test photos)"),
    "sign_digits": N_("sign-language digits, partly fine-tuned (scenario 3; 2062 photos, 310 for the test)"),
}


@dataclass(frozen=True)
class ReferenceRun:
    """One ``python -m tl_core train`` run on the reference machine (2 CPU cores, empty feature cache).

    Attributes:
        backbone: registry name.
        project: key of ``PROJECTS``.
        scenario: the scenario it was trained with.
        test_accuracy: accuracy on the held-out test photos.
        seconds: wall time of the whole run.
        images: photos the run read (train, validation and test).
    """

    backbone: str
    project: str
    scenario: int
    test_accuracy: float
    seconds: float
    images: int

    @property
    def images_per_s(self) -> float:
        """Photos of the data set per second of the whole run."""
        return self.images / self.seconds


# docs/RESULTS.md, "EfficientNet-Lite0, 1 and 2 on the two projects": per project, one pass of the
# three sizes, one run at a time.
REFERENCE_RUNS: tuple[ReferenceRun, ...] = (
    ReferenceRun("efficientnet_lite0", "dogs_vs_cats", 1, 0.994, 51.6, 3000),
    ReferenceRun("efficientnet_lite1", "dogs_vs_cats", 1, 0.992, 66.8, 3000),
    ReferenceRun("efficientnet_lite2", "dogs_vs_cats", 1, 0.993, 84.7, 3000),
    ReferenceRun("efficientnet_lite0", "sign_digits", 3, 0.984, 717.8, 2062),
    ReferenceRun("efficientnet_lite1", "sign_digits", 3, 0.994, 950.9, 2062),
    ReferenceRun("efficientnet_lite2", "sign_digits", 3, 0.987, 1333.6, 2062),
)
# The sign-language runs shared the cores with other jobs; the page says so beside the numbers.
CONDITIONS = N_("On 2 CPU cores, feature cache empty. Dogs vs cats ran on a quiet machine; the sign-language runs "
                "shared the cores with other jobs (load 2-5), so their seconds are up to 5x a quiet machine's "
                "(lite0 took 246 s in a quieter run): compare them only with each other. Accuracy varies by about "
                "0.3 points between identical runs. images/s = photos of the data set per second of the whole run. "
                "Commands and details: docs/RESULTS.md.")


def reference_runs(backbone: str | None = None) -> list[ReferenceRun]:
    """The measured runs, project by project, smallest network first (only ``backbone``'s if given)."""
    order = list(PROJECTS)
    runs = [r for r in REFERENCE_RUNS if backbone in (None, r.backbone)]
    return sorted(runs, key=lambda r: (order.index(r.project), r.backbone))
