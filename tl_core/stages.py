"""The two stages of a run and their data: the head stage (on cached features when the backbone is
frozen and augmentation is off) and the fine-tune stage (on cached frozen-prefix activations when
possible), sharing one checkpointer; `status.py` writes their live status."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader, TensorDataset

from . import checkpoints as ckpt
from . import settings
from .backbones import BackboneSpec, group_flops
from .config import TrainConfig
from .distributed import Dist, RecordingSampler, to_channels_last
from .engine import EarlyStopping, MetricsLogger, StopFile, Trainer, test_hooks
from .evaluate import chunked_probs, predict_probs
from .features import activation_bytes, cached_features
from .freezing import param_groups
from .model import TransferModel
from .numerics import Numerics
from .progress import run_budget
from .recipe import Plan
from .runs import RunDir
from .status import StatusWriter, extraction_progress
from .transforms import DecodedImages, ImageDataset, eval_transform, prefetch, train_transform

log = logging.getLogger("tl_core.train")


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


@dataclass
class RunParts:
    """What both stages of a run share: its folder, settings, plan, network, split and checkpoints."""

    run: RunDir
    cfg: TrainConfig
    plan: Plan
    spec: BackboneSpec
    model: TransferModel
    split: dict
    saver: ckpt.Checkpointer
    last: dict | None = None  # the checkpoint to resume from
    dist: Dist = field(default_factory=Dist)
    numerics: Numerics = field(default_factory=Numerics)  # every forward pass of the run computes in these


@dataclass
class StageInputs:
    """A stage's batches and the forward function that fits them (images, features or activations).
    ``cached_groups``: leading layer groups computed once by the run's frozen-part engine and read from
    the cache (all of them for pooled features, the frozen prefix for activations, 0 for images)."""

    train: Batches
    val: Batches
    forward: object
    cached_groups: int = 0


def head_recipe(model: TransferModel, cfg: TrainConfig):
    """Stage 1: only the new head trains, at ``head_lr``, constant (fastai's ``fine_tune``, first half)."""
    return torch.optim.AdamW(model.head.parameters(), lr=cfg.head_lr, weight_decay=cfg.weight_decay), None


def finetune_recipe(model: TransferModel, plan: Plan, cfg: TrainConfig, steps_per_epoch: int):
    """Stage 2: the planned groups unfrozen, each at its own learning rate, one-cycle over the stage."""
    opt = torch.optim.AdamW(param_groups(model, plan.group_lrs, plan.head_lr), weight_decay=cfg.weight_decay)
    total = steps_per_epoch * plan.epochs
    # Warm up over 20% of the steps, then anneal; each phase needs >= 2 steps (a very short run, e.g.
    # one epoch of 5 batches, otherwise divides by zero): constant learning rates below that.
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=total,
                                                 pct_start=max(0.2, 3 / total)) if total >= 6 else None)
    return opt, sched


