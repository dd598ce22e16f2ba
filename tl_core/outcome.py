"""Outcome first: after training, one sentence says whether the result is good for this data
(with the test count), then at most three next steps the app can apply.

Pure and torch-free: the pages lay the result out (a button or a link per step); this module
chooses. Every step is something the app really does (open a page, train again with one setting
changed); nothing here names a setting the app lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import TrainConfig
from .diagnose import diagnose
from .i18n import _

GOOD = 0.9  # test accuracy that is good enough to show a class
FAIR = 0.7  # usable, with mistakes a class will notice
MAX_STEPS = 3
MAX_EPOCHS = 500  # the Model page's limit


@dataclass(frozen=True)
class Step:
    """One next step. ``action``: "predict" (open Predict), "mistakes" (look at the wrong answers),
    "scenario" (train again with scenario ``value``), "epochs" (train again with ``value`` epochs),
    "augment" (train again with light augmentation). ``label`` is in the current language."""

    action: str
    label: str
    value: int | None = None

    @property
    def retrains(self) -> bool:
        return self.action in ("scenario", "epochs", "augment")


@dataclass(frozen=True)
class Outcome:
    level: str  # "good", "fair" or "poor"
    sentence: str
    steps: tuple[Step, ...]


def _still_rising(records: list[dict]) -> bool:
    vals = [r["val_acc"] for r in records if r.get("kind") == "epoch" and r.get("val_acc") is not None]
    return len(vals) >= 3 and vals[-1] > vals[-3] + 0.005


def outcome(test: dict | None, records: list[dict], cfg: dict, measured_scenario: int | None = None) -> Outcome | None:
    """The verdict on a finished run and its next steps.

    Args:
        test: the ``test`` part of ``eval.json`` (``n``, ``accuracy``, ``misclassified``); None when
            the run has no test images.
        records: the run's ``metrics.jsonl`` records (the curves decide "more epochs" and "augment").
        cfg: the run's resolved ``config.json``.
        measured_scenario: the scenario the measurement on the Data page advised, if any.

    Returns:
        None when there is no test score to judge.
    """
    if not test or not test.get("n") or test.get("accuracy") is None:
        return None
    n, acc = test["n"], test["accuracy"]
    right = round(acc * n)
    count = dict(right=right, n=n, pct=acc)
    if acc >= GOOD:
        level, sentence = "good", _("Good for this data: {right} of {n} test photos right ({pct:.0%}).", **count)
    elif acc >= FAIR:
        level, sentence = "fair", _("Usable, with mistakes: {right} of {n} test photos right ({pct:.0%}).", **count)
    else:
        level, sentence = "poor", _("Not good enough yet: only {right} of {n} test photos right ({pct:.0%}).", **count)
    return Outcome(level, sentence, tuple(_steps(level, test, records, cfg, measured_scenario)[:MAX_STEPS]))


def _steps(level: str, test: dict, records: list[dict], cfg: dict, measured: int | None) -> list[Step]:
    mistakes = len(test.get("misclassified") or [])
    see = Step("mistakes", _("See the {n} mistakes", n=mistakes)) if mistakes else None
    if level == "good":
        return [s for s in (Step("predict", _("Try it on new photos")), see) if s]
    steps = []
    if measured and measured != cfg.get("scenario"):
        steps.append(Step("scenario", _("Train again with scenario {n} (the measured one)", n=measured), measured))
    verdict = diagnose(records)["verdict"]
    epochs = cfg.get("epochs") or 0
    if (verdict == "underfitting" or _still_rising(records)) and 0 < epochs < MAX_EPOCHS:
        more = min(MAX_EPOCHS, 2 * epochs)
        steps.append(Step("epochs", _("Train again with {n} epochs instead of {old}", n=more, old=epochs), more))
    if verdict == "overfitting" and (cfg.get("augment") or "none") == "none":
        steps.append(Step("augment", _("Train again with light augmentation"), None))
    if see:
        steps.append(see)
    if level == "fair":
        steps.append(Step("predict", _("Try it on new photos")))
    return steps


def retrain_config(cfg: TrainConfig, step: Step) -> TrainConfig:
    """The run's settings with the one change ``step`` asks for (what its button launches)."""
    if step.action == "scenario":  # the new scenario plans its own freeze, epochs and rates
        return cfg.replace(scenario=step.value, frozen_groups=None, frozen_fraction=None, epochs=None,
                           head_epochs=None, lr_ratio=None)
    if step.action == "epochs":
        return cfg.replace(epochs=step.value)
    if step.action == "augment":  # epochs re-planned: a head on images gets a few, not the cached hundred
        return cfg.replace(augment="light", epochs=None)
    raise ValueError(f"step {step.action!r} does not train again")
