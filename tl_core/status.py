"""A run's live status while it trains: the callback that writes ``status.json`` every second
(stage, epoch, images/s, one progress bar over the whole run, time left) and the progress report of
a feature pass."""

from __future__ import annotations

import time

from . import checkpoints as ckpt
from .errors import CancelTraining
from .i18n import _
from .progress import Budget, eta_seconds, meaningful_speed
from .runs import RunDir


class StatusWriter(ckpt.Callback):
    """Keeps ``status.json`` current: stage, epoch, batch, images/s, the run's progress (one bar over
    every stage, see ``progress.Budget``) and the time left for the whole run."""

    def __init__(self, run: RunDir, budget: Budget, started: float):
        self.run, self.budget, self.started = run, budget, started
        self.last, self.t0 = 0.0, time.time()

    def on_fit_start(self, trainer):
        self.t0 = time.time()

    def on_batch_end(self, trainer, record):
        if time.time() - self.last > 1.0:
            self._write(trainer, record["batch"] / max(trainer.steps_per_epoch, 1), record["images_per_s"])

    def on_epoch_end(self, trainer, record):
        self._write(trainer, 1.0, record["images_per_s"])

    def _write(self, trainer, within: float, ips: float) -> None:
        self.last = time.time()
        done = (trainer.epoch - 1 + min(within, 1.0)) / max(trainer.epochs, 1)
        progress = self.budget.at(trainer.stage, done)
        self.run.write_status(
            state="running", stage=trainer.stage, epoch=trainer.epoch, stage_epochs=trainer.epochs,
            progress=progress, images_per_s=meaningful_speed(ips, time.time() - self.t0),
            eta_seconds=eta_seconds(progress, time.time() - self.started))


def extraction_progress(run: RunDir, budget: Budget, phase: str, started: float):
    """A progress callback for a feature pass (``phase`` "features" or "prefix"): writes the run's
    status at most once a second and stops the pass when the user asked the run to stop."""
    state = {"t": 0.0}

    def report(done: int, total: int) -> None:
        if run.stop_requested():
            raise CancelTraining("stopped")
        if time.time() - state["t"] > 1.0 or done == total:
            state["t"] = time.time()
            progress = budget.at(phase, done / max(total, 1))
            run.write_status(state="running", stage=phase, progress=progress,
                             eta_seconds=eta_seconds(progress, time.time() - started),
                             detail=_("{done}/{total} images", done=done, total=total))

    return report