class Stages:
    """The head stage and the fine-tune stage of one run, sharing data loaders and the feature cache."""

    def __init__(self, parts: RunParts, started: float | None = None):
        self.p, self.started = parts, started or time.time()
        self.shards: dict[str, list[list[int]]] = {}
        self.decoded: DecodedImages | None = None
        self.features: dict[str, torch.Tensor] | None = None
        self.prefix: dict[str, torch.Tensor] | None = None
        self.cache_status = self.prefix_status = "off"
        self.epochs_run = 0
        plan = parts.plan
        self.head_epochs = plan.epochs if plan.head_only else plan.head_epochs
        self.total_epochs = self.head_epochs + (0 if plan.head_only else plan.epochs)
        split = parts.split
        self.budget = run_budget(plan, len(split["train"]), len(split["val"]), sum(len(v) for v in split.values()),
                                 group_flops(parts.model.body, parts.spec.input_size))

    def run_all(self) -> str:
        reason = "completed"
        last = self.p.last
        if self.head_epochs and not (last is not None and last["stage"] == "finetune"):
            reason = self._head_stage()
        if not self.p.plan.head_only and reason != "stopped":
            reason = self._finetune_stage()
        return reason

    def _head_stage(self) -> str:
        m, cfg = self.p.model, self.p.cfg
        m.freeze_to(self.p.plan.total_groups)
        resume = self._resume_point("head")
        if resume[1]:
            m.load_state_dict(resume[1]["model"])
        return self._fit("head", head_recipe(m, cfg), self._head_inputs(), self.head_epochs, resume)

    def _finetune_stage(self) -> str:
        m, cfg, plan = self.p.model, self.p.cfg, self.p.plan
        self.p.dist.barrier()  # rank 0 has written the head stage's best checkpoint
        resume = self._resume_point("finetune")
        if resume[1]:
            m.load_state_dict(resume[1]["model"])
        elif self.p.run.checkpoint("best").is_file():
            m.load_state_dict(ckpt.load_checkpoint(self.p.run.checkpoint("best"))["model"])  # best head, then unfreeze
        m.freeze_to(plan.frozen_groups)
        m.bn_stats_frozen = cfg.bn_stats == "frozen"
        inputs = self._finetune_inputs()
        recipe = finetune_recipe(m, plan, cfg, inputs.train.steps())
        return self._fit("finetune", recipe, inputs, plan.epochs, resume)

    # The inputs of each stage: cached features, cached prefix activations, or images ----------------
    def _head_inputs(self) -> StageInputs:
        plan = self.p.plan
        if plan.head_only and not plan.use_cache:  # augmentation on: images every epoch
            return self._image_inputs()
        self.features, self.cache_status = self._cached(None)
        return StageInputs(self._tensor_batches(self.features, "train"), self._tensor_batches(self.features, "val", 256),
                           self.p.model.forward_head, len(self.p.model.body))

    def _finetune_inputs(self) -> StageInputs:
        plan = self.p.plan
        if plan.use_cache and plan.frozen_groups > 0 and self._load_prefix():
            return StageInputs(self._tensor_batches(self.prefix, "train"), self._tensor_batches(self.prefix, "val"),
                               self._prefix_forward, plan.frozen_groups)
        return self._image_inputs()

    def _tensor_batches(self, tensors: dict[str, torch.Tensor], part: str, batch_size: int | None = None) -> Batches:
        cfg, train = self.p.cfg, part == "train"
        labels = torch.tensor([it.label for it in self.p.split[part]], dtype=torch.long)
        return Batches(TensorDataset(tensors[part], labels), batch_size or cfg.batch_size, train, cfg.seed,
                       self.p.dist if train else None)

    def _image_inputs(self) -> StageInputs:
        cfg, pre = self.p.cfg, self.p.spec.preprocess
        if self.decoded is None:  # one per run: decode and resize each image once, in the first epoch
            self.decoded = DecodedImages(pre)
        train = Batches(ImageDataset(self.p.split["train"], train_transform(pre, self.p.plan.augment, predecoded=True),
                                     pre, self.decoded, cfg.seed), cfg.batch_size, True, cfg.seed, self.p.dist)
        val = Batches(ImageDataset(self.p.split["val"], eval_transform(pre, predecoded=True), pre, self.decoded,
                                   cfg.seed), cfg.batch_size, False, cfg.seed)
        return StageInputs(train, val, self.p.model)

    def _cached(self, frozen_groups: int | None) -> tuple[dict[str, torch.Tensor], str]:
        """Features (``frozen_groups=None``) or prefix activations of every split part, from the cache."""
        p, parts = self.p, ("train", "val", "test")
        items = [it for part in parts for it in p.split[part]]

        def extract():
            return cached_features(p.model, items, p.spec, p.cfg.cache_dir, weights=p.cfg.weights,
                                   batch_size=p.cfg.batch_size, frozen_groups=frozen_groups,
                                   numerics=p.numerics,
                                   progress=extraction_progress(p.run, self.budget, "features" if frozen_groups is None
                                                                else "prefix", self.started))

        # Under DDP rank 0 extracts and stores; the others then read its cache (or, without a
        # shared file system, extract for themselves).
        if p.dist.main:
            rows, status = extract()
            p.dist.barrier()
        else:
            p.dist.barrier()
            rows, status = extract()
        return dict(zip(parts, torch.split(rows, [len(p.split[part]) for part in parts]))), status

    def _load_prefix(self) -> bool:
        """Cache the activations at the freeze boundary (no augmentation): later epochs only run
        the unfrozen groups. Falls back to images when the cache would exceed the memory limit."""
        p, frozen = self.p, self.p.plan.frozen_groups
        need = activation_bytes(p.model, p.spec, frozen, sum(len(v) for v in p.split.values()))
        limit = settings.prefix_cache_max_bytes()
        if need > limit:
            log.info("frozen-prefix cache needs %.1f GB (limit %.1f GB): training on images instead",
                     need / 1e9, limit / 1e9)
            self.prefix_status = "too_large"
            return False
        self.prefix, self.prefix_status = self._cached(frozen)
        return True

    def _prefix_forward(self, acts: torch.Tensor) -> torch.Tensor:
        return self.p.model.forward_from(to_channels_last(acts.float(), self.p.spec.channels_last),
                                         self.p.plan.frozen_groups)

    def probs(self, part: str, stage: str) -> torch.Tensor:
        """Class probabilities of a split part, from whichever cache matches the model's stage."""
        if stage == "head" and self.features is not None:
            return chunked_probs(self.p.model, self.p.model.forward_head, self.features[part], 256)
        if stage == "finetune" and self.prefix is not None:
            return chunked_probs(self.p.model, self._prefix_forward, self.prefix[part], 64,
                                 self.p.numerics.precision)
        return predict_probs(self.p.model, self.p.split[part], self.p.spec, self.p.cfg.batch_size,
                             self.p.numerics.precision)

    def _precision(self, stage: str, inputs: StageInputs) -> str:
        """The autocast of a stage's steps: none for the head on cached features (tiny), the frozen
        work's for the head on images, fine-tuning's for the fine-tune stage."""
        if inputs.forward == self.p.model.forward_head:
            return "fp32"
        return self.p.numerics.train_precision if stage == "finetune" else self.p.numerics.precision

    # The loop ----------------------------------------------------------------------------------------
    def _resume_point(self, stage: str) -> tuple[int, dict | None]:
        last = self.p.last
        if last and last["stage"] == stage:
            return last["epoch"], last
        return 0, None

    def _fit(self, stage: str, recipe: tuple, inputs: StageInputs, epochs: int, resume: tuple[int, dict | None]) -> str:
        """Train one stage: ``recipe`` is (optimizer, scheduler), ``resume`` (epochs done, last checkpoint)."""
        p, (opt, sched), (start, state) = self.p, recipe, resume
        p.saver.meta["cached_groups"] = inputs.cached_groups  # its checkpoints say what a predictor computes how
        if state:
            opt.load_state_dict(state["optimizer"])
            if sched is not None and state.get("scheduler"):
                sched.load_state_dict(state["scheduler"])
            ckpt.set_rng_state(state["rng"])
        else:
            # Feature extraction on a cache miss draws from the global RNG; reseed so a cache hit
            # and a miss train identically (dropout masks, augmentation).
            torch.manual_seed(p.cfg.seed + (1 if stage == "finetune" else 0))
        # Only rank 0 writes (metrics, checkpoints, status); every rank stops together.
        writers = [MetricsLogger(p.run), p.saver, StatusWriter(p.run, self.budget, self.started)]
        trainer = Trainer(p.model, opt, inputs.train, inputs.val, inputs.forward, epochs, stage=stage,
                          start_epoch=start, steps_per_epoch=inputs.train.steps(), scheduler=sched,
                          channels_last=p.spec.channels_last and inputs.forward is p.model,
                          step=state["step"] if state else 0,
                          loss_fn=torch.nn.CrossEntropyLoss(label_smoothing=p.cfg.label_smoothing),
                          callbacks=[*(writers if p.dist.main else []), StopFile(p.run),
                                     EarlyStopping(p.cfg.patience), *test_hooks(p.run)],
                          device=p.dist.device, dist=p.dist,
                          precision=self._precision(stage, inputs))
        reason = trainer.fit()
        sampler = inputs.train.sampler
        if sampler is not None and sampler.first is not None:
            self.shards[stage] = p.dist.gather(sampler.first)
        self.epochs_run += len(trainer.history)
        log.info("stage %s ended: %s after %d epoch(s)", stage, reason, len(trainer.history))
        return reason
