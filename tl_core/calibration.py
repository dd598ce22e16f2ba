"""Honest confidence: temperature scaling fitted on a run's validation split, the expected
calibration error (ECE) before and after, and a "not sure" threshold.

One number ``T`` divides the logits (Guo et al. 2017, "On calibration of modern neural networks"):
the predicted class never changes, only how sure the model says it is. The threshold is chosen on
the calibrated validation probabilities so that 95% of the correct answers are still given;
below it, Predict says "not sure" instead of a class. Everything lands in ``calibration.json``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .i18n import N_

CALIBRATION_FILE = "calibration.json"
BINS = 10
KEEP_CORRECT = 0.95  # share of correct validation answers that stay above the default threshold
MIN_MISTAKES = 3  # with fewer wrong validation answers, a fitted temperature may only soften, never sharpen
NOT_SURE = N_("not sure")


def fit_temperature(probs: torch.Tensor, labels: list[int]) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` (log-probabilities
    serve as logits: softmax(log p / T) is temperature scaling of the original logits)."""
    logits, y = probs.float().clamp_min(1e-12).log(), torch.tensor(labels)
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(log_t.detach().exp().clamp(0.05, 20.0))
    # Without mistakes the likelihood keeps rising as T -> 0 (every answer "100% sure"): a handful of
    # correct validation photos is no evidence that the model should be surer than it says.
    mistakes = int((probs.argmax(1) != y).sum())
    return max(t, 1.0) if mistakes < MIN_MISTAKES else t


def apply_temperature(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Probabilities rescaled by ``temperature`` (T > 1: less sure, T < 1: surer)."""
    return torch.softmax(probs.float().clamp_min(1e-12).log() / temperature, dim=1)


def reliability(probs: torch.Tensor, labels: list[int], bins: int = BINS) -> list[dict]:
    """Per confidence bin: ``{"lo", "hi", "n", "confidence", "accuracy"}`` (empty bins included, n=0)."""
    conf, pred = probs.max(1)
    correct = (pred == torch.tensor(labels)).float()
    rows = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        n = int(inside.sum())
        rows.append({"lo": lo, "hi": hi, "n": n, "confidence": round(float(conf[inside].mean()), 4) if n else None,
                     "accuracy": round(float(correct[inside].mean()), 4) if n else None})
    return rows


def ece(probs: torch.Tensor, labels: list[int], bins: int = BINS) -> float:
    """Expected calibration error: the count-weighted gap between confidence and accuracy per bin."""
    rows = reliability(probs, labels, bins)
    total = sum(r["n"] for r in rows)
    return sum(r["n"] * abs(r["confidence"] - r["accuracy"]) for r in rows if r["n"]) / max(total, 1)


def default_threshold(probs: torch.Tensor, labels: list[int], keep: float = KEEP_CORRECT) -> float:
    """The top probability that ``keep`` of the correct answers reach (never below chance)."""
    conf, pred = probs.max(1)
    right = conf[pred == torch.tensor(labels)]
    chance = 1.0 / probs.shape[1]
    if len(right) == 0:
        return chance
    # Rounded down: rounding up could lift the threshold above the answers it is meant to keep.
    return math.floor(max(chance, float(torch.quantile(right, 1 - keep))) * 10_000) / 10_000


def calibrate(parts: dict[str, tuple[list[int], torch.Tensor]]) -> dict:
    """Fit on ``parts["val"]`` (labels, probabilities) and report every part before and after.

    Returns:
        ``{"temperature", "threshold", "fitted_on", "parts": {part: {"n", "ece_before", "ece_after",
        "not_sure_share", "reliability_before", "reliability_after"}}}``.
    """
    labels, probs = parts["val"]
    t = fit_temperature(probs, labels)
    threshold = default_threshold(apply_temperature(probs, t), labels)
    out = {"temperature": round(t, 4), "threshold": threshold, "fitted_on": "val", "parts": {}}
    for part, (y, p) in parts.items():
        after = apply_temperature(p, t)
        out["parts"][part] = {
            "n": len(y), "ece_before": round(ece(p, y), 4), "ece_after": round(ece(after, y), 4),
            "not_sure_share": round(float((after.max(1).values < threshold).float().mean()), 4),
            "reliability_before": reliability(p, y), "reliability_after": reliability(after, y)}
    return out


def calibrate_run(run_dir: str | Path) -> dict:
    """Calibrate a finished run from its best checkpoint (val and test images), write and return
    ``calibration.json``."""
    from .backbones import get_backbone
    from .errors import RunError
    from .evaluate import predict_probs
    from .i18n import _
    from .predict import Predictor
    from .runs import RunDir, read_json, write_json_atomic
    from .splits import split_from_json

    run = RunDir.open(run_dir)
    split = split_from_json(read_json(run.split_file, {}))
    if len(split["val"]) < 2:
        raise RunError(_("run {id} has no validation images to calibrate on", id=run.id))
    predictor = Predictor.from_run(run.path)
    spec = get_backbone(read_json(run.config_file)["backbone"])
    parts = {part: ([it.label for it in split[part]], predict_probs(predictor, split[part], spec))
             for part in ("val", "test") if split[part]}
    result = calibrate(parts)
    write_json_atomic(run.path / CALIBRATION_FILE, result)
    return result


def load_calibration(run_dir: str | Path) -> dict | None:
    """The run's ``calibration.json`` (None when it was never calibrated)."""
    from .runs import read_json

    return read_json(Path(run_dir) / CALIBRATION_FILE)


def verdict(top: list[dict], threshold: float) -> str | None:
    """The label to announce for calibrated top-k ``top``, or None when it is below ``threshold``."""
    return top[0]["label"] if top and top[0]["prob"] >= threshold else None
