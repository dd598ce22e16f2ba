"""Saving and loading checkpoints. Files hold tensors and plain data only, so they load with
``torch.load(..., weights_only=True)``; nothing is ever unpickled."""

from __future__ import annotations

import errno
import io
import os
import random
import time
from pathlib import Path

import torch

from .engine import Callback, score
from .errors import RunError
from .i18n import _


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` to a temp file, then rename: a crash or a full disk never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    buf = io.BytesIO()
    torch.save(obj, buf)  # in memory first: a full disk then fails as a plain OSError, not torch's own error
    try:
        with open(tmp, "wb") as fh:
            fh.write(buf.getbuffer())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc):
            raise RunError(_("the disk is full: could not save {name} in {parent}. The previous checkpoint is intact; "
                             "free some space, then resume the run", name=path.name, parent=path.parent)) from None
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RunError(_("checkpoint not found: {path}", path=path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise RunError(_("cannot read checkpoint {path}: {exc}", path=path, exc=exc)) from None


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))


def _snapshot(module_or_optimizer) -> dict:
    """A deep copy of a state dict, so later training steps do not change what will be saved."""
    import copy

    return copy.deepcopy(module_or_optimizer.state_dict())


def _model_snapshot(model: torch.nn.Module) -> dict:
    """The model's state dict as it is now: what training can change (trainable parameters, every
    buffer) is copied; a frozen parameter cannot change during a fit and is shared. For a head-only
    epoch that is the head's size instead of the network's: copying the whole frozen network after
    every epoch cost more than the epoch. Flushed before the fit ends, so an unfreeze never sees it."""
    frozen = {name for name, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}
    return {k: v if k in frozen else v.clone() for k, v in model.state_dict().items()}


class Checkpointer(Callback):
    """``last.pt`` (everything needed to resume) and ``best.pt`` (best validation score so far).

    Snapshots are taken in memory after every epoch and written at most every ``min_interval``
    seconds, and always when the stage ends, stops or crashes: cached-feature epochs take
    milliseconds, and writing a whole network after each one would dominate the run. ``best`` is
    shared across stages so a worse fine-tune never replaces a better head-only model.
    """

    def __init__(self, run, meta: dict, best: tuple | None = None, min_interval: float = 2.0):
        self.run, self.meta, self.best = run, meta, best
        self.min_interval = min_interval
        self.pending: dict[str, dict] = {}
        self.last_write = time.monotonic()

    def on_epoch_end(self, trainer, record):
        model_state = _model_snapshot(trainer.model)
        s = score(record)
        if self.best is None or s > self.best:
            self.best = s
            self.pending["best"] = {**self.meta, "model": model_state, "epoch": trainer.epoch,
                                    "stage": trainer.stage, "val_acc": record.get("val_acc")}
        self.pending["last"] = {
            **self.meta, "model": model_state, "optimizer": _snapshot(trainer.optimizer),
            "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
            "epoch": trainer.epoch, "stage": trainer.stage, "step": trainer.step,
            "best": list(self.best), "rng": rng_state()}
        if time.monotonic() - self.last_write >= self.min_interval:
            self.flush()

    def on_fit_end(self, trainer):
        self.flush()

    def flush(self) -> None:
        # best first: a crash between the two writes leaves a resumable last.pt behind the best.
        for which in ("best", "last"):
            if which in self.pending:
                save_atomic(self.pending.pop(which), self.run.checkpoint(which))
        self.last_write = time.monotonic()
