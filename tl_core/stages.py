"""The two stages of a run and their data: the head stage (on cached features when the backbone is
frozen and augmentation is off) and the fine-tune stage (on cached frozen-prefix activations when
possible), sharing one checkpointer and writing live status."""

from __future__ import annotations

import inspect
import logging
import time

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from . import checkpoints as ckpt
from . import settings
from .distributed import Dist, RecordingSampler
from .engine import EarlyStopping, MetricsLogger, StopFile, Trainer, test_hooks
from .errors import CancelTraining
from .i18n import _
from .evaluate import predict_probs
from .features import activation_bytes, cached_features
from .freezing import param_groups
from .model import TransferModel
from .runs import RunDir
from .transforms import DecodedImages, ImageDataset, eval_transform, prefetch, train_transform

log = logging.getLogger("tl_core.train")
_DDP_ARGS = inspect.signature(DistributedDataParallel.__init__).parameters


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    # One generator per epoch, so a resumed run sees the same batch order as an uninterrupted one.
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


class Batches:
    """Batches of one epoch (``batches(epoch)``). On one process: shuffled with a per-epoch
    generator. Under DDP (training sets only): each rank gets its shard from a distributed sampler."""

    def __init__(self, ds, batch_size: int, shuffle: bool, seed: int, d: Dist | None = None):
        self.ds, self.batch_size, self.shuffle, self.seed = ds, batch_size, shuffle, seed
        self.sampler = RecordingSampler(ds, d, shuffle, seed) if d is not None and d.enabled else None

    def __call__(self, epoch: int = 0):
        if isinstance(self.ds, ImageDataset):
            self.ds.epoch = epoch
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)
            loader = DataLoader(self.ds, batch_size=self.batch_size, sampler=self.sampler)
        else:
            loader = DataLoader(self.ds, batch_size=self.batch_size, shuffle=self.shuffle,
                                generator=_epoch_generator(self.seed, epoch))
        # Images: decode and augment the next batch in a thread while the model works on this one
        # (image and tensor kernels release the GIL). Cached tensors need no help.
        return prefetch(loader) if isinstance(self.ds, ImageDataset) else loader

    def steps(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.ds)
        return max(1, -(-n // self.batch_size))


def _feature_batches(feats, labels, batch_size, shuffle, seed, d=None) -> Batches:
    return Batches(TensorDataset(feats, torch.tensor(labels, dtype=torch.long)), batch_size, shuffle, seed, d)


def _image_batches(items, transform, pre, batch_size, shuffle, seed, d=None, decoded=None) -> Batches:
    return Batches(ImageDataset(items, transform, pre, decoded, seed), batch_size, shuffle, seed, d)


class _StageForward(nn.Module):
    """A stage's forward function as a module, so DistributedDataParallel can wrap it."""

    def __init__(self, model: nn.Module, forward):
        super().__init__()
        self.model, self.fn = model, forward

    def forward(self, x):
        return self.fn(x)


class StatusWriter(ckpt.Callback):
    """Keeps ``status.json`` current: stage, epoch, batch, images/s, progress and the stage's ETA."""

    def __init__(self, run: RunDir, epochs_before: int, total_epochs: int):
        self.run, self.before, self.total = run, epochs_before, total_epochs
        self.last, self.t0, self.done0 = 0.0, time.time(), 0

    def on_fit_start(self, trainer):
        self.t0, self.done0 = time.time(), trainer.start_epoch

    def on_batch_end(self, trainer, record):
        if time.time() - self.last > 1.0:
            self._write(trainer, record["batch"] / max(trainer.steps_per_epoch, 1), record["images_per_s"])

    def on_epoch_end(self, trainer, record):
        self._write(trainer, 1.0, record["images_per_s"])

    def _write(self, trainer, within: float, ips: float) -> None:
        self.last = time.time()
        done = trainer.epoch - 1 + min(within, 1.0)
        rate = (done - self.done0) / max(time.time() - self.t0, 1e-9)
        self.run.write_status(
            state="running", stage=trainer.stage, epoch=trainer.epoch, stage_epochs=trainer.epochs,
            progress=round((self.before + done) / max(self.total, 1), 4), images_per_s=round(ips, 2),
            eta_seconds=round((trainer.epochs - done) / rate, 1) if rate > 0 else None)


def _extraction_progress(run: RunDir):
    state = {"t": 0.0}

    def report(done: int, total: int) -> None:
        if run.stop_requested():
            raise CancelTraining("stopped")
        if time.time() - state["t"] > 1.0 or done == total:
            state["t"] = time.time()
            run.write_status(state="running", stage="features", progress=0.0, detail=_("{done}/{total} images",
                                                                                       done=done, total=total))

    return report


class Stages:
    """The head stage and the fine-tune stage of one run, sharing data loaders and the feature cache."""

    def __init__(self, run, cfg, plan, spec, model: TransferModel, split, saver, last, d: Dist | None = None):
        self.run, self.cfg, self.plan, self.spec, self.model = run, cfg, plan, spec, model
        self.split, self.saver, self.last = split, saver, last
        self.dist = d or Dist()
        self.device = self.dist.device
        self.shards: dict[str, list[list[int]]] = {}
        self.decoded: DecodedImages | None = None
        self.features: dict[str, torch.Tensor] | None = None
        self.prefix: dict[str, torch.Tensor] | None = None
        self.cache_status = self.prefix_status = "off"
        self.epochs_run = 0
        self.head_epochs = plan.epochs if plan.head_only else plan.head_epochs
        self.total_epochs = self.head_epochs + (0 if plan.head_only else plan.epochs)

    def _labels(self, part):
        return [it.label for it in self.split[part]]

    def _cached(self, cut: int | None) -> tuple[dict[str, torch.Tensor], str]:
        """Features (``cut=None``) or prefix activations of every split part, from the cache."""
        parts = ("train", "val", "test")
        items = [it for part in parts for it in self.split[part]]

        def extract():
            return cached_features(self.model, items, self.spec, self.cfg.cache_dir, self.cfg.weights,
                                   self.cfg.batch_size, _extraction_progress(self.run), cut=cut)

        # Under DDP rank 0 extracts and stores; the others then read its cache (or, without a
        # shared file system, extract for themselves).
        if self.dist.main:
            rows, status = extract()
            self.dist.barrier()
        else:
            self.dist.barrier()
            rows, status = extract()
        return dict(zip(parts, torch.split(rows, [len(self.split[p]) for p in parts]))), status

    def _load_features(self) -> None:
        self.features, self.cache_status = self._cached(None)

    def _resume_point(self, stage: str) -> tuple[int, dict | None]:
        if self.last and self.last["stage"] == stage:
            return self.last["epoch"], self.last
        return 0, None

    def run_all(self) -> str:
        reason = "completed"
        resumed_finetune = self.last is not None and self.last["stage"] == "finetune"
        if self.head_epochs and not resumed_finetune:
            reason = self._head_stage()
        if not self.plan.head_only and reason != "stopped":
            reason = self._finetune_stage()
        return reason

    def _head_stage(self) -> str:
        m, cfg = self.model, self.cfg
        m.freeze_to(self.plan.total_groups)
        start, state = self._resume_point("head")
        if state:
            m.load_state_dict(state["model"])
        if self.plan.use_cache or not self.plan.head_only:
            self._load_features()
            train = _feature_batches(self.features["train"], self._labels("train"), cfg.batch_size, True, cfg.seed,
                                     self.dist)
            val = _feature_batches(self.features["val"], self._labels("val"), 256, False, cfg.seed)
            forward = m.forward_head
        else:
            train, val = self._image_loaders()
            forward = m
        opt = torch.optim.AdamW(m.head.parameters(), lr=cfg.head_lr, weight_decay=cfg.weight_decay)
        return self._fit("head", opt, None, train, val, forward, self.head_epochs, start, state, epochs_before=0)

    def _image_loaders(self):
        cfg, pre = self.cfg, self.spec.preprocess
        if self.decoded is None:  # one per run: decode and resize each image once, in the first epoch
            self.decoded = DecodedImages(pre)
        train = _image_batches(self.split["train"], train_transform(pre, self.plan.augment, predecoded=True), pre,
                               cfg.batch_size, True, cfg.seed, self.dist, self.decoded)
        val = _image_batches(self.split["val"], eval_transform(pre, predecoded=True), pre, cfg.batch_size, False,
                             cfg.seed, decoded=self.decoded)
        return train, val

    @torch.inference_mode()
    def probs(self, part: str, stage: str) -> torch.Tensor:
        """Class probabilities of a split part, from whichever cache matches the model's stage."""
        self.model.eval()
        if stage == "head" and self.features is not None:
            chunks = [self.model.forward_head(f.to(self.device)) for f in torch.split(self.features[part], 256)]
        elif stage == "finetune" and self.prefix is not None:
            chunks = [self._prefix_forward(a.to(self.device)) for a in torch.split(self.prefix[part], 64)]
        else:
            return predict_probs(self.model, self.split[part], self.spec, self.cfg.batch_size)
        return torch.softmax(torch.cat(chunks).float(), 1).cpu()

    def _load_prefix(self) -> bool:
        """Cache the activations at the freeze boundary (no augmentation): later epochs only run
        the unfrozen groups. Falls back to images when the cache would exceed the memory limit."""
        k = self.plan.frozen_groups
        need = activation_bytes(self.model, self.spec, k, sum(len(v) for v in self.split.values()))
        limit = settings.prefix_cache_max_bytes()
        if need > limit:
            log.info("frozen-prefix cache needs %.1f GB (limit %.1f GB): training on images instead",
                     need / 1e9, limit / 1e9)
            self.prefix_status = "too_large"
            return False
        self.prefix, self.prefix_status = self._cached(k)
        return True

    def _prefix_forward(self, acts: torch.Tensor) -> torch.Tensor:
        x = acts.float()
        if self.spec.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model.forward_from(x, self.plan.frozen_groups)

    def _finetune_stage(self) -> str:
        m, cfg = self.model, self.cfg
        self.dist.barrier()  # rank 0 has written the head stage's best checkpoint
        start, state = self._resume_point("finetune")
        if state:
            m.load_state_dict(state["model"])
        elif self.run.checkpoint("best").is_file():
            m.load_state_dict(ckpt.load_checkpoint(self.run.checkpoint("best"))["model"])  # best head, then unfreeze
        m.freeze_to(self.plan.frozen_groups)
        m.bn_stats_frozen = cfg.bn_stats == "frozen"
        if self.plan.use_cache and self.plan.frozen_groups > 0 and self._load_prefix():
            train = _feature_batches(self.prefix["train"], self._labels("train"), cfg.batch_size, True, cfg.seed,
                                     self.dist)
            val = _feature_batches(self.prefix["val"], self._labels("val"), cfg.batch_size, False, cfg.seed)
            forward = self._prefix_forward
        else:
            train, val = self._image_loaders()
            forward = m
        opt = torch.optim.AdamW(param_groups(m, self.plan.group_lrs, self.plan.head_lr), weight_decay=cfg.weight_decay)
        total = train.steps() * self.plan.epochs
        # One-cycle: warm up over 20% of the steps, then anneal; each phase needs >= 2 steps (a very
        # short run, e.g. one epoch of 5 batches, otherwise divides by zero): constant LR below that.
        sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                     total_steps=total, pct_start=max(0.2, 3 / total))
                 if total >= 6 else None)
        return self._fit("finetune", opt, sched, train, val, forward, self.plan.epochs, start, state,
                         epochs_before=self.head_epochs)

    def _fit(self, stage, opt, sched, train, val, forward, epochs, start, state, epochs_before) -> str:
        if state:
            opt.load_state_dict(state["optimizer"])
            if sched is not None and state.get("scheduler"):
                sched.load_state_dict(state["scheduler"])
            ckpt.set_rng_state(state["rng"])
        else:
            # Feature extraction on a cache miss draws from the global RNG; reseed so a cache hit
            # and a miss train identically (dropout masks, augmentation).
            torch.manual_seed(self.cfg.seed + (1 if stage == "finetune" else 0))
        d = self.dist
        # Only rank 0 writes (metrics, checkpoints, status); every rank stops together.
        writers = [MetricsLogger(self.run), self.saver, StatusWriter(self.run, epochs_before, self.total_epochs)]
        trainer = Trainer(self.model, opt, train, val, forward, epochs, stage=stage, start_epoch=start,
                          steps_per_epoch=train.steps(), scheduler=sched,
                          channels_last=self.spec.channels_last and forward is self.model,
                          step=state["step"] if state else 0,
                          loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=self.cfg.label_smoothing),
                          callbacks=[*(writers if d.main else []), StopFile(self.run),
                                     EarlyStopping(self.cfg.patience), *test_hooks(self.run)],
                          device=self.device, dist=d)
        if d.enabled:
            # Buffers (BatchNorm statistics) are not synced each forward: frozen by default.
            no_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in _DDP_ARGS
                       else {"broadcast_buffers": False})
            ddp = DistributedDataParallel(_StageForward(self.model, forward),
                                          device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                          **no_sync)
            trainer.train_forward = ddp
        reason = trainer.fit()
        if d.enabled:  # drop the DDP wrapper (and its gradient hooks) with the stage, on all ranks together
            trainer.train_forward = None
            del ddp
            d.barrier()
        if train.sampler is not None and train.sampler.first is not None:
            self.shards[stage] = d.gather(train.sampler.first)
        self.epochs_run += len(trainer.history)
        log.info("stage %s ended: %s after %d epoch(s)", stage, reason, len(trainer.history))
        return reason
