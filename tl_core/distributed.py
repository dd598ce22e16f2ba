"""Where training runs: the device (CUDA when present, else CPU) and, under ``torchrun``, the
process group of DistributedDataParallel.

``torchrun --nproc-per-node=N -m tl_core train ...`` starts N copies of the same command. Rank 0
creates the run directory, prepares the split and writes everything (metrics, checkpoints, status,
evaluation); the other ranks train on their shard of every epoch and write nothing. Without
torchrun (``WORLD_SIZE`` unset) everything here is a no-op on one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as tdist  # the torch module; `Dist` below is this job's place in it
from torch.utils.data import DistributedSampler

from . import settings
from .i18n import _


def pick_device(local_rank: int = 0) -> torch.device:
    """CUDA when present (``TL_DEVICE=cpu`` forces the CPU), else the CPU."""
    forced = settings.forced_device()
    if forced != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    """One line for the UI: what trains and predicts here."""
    device = device or pick_device()
    if device.type == "cuda":
        n = torch.cuda.device_count()
        name = torch.cuda.get_device_name(device)
        return (_("GPU: {name} (x{n} on this machine), mixed precision", name=name, n=n) if n > 1
                else _("GPU: {name}, mixed precision", name=name))
    return _("CPU: {cores} cores, {threads} threads (no GPU found)", cores=os.cpu_count(),
             threads=torch.get_num_threads())


def gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def to_channels_last(obj, on: bool = True):
    """``obj`` (a model or a batch) in channels-last memory layout when ``on`` (faster convolutions on
    CPUs and GPUs for most backbones); a batch that is not 4-D, or ``on=False``, comes back unchanged."""
    if not on:
        return obj
    if isinstance(obj, torch.nn.Module):
        return obj.to(memory_format=torch.channels_last)
    return obj.contiguous(memory_format=torch.channels_last) if obj.ndim == 4 else obj


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    """A loss scaler when autocast runs in fp16 (bf16 and fp32 need none)."""
    if device.type == "cuda" and precision == "fp16":
        return torch.amp.GradScaler("cuda")
    return None


@dataclass
class Dist:
    """This process's place in the job: ``world`` processes, this one is ``rank``."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> torch.device:
        return pick_device(self.local_rank)

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world
        tdist.all_gather_object(out, obj)
        return out

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        tdist.all_reduce(t)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        return bool(self.sum([float(flag)])[0]) if self.enabled else flag


_CURRENT = Dist()


def current() -> Dist:
    return _CURRENT


def init_from_env() -> Dist:
    """Join the process group ``torchrun`` describes in the environment (once); gloo on CPU, nccl
    on GPU. The timeout is long because rank 0 alone may extract features for a while."""
    global _CURRENT
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or _CURRENT.enabled:
        return _CURRENT
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(local)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    tdist.init_process_group(backend, timeout=timedelta(hours=3))
    _CURRENT = Dist(world, rank, local, backend)
    return _CURRENT


def shutdown(clean: bool = True) -> None:
    global _CURRENT
    if _CURRENT.enabled and tdist.is_initialized():
        try:
            if clean:
                tdist.barrier()  # leave together: a rank that exits early can abort the others
        finally:
            tdist.destroy_process_group()
    _CURRENT = Dist()


class RecordingSampler(DistributedSampler):
    """``DistributedSampler`` that remembers the indices it handed out in its first epoch, so a
    run can show that the ranks trained on different samples."""

    def __init__(self, dataset, d: Dist, shuffle: bool, seed: int):
        super().__init__(dataset, num_replicas=d.world, rank=d.rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.first: list[int] | None = None

    def __iter__(self):
        indices = list(super().__iter__())
        if self.first is None:
            self.first = indices
        return iter(indices)
