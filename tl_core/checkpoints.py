"""Saving and loading checkpoints. Files hold tensors and plain data only, so they load with
``torch.load(..., weights_only=True)``; nothing is ever unpickled."""

from __future__ import annotations

import os
import random
from pathlib import Path

import torch

from .engine import Callback, score
from .errors import RunError


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` to a temp file, then rename: a crash or a full disk never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise RunError(f"cannot read checkpoint {path}: {exc}") from None


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))


class Checkpointer(Callback):
    """After each epoch: ``last.pt`` (everything needed to resume) and ``best.pt`` when the
    validation score improves. ``best`` is shared across stages so a worse fine-tune never
    replaces a better head-only model."""

    def __init__(self, run, meta: dict, best: tuple | None = None):
        self.run, self.meta, self.best = run, meta, best

    def on_epoch_end(self, trainer, record):
        state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        s = score(record)
        if self.best is None or s > self.best:
            self.best = s
            save_atomic({**self.meta, "model": state, "epoch": trainer.epoch, "stage": trainer.stage,
                         "val_acc": record.get("val_acc")}, self.run.checkpoint("best"))
        save_atomic({**self.meta, "model": state, "optimizer": trainer.optimizer.state_dict(),
                     "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
                     "epoch": trainer.epoch, "stage": trainer.stage, "step": trainer.step,
                     "best": list(self.best), "rng": rng_state()}, self.run.checkpoint("last"))
