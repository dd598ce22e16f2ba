"""Read a run's curves like a teacher would: underfitting, overfitting or a good fit, with the
method's advice, and a one-line summary for people who cannot read plots."""

from __future__ import annotations

UNDERFIT_ACC = 0.8
OVERFIT_GAP = 0.1


def summarize(records: list[dict]) -> str:
    """One line: best validation accuracy and when, training accuracy, trend of the last epochs."""
    epochs = [r for r in records if r.get("kind") == "epoch" and r.get("val_acc") is not None]
    if not epochs:
        return "No finished epoch yet."
    best_i = max(range(len(epochs)), key=lambda i: (epochs[i]["val_acc"], -i))
    best, last = epochs[best_i], epochs[-1]
    tail = [r["val_acc"] for r in epochs[-3:]]
    trend = ("rising" if tail[-1] > tail[0] + 0.005 else "falling" if tail[-1] < tail[0] - 0.005 else "flat")
    return (f"Best validation accuracy {best['val_acc']:.1%} at epoch {best_i + 1} of {len(epochs)} "
            f"({best['stage']} stage); last epoch: training {last['train_acc']:.1%}, validation "
            f"{last['val_acc']:.1%}, {trend} over the last {len(tail)} epochs.")


def diagnose(records: list[dict]) -> dict:
    """``{"verdict", "why", "advice": [...]}`` from the epoch records of the run's last stage."""
    epochs = [r for r in records if r.get("kind") == "epoch" and r.get("val_acc") is not None]
    if epochs:
        epochs = [r for r in epochs if r["stage"] == epochs[-1]["stage"]]
    if len(epochs) < 3:
        return {"verdict": "too early", "why": "fewer than 3 epochs to judge from", "advice": []}
    last = epochs[-1]
    best_loss_i = min(range(len(epochs)), key=lambda i: epochs[i]["val_loss"])
    gap = last["train_acc"] - last["val_acc"]
    if last["train_acc"] < UNDERFIT_ACC:
        return {"verdict": "underfitting",
                "why": f"even on its training images the model is only {last['train_acc']:.0%} right",
                "advice": ["train for more epochs", "freeze less of the pretrained network (a scenario with more "
                           "fine-tuning)", "give the head more hidden units", "raise the learning rate a little"]}
    rising = best_loss_i <= len(epochs) - 4 and last["val_loss"] > epochs[best_loss_i]["val_loss"] * 1.1
    if gap > OVERFIT_GAP or rising:
        why = (f"training accuracy {last['train_acc']:.0%} is {gap:.0%} above validation accuracy"
               if gap > OVERFIT_GAP else f"validation loss has risen since epoch {best_loss_i + 1}")
        return {"verdict": "overfitting", "why": why,
                "advice": ["freeze more of the pretrained network", "turn on augmentation",
                           "use fewer head units or more dropout", "collect more images per class",
                           "lower the learning rate or stop earlier (the best epoch is kept anyway)"]}
    return {"verdict": "good fit",
            "why": f"training {last['train_acc']:.0%} and validation {last['val_acc']:.0%} are close and high",
            "advice": []}
