"""The OpenVINO engine: the frozen part of a network compiled by OpenVINO for this CPU.

The frozen part is what no training step changes: the whole feature extractor (pooled features,
scenario 1) or the first ``frozen_groups`` layer groups (the frozen prefix of scenarios 2 and 3).
It is converted from the PyTorch module itself (the same weights, no export step), kept as an
OpenVINO model file in the cache folder, keyed by the part's own weights, so the next run and the
predictor of a finished run compile it in well under a second instead of converting again, and
compiled once per process.

``numerics`` decides whether this engine runs (measured per machine, like bf16) and owns the
fallback; this module only builds and runs the compiled part. OpenVINO is optional: without it,
``available()`` is false and every forward pass stays in PyTorch.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import uuid
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import settings

log = logging.getLogger(__name__)

ENGINE = "openvino"
VERSION = 1  # bump when the converted graph changes: older model files are then converted again
_PRECISION = {"fp32": "f32", "bf16": "bf16"}
_COMPILED: OrderedDict[tuple, tuple] = OrderedDict()  # (compiled part, its lock), most recent last
_KEEP = 4  # compiled parts kept in a process
_KEEP_FILES = 8  # model files kept in the cache folder (least recently used removed first)
_LOCK = threading.Lock()  # the app's sessions are threads: one builds a part while another may want it


def available() -> bool:
    """Whether OpenVINO is installed and has a CPU device."""
    try:
        return "CPU" in _core().available_devices
    except Exception:  # noqa: BLE001 - not installed, or a broken install: PyTorch runs everything
        return False


@functools.lru_cache(maxsize=1)
def _core():
    import openvino as ov

    return ov.Core()


class FrozenPart(torch.nn.Module):
    """Images in; the pooled features (``frozen_groups=None``) or the activations after the first
    ``frozen_groups`` groups out: exactly what ``TransferModel.forward_pooled`` / ``forward_body`` return."""

    def __init__(self, model: torch.nn.Module, frozen_groups: int | None):
        super().__init__()
        self.model, self.frozen_groups = model, frozen_groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.frozen_groups is None:
            return self.model.forward_pooled(x)
        return self.model.forward_body(x, 0, self.frozen_groups)


def part_key(model: torch.nn.Module, frozen_groups: int | None, input_size: int) -> str:
    """Hex key of the frozen part: its weights and buffers (bytes), where it ends and the image size."""
    groups = list(model.body) if frozen_groups is None else list(model.body)[:frozen_groups]
    h = hashlib.sha256(repr((VERSION, frozen_groups, input_size, len(model.body), _versions())).encode())
    for i, group in enumerate(groups):
        for name, tensor in group.state_dict().items():
            h.update(f"{i}.{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
            h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:32]


def _versions() -> tuple:
    """The libraries that shape the converted graph: a new release converts again."""
    from importlib.metadata import PackageNotFoundError, version

    def of(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return ""

    return tuple(of(name) for name in ("torch", "torchvision", "timm", "openvino"))


def model_dir() -> Path:
    return settings.cache_root() / "openvino"


def _converted(model: torch.nn.Module, spec, frozen_groups: int | None, key: str):
    """The OpenVINO model of the part: read from the cache folder, or converted and stored there."""
    import openvino as ov

    xml = model_dir() / f"{spec.name}-{key}.xml"
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        try:
            converted = _core().read_model(str(xml))
            os.utime(xml)  # its time is its last use
            return converted
        except Exception:  # noqa: BLE001 - a damaged file is converted again
            log.info("OpenVINO model %s unreadable: converting again", xml)
    size = spec.input_size
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the converter traces with torch.jit, deprecated upstream
        converted = ov.convert_model(FrozenPart(model.eval(), frozen_groups),
                                     example_input=torch.zeros(1, 3, size, size), input=[(-1, 3, size, size)])
    xml.parent.mkdir(parents=True, exist_ok=True)
    tmp = xml.with_name(f"{xml.stem}.{uuid.uuid4().hex}.tmp.xml")  # processes and threads never share one
    try:
        ov.save_model(converted, str(tmp), compress_to_fp16=False)  # the weights as they are, not halved
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))  # the weights first: a found .xml has its .bin
        os.replace(tmp, xml)
    finally:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
    _prune(keep=xml)
    return converted


def _prune(keep: Path) -> None:
    """Keep the ``_KEEP_FILES`` most recently used model files (each is as large as the part's weights)."""
    files = []
    for f in model_dir().glob("*.xml"):
        if ".tmp." in f.name:  # another process's file being written
            continue
        try:
            files.append((f.stat().st_mtime, f))
        except FileNotFoundError:  # another process removed it meanwhile
            continue
    for _mtime, f in sorted(files, reverse=True)[_KEEP_FILES:]:
        if f != keep:
            f.with_suffix(".bin").unlink(missing_ok=True)
            f.unlink(missing_ok=True)


def compiled(model: torch.nn.Module, spec, frozen_groups: int | None, precision: str,
             threads: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The frozen part of ``model`` as a function of an image batch, run by OpenVINO in ``precision``
    (``fp32`` or ``bf16``, its inference precision) on ``threads`` CPU threads (PyTorch's count)."""
    threads = threads or torch.get_num_threads()
    key = part_key(model, frozen_groups, spec.input_size)
    slot = (key, precision, threads)
    with _LOCK:
        if slot not in _COMPILED:
            config = {"INFERENCE_PRECISION_HINT": _PRECISION[precision], "PERFORMANCE_HINT": "LATENCY",
                      "INFERENCE_NUM_THREADS": threads}
            _COMPILED[slot] = (_core().compile_model(_converted(model, spec, frozen_groups, key), "CPU", config),
                               threading.Lock())
            while len(_COMPILED) > _KEEP:
                _COMPILED.popitem(last=False)
        _COMPILED.move_to_end(slot)
        net, busy = _COMPILED[slot]

    def run(x: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(x.detach().float().cpu().numpy())
        with busy:  # a compiled model calls through one inference request: one caller at a time
            out = net(batch)[0]
            return torch.from_numpy(np.array(out, dtype=np.float32, copy=True))

    return run
