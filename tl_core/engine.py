"""The fit loop. It emits events; logging, checkpoints, early stopping and the stop file are callbacks.

A callback stops training by raising ``CancelTraining`` (fastai's pattern); the loop finishes the
current bookkeeping and returns the reason.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable

import torch
from torch import nn

from .distributed import Dist, grad_scaler, to_channels_last
from .numerics import FP32, autocast
from .errors import CancelTraining


class Event(str, Enum):
    FIT_START = "on_fit_start"
    EPOCH_START = "on_epoch_start"
    BATCH_END = "on_batch_end"
    EPOCH_END = "on_epoch_end"
    FIT_END = "on_fit_end"


class Callback:
    """Override any ``on_*`` hook; each receives the ``Trainer`` (and the record for batch/epoch ends)."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, trainer: "Trainer") -> None: ...
    def on_batch_end(self, trainer: "Trainer", record: dict) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", record: dict) -> None: ...
    def on_fit_end(self, trainer: "Trainer") -> None: ...


@dataclass
class Trainer:
    """Trains ``model`` for ``epochs`` with batches of ``(inputs, labels, ...)``.

    Attributes:
        forward: maps an input batch to logits (``model`` for images, ``model.forward_head`` for
            cached features).
        train_forward: the same under DistributedDataParallel (gradients averaged over ranks);
            ``forward`` when training on one process.
        device: where batches go.
        precision: ``fp32``, or the autocast precision the run's numerics chose (bf16, fp16).
        dist: the process group (train metrics are summed over ranks).
        stage: a name written into every record ("head" or "finetune").
        start_epoch: epochs already done (when resuming).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    train_batches: Callable[[int], Iterable]
    val_batches: Callable[[], Iterable]
    forward: Callable[[torch.Tensor], torch.Tensor]
    epochs: int
    stage: str = "train"
    callbacks: list[Callback] = field(default_factory=list)
    start_epoch: int = 0
    steps_per_epoch: int = 0
    scheduler: object | None = None
    channels_last: bool = False
    epoch: int = 0
    step: int = 0
    stop_reason: str | None = None
    history: list[dict] = field(default_factory=list)
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)
    train_forward: Callable[[torch.Tensor], torch.Tensor] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dist: Dist = field(default_factory=Dist)
    precision: str = FP32  # autocast of forward passes (``numerics``): the run's measured choice

    def __post_init__(self):
        self.scaler = grad_scaler(self.device, self.precision)

    def emit(self, event: Event, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event.value)(self, *args)

    def _prepare(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch[0].to(self.device, non_blocking=True), batch[1].to(self.device, non_blocking=True)
        return to_channels_last(x, self.channels_last), y

    def fit(self) -> str:
        """Run the remaining epochs; returns "completed", or the reason a callback gave. Under DDP
        the training forward is wrapped for the fit (gradients averaged over ranks) and unwrapped
        after it, on all ranks together."""
        self.stop_reason = None
        if self.dist.enabled:
            self.train_forward = _ddp(self.model, self.forward, self.device)
        try:
            self.emit(Event.FIT_START)
            for self.epoch in range(self.start_epoch + 1, self.epochs + 1):
                self.emit(Event.EPOCH_START)
                record = self._train_epoch()
                record.update(self.validate())
                self.history.append(record)
                self.emit(Event.EPOCH_END, record)
        except CancelTraining as exc:
            self.stop_reason = exc.reason
        finally:
            self.emit(Event.FIT_END)  # also after a crash, so callbacks can flush what they hold
            if self.dist.enabled:  # drop the wrapper (and its gradient hooks) with the stage
                self.train_forward = None
                self.dist.barrier()
        return self.stop_reason or "completed"

    def _train_epoch(self) -> dict:
        self.model.train()
        forward = self.train_forward or self.forward
        t0, seen, loss_sum, correct, data_s = time.perf_counter(), 0, 0.0, 0, 0.0
        fetch = time.perf_counter()
        for i, batch in enumerate(self.train_batches(self.epoch), 1):
            data_s += time.perf_counter() - fetch  # waiting for the batch: decoding, augmentation
            x, y = self._prepare(batch)
            with autocast(self.device, self.precision):
                logits = forward(x)
                loss = self.loss_fn(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                loss.backward()
                self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            self.step += 1
            n, batch_loss = len(y), loss.item()
            seen += n
            loss_sum += batch_loss * n
            batch_correct = (logits.argmax(1) == y).sum().item()
            correct += batch_correct
            elapsed = time.perf_counter() - t0
            self.emit(Event.BATCH_END, {
                "kind": "batch", "stage": self.stage, "epoch": self.epoch, "step": self.step,
                "loss": batch_loss, "acc": batch_correct / n, "lr": self.optimizer.param_groups[-1]["lr"],
                "images_per_s": seen / max(elapsed, 1e-9), "batch": i,
                "batches": self.steps_per_epoch})
            fetch = time.perf_counter()
        seconds = time.perf_counter() - t0
        loss_sum, correct, seen = self.dist.sum([loss_sum, correct, seen])
        return {"kind": "epoch", "stage": self.stage, "epoch": self.epoch, "epochs": self.epochs,
                "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                "lr": self.optimizer.param_groups[-1]["lr"], "images_per_s": seen / max(seconds, 1e-9),
                "seconds": seconds, "data_seconds": data_s}

    @torch.inference_mode()
    def validate(self) -> dict:
        self.model.eval()
        seen, loss_sum, correct = 0, 0.0, 0
        for batch in self.val_batches():
            x, y = self._prepare(batch)
            with autocast(self.device, self.precision):
                logits = self.forward(x).float()
            loss_sum += self.loss_fn(logits, y).item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        if seen == 0:
            return {"val_loss": None, "val_acc": None}
        return {"val_loss": loss_sum / seen, "val_acc": correct / seen}


class _Forward(nn.Module):
    """A forward function as a module, so DistributedDataParallel can wrap it."""

    def __init__(self, model: nn.Module, forward):
        super().__init__()
        self.model, self.fn = model, forward

    def forward(self, x):
        return self.fn(x)


def _ddp(model: nn.Module, forward, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    # Buffers (BatchNorm statistics) are not synced each forward: frozen by default.
    args = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in args else {"broadcast_buffers": False}
    return DistributedDataParallel(_Forward(model, forward), device_ids=[device.index] if device.type == "cuda" else None,
                                   **no_sync)


def score(record: dict) -> tuple:
    """Higher is better: validation accuracy, then lower validation loss (train metrics without val)."""
    if record.get("val_acc") is None:
        return (record["train_acc"], -record["train_loss"])
    return (record["val_acc"], -record["val_loss"])


class EarlyStopping(Callback):
    """Stop when the validation score has not improved for ``patience`` epochs (0 = never)."""

    def __init__(self, patience: int):
        self.patience, self.best, self.bad = patience, None, 0

    def on_epoch_end(self, trainer, record):
        s = score(record)
        if self.best is None or s > self.best:
            self.best, self.bad = s, 0
            return
        self.bad += 1
        if self.patience and self.bad >= self.patience:
            raise CancelTraining("early_stopped")


class StopFile(Callback):
    """Stop between batches when the run's stop file appears (the UI's Stop button)."""

    def __init__(self, run):
        self.run = run

    def on_batch_end(self, trainer, record):
        # Under DDP every rank must stop at the same batch, or the others wait for it forever.
        if trainer.dist.any(self.run.stop_requested()):
            raise CancelTraining("stopped")

    on_epoch_start = lambda self, trainer: self.on_batch_end(trainer, {})  # noqa: E731


class HoldAfterEpoch(Callback):
    """Test hook (``TL_TEST_HOLD_AFTER_EPOCH=N``): after epoch ``N`` of a stage, write ``held`` into
    ``status.json`` and wait until the run is asked to stop or ``RUN/release`` appears. Tests then
    kill, stop or watch a run at a named point instead of racing its speed (a GPU is much faster)."""

    def __init__(self, run, epoch: int):
        self.run, self.epoch = run, epoch

    def on_epoch_end(self, trainer, record):
        if trainer.epoch != self.epoch or self.run.stop_requested():
            return
        for cb in trainer.callbacks:  # everything of this epoch on disk first (checkpoints)
            if hasattr(cb, "flush"):
                cb.flush()
        self.run.write_status(held={"stage": trainer.stage, "epoch": trainer.epoch})
        while not (self.run.stop_requested() or (self.run.path / "release").exists()):
            time.sleep(0.05)  # every rank waits for the same file (none deletes it)
        self.run.write_status(held=None)


def test_hooks(run) -> list[Callback]:
    """The callbacks tests ask for through the environment (none in normal use)."""
    from .settings import hold_after_epoch

    epoch = hold_after_epoch()
    return [HoldAfterEpoch(run, epoch)] if epoch is not None else []


class MetricsLogger(Callback):
    """Appends epoch records, and about ``per_epoch`` batch-window records per epoch, to metrics.jsonl."""

    def __init__(self, run, per_epoch: int = 20):
        self.run, self.per_epoch = run, per_epoch
        self.window: list[dict] = []

    def on_batch_end(self, trainer, record):
        self.window.append(record)
        every = max(1, math.ceil(trainer.steps_per_epoch / self.per_epoch)) if trainer.steps_per_epoch else 1
        if len(self.window) >= every:
            n = len(self.window)
            self.run.append_metrics({**record, "loss": sum(r["loss"] for r in self.window) / n,
                                     "acc": sum(r["acc"] for r in self.window) / n, "time": time.time()})
            self.window = []

    def on_epoch_end(self, trainer, record):
        self.window = []
        self.run.append_metrics({**record, "time": time.time()})
