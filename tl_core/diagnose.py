"""Read a run's curves like a teacher would: underfitting, overfitting or a good fit, with the
method's advice, and a one-line summary for people who cannot read plots."""

from __future__ import annotations

from .i18n import N_, _
from .runs import stage_label

UNDERFIT_ACC = 0.8
OVERFIT_GAP = 0.1


def summarize(records: list[dict]) -> str:
    """One line: best validation accuracy and when, training accuracy, trend of the last epochs."""
    epochs = [r for r in records if r.get("kind") == "epoch" and r.get("val_acc") is not None]
    if not epochs:
        return _("No finished epoch yet.")
    # the checkpoint's rule (engine.score): accuracy, then lower loss; the earliest of equals
    best_i = max(range(len(epochs)), key=lambda i: (epochs[i]["val_acc"], -epochs[i].get("val_loss", 0), -i))
    best, last = epochs[best_i], epochs[-1]
    tail = [r["val_acc"] for r in epochs[-3:]]
    trend = (_("rising") if tail[-1] > tail[0] + 0.005 else _("falling") if tail[-1] < tail[0] - 0.005 else _("flat"))
    return _("Best validation accuracy {best:.1%} at epoch {epoch} of {epochs} ({stage}); last epoch: training "
             "{train:.1%}, validation {val:.1%}, {trend} over the last {n} epochs.", best=best["val_acc"],
             epoch=best_i + 1, epochs=len(epochs), stage=stage_label(best["stage"]), train=last["train_acc"], val=last["val_acc"],
             trend=trend, n=len(tail))


def diagnose(records: list[dict]) -> dict:
    """``{"verdict", "why", "advice": [...]}`` from the epoch records of the run's last stage.

    ``verdict`` is a fixed English word (translate it with ``_`` where shown); ``why`` and
    ``advice`` are in the current language."""
    epochs = [r for r in records if r.get("kind") == "epoch" and r.get("val_acc") is not None]
    if epochs:
        epochs = [r for r in epochs if r["stage"] == epochs[-1]["stage"]]
    if len(epochs) < 3:
        return {"verdict": N_("too early"), "why": _("fewer than 3 epochs to judge from"), "advice": []}
    last = epochs[-1]
    best_loss_i = min(range(len(epochs)), key=lambda i: epochs[i]["val_loss"])
    gap = last["train_acc"] - last["val_acc"]
    if last["train_acc"] < UNDERFIT_ACC:
        return {"verdict": N_("underfitting"),
                "why": _("even on its training images the model is only {acc:.0%} right", acc=last["train_acc"]),
                "advice": [_("train for more epochs"),
                           _("freeze less of the pretrained network (a scenario with more fine-tuning)"),
                           _("give the head more hidden units"), _("raise the learning rate a little")]}
    rising = best_loss_i <= len(epochs) - 4 and last["val_loss"] > epochs[best_loss_i]["val_loss"] * 1.1
    if gap > OVERFIT_GAP or rising:
        why = (_("training accuracy {acc:.0%} is {gap:.0f} points above validation accuracy {val:.0%}",
                 acc=last["train_acc"], gap=100 * gap, val=last["val_acc"])
               if gap > OVERFIT_GAP else _("validation loss has risen since epoch {n}", n=best_loss_i + 1))
        return {"verdict": N_("overfitting"), "why": why,
                "advice": [_("freeze more of the pretrained network"), _("turn on augmentation"),
                           _("use fewer hidden units in the head"), _("collect more images per class"),
                           _("lower the learning rate or stop earlier (the best epoch is kept anyway)")]}
    return {"verdict": N_("good fit"),
            "why": _("training {train:.0%} and validation {val:.0%} are close and high", train=last["train_acc"],
                     val=last["val_acc"]),
            "advice": []}


def overall_epoch(records: list[dict], stage: str, epoch: int) -> int:
    """``epoch`` of ``stage`` counted over the whole run (fine-tuning continues after the head
    epochs), the numbering of the curves, the summary line, Evaluate and Runs."""
    head = sum(1 for r in records if r.get("kind") == "epoch" and r.get("stage") == "head")
    return epoch + (head if stage == "finetune" else 0)


def epochs_total(records: list[dict]) -> int:
    return sum(1 for r in records if r.get("kind") == "epoch")
