"""The numerics of every forward pass: fp32, or bf16 autocast where this machine does it natively,
chosen by measurement and recorded in each run.

One owner: this module decides the precision (``choose``), runs it (``autocast``) and remembers
what it measured (``numerics.json`` in the cache folder, one entry per backbone and machine). A run
records its choice in ``numerics.json`` and in its checkpoints; its feature cache, its evaluation,
prediction and Grad-CAM use that same choice.

bf16 is a candidate only on CPUs with native bf16 (AVX-512 bf16 or AMX): elsewhere it was measured
5-50x slower. It is chosen only when its features agree with fp32 within ``MAX_FEATURE_ERROR`` and
the ImageNet top-1 class holds (the guardrail; the benchmark checks that heads trained on either
keep their accuracy), separately for the frozen work (``precision``: a forward pass measured faster)
and for fine-tuning steps (``train_precision``: a training step measured faster).

The frozen work can also run on another engine: OpenVINO (``ovengine``), where installed, compiles
the frozen part for this CPU in fp32 or bf16. It is measured beside PyTorch with the same guardrail
and chosen when it is the fastest; ``frozen_forward`` is the one place that runs a frozen part, so
the feature cache, evaluation and prediction of a run all compute it the same way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import ovengine, settings
from .errors import RunError
from .i18n import _

log = logging.getLogger(__name__)

FP32, BF16, FP16 = "fp32", "bf16", "fp16"
TORCH, OPENVINO = "torch", ovengine.ENGINE
NUMERICS_FILE = "numerics.json"
MAX_FEATURE_ERROR = 0.10  # relative L2 error of pooled features: lite0 bf16 3.6-7.9% on photos, heads held
MIN_AGREEMENT = 0.9  # share of the sample whose ImageNet top-1 class stays the same (1 of 16 may flip:
# with 8 photos one near-tie flip was 12.5% and OpenVINO bf16 was refused although heads held within 0.2 points)
MIN_SPEEDUP = 1.1  # below this the difference is within this machine's noise: keep fp32


@dataclass(frozen=True)
class Numerics:
    """How a run computes on ``device``: ``precision`` of the frozen work and of every inference pass
    (features, prefix activations, evaluation, prediction, Grad-CAM), ``train_precision`` of
    fine-tuning steps; ``fp32`` = no autocast."""

    precision: str = FP32
    device: str = "cpu"
    reason: str = ""
    train_precision: str = FP32
    engine: str = TORCH  # what runs the frozen part: PyTorch, or OpenVINO (``ovengine``) in ``precision``

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def label(self) -> str:
        """``"bf16"`` for PyTorch, ``"openvino:bf16"`` for another engine (``split_label`` reads it back)."""
        return self.precision if self.engine == TORCH else f"{self.engine}:{self.precision}"

    @classmethod
    def from_dict(cls, data: dict | None) -> "Numerics":
        """A recorded choice; runs from before numerics were recorded computed in fp32."""
        data = data or {}
        return cls(data.get("precision", FP32), data.get("device", "cpu"), data.get("reason", ""),
                   data.get("train_precision", FP32), data.get("engine", TORCH))


def bf16_native() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 bf16 or AMX), as the kernel and oneDNN say."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    has_flag = "avx512_bf16" in flags or "amx_bf16" in flags
    if platform.system() != "Linux":  # no cpuinfo to read: trust oneDNN alone
        has_flag = True
    return has_flag and bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def candidates(device: torch.device | str = "cpu") -> list[str]:
    """The precisions worth measuring on ``device``."""
    if torch.device(device).type == "cuda":
        return [BF16 if torch.cuda.is_bf16_supported() else FP16]
    return [FP32, BF16] if bf16_native() else [FP32]


def engine_candidates() -> list[str]:
    """The frozen work's other engines worth measuring here, as ``engine:precision`` labels."""
    if not ovengine.available():
        return []
    return [f"{OPENVINO}:{p}" for p in candidates()]


def split_label(label: str) -> tuple[str, str]:
    """``"openvino:bf16"`` -> ``("openvino", "bf16")``; a bare precision is PyTorch's."""
    engine, _sep, precision = label.rpartition(":")
    return engine or TORCH, precision


def frozen_forward(model: torch.nn.Module, spec, numerics: "Numerics", frozen_groups: int | None = None):
    """The frozen part of ``model`` (a ``TransferModel``) as ``numerics`` compute it: a function from
    an image batch to the pooled features (``frozen_groups=None``) or to the activations after the
    first ``frozen_groups`` groups, as float tensors on the model's device.

    Raises:
        RunError: the engine cannot build the part here (never a silent switch to PyTorch: the
            features would be filed and recorded under an engine that did not compute them).
    """
    device = next(model.parameters()).device
    if numerics.engine == OPENVINO and device.type == "cpu":
        try:
            run = ovengine.compiled(model, spec, frozen_groups, numerics.precision)
        except Exception as exc:  # noqa: BLE001 - any failure of the engine gets the same clear message
            raise RunError(_("OpenVINO could not build the frozen part of {backbone} ({exc}); set TL_ENGINE=torch "
                             "or run `python -m tl_core numerics` to measure again", backbone=spec.name,
                             exc=str(exc)[:300])) from None
        return run
    part = ovengine.FrozenPart(model, frozen_groups)

    def run_torch(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), autocast(device, numerics.precision):
            return part(x).float()

    return run_torch


def autocast(device: torch.device | str, precision: str = FP32):
    """The context a forward pass runs in: autocast to ``precision`` (bf16 or fp16), or nothing for fp32."""
    device = torch.device(device)
    if precision == FP32:
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == BF16 else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def _machine() -> str:
    """The key of this machine's measurements: a copied cache folder on another CPU measures again."""
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo_lines() if line.startswith("model name")), "")
    return f"{model or platform.processor()}|{torch.backends.cpu.get_cpu_capability()}|bf16={bf16_native()}"


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _file() -> Path:
    return settings.cache_root() / NUMERICS_FILE


def measured() -> dict:
    """Every measurement remembered on this machine: ``{backbone: {...}}``."""
    try:
        data = json.loads(_file().read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data.get("backbones", {}) if data.get("machine") == _machine() else {}


def _remember(backbone: str, result: dict) -> None:
    from .runs import write_json_atomic  # a unique temporary file: two measuring processes cannot collide

    _file().parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(_file(), {"machine": _machine(), "backbones": {**measured(), backbone: result}})


def _timed(fn, repeats: int) -> float:
    t0 = time.perf_counter()
    for _repeat in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


def _sample(spec, batch: int) -> torch.Tensor:
    """``batch`` photos of the bundled sample data, preprocessed for ``spec`` (natural images: their
    feature error is what a head sees); smooth random images when the sample is missing."""
    from .transforms import eval_transform, load_image

    files = sorted((settings.REPO / "sample_data").rglob("*.JPG"))[::7][:batch]
    if len(files) == batch:
        transform = eval_transform(spec.preprocess)
        return torch.stack([transform(load_image(str(f), spec.preprocess)) for f in files])
    g = torch.Generator().manual_seed(0)
    small = torch.rand(batch, 3, spec.input_size // 16, spec.input_size // 16, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(small, size=spec.input_size, mode="bilinear", align_corners=False)


def measure(spec, batch: int = 16, rounds: int = 3, network: torch.nn.Module | None = None) -> dict:
    """Time a forward pass and a training step in every candidate precision, and the frozen part's
    forward on every other engine (``engine_candidates``), interleaved, ``rounds`` times (medians);
    compare each one's pooled features and ImageNet top-1 classes with PyTorch fp32's. Remembered
    per backbone.

    Args:
        network: the pretrained ImageNet network of ``spec`` (its features make the guardrail
            meaningful); ``None`` loads it, or builds random weights when none are installed.
    """
    from .distributed import to_channels_last
    from .model import TransferModel

    pretrained = network is not None
    if network is None:
        try:
            network, pretrained = spec.load_pretrained(progress=False), True
        except Exception:  # noqa: BLE001 - no weights offline: random weights cost the same to run
            network = spec.build()
    net = to_channels_last(network.eval(), spec.channels_last)
    x = to_channels_last(_sample(spec, batch), spec.channels_last)
    body = _pooled(net)
    times: dict[str, dict[str, list[float]]] = {p: {"forward": [], "step": []} for p in candidates()}
    feats, top1 = {}, {}
    for p in times:  # warm-up, and the features and ImageNet classes of each precision
        with torch.inference_mode(), autocast("cpu", p):
            feats[p], top1[p] = body(x).float(), net(x).argmax(1)
    # Other engines run the frozen part as a run builds it (the same modules): pooled features.
    part = TransferModel(spec.groups(net), spec.feature_dim, 2).eval()
    engines = _engines(part, spec) if pretrained else {}  # random weights: no model file worth keeping
    with torch.inference_mode():
        reference = part.forward_pooled(x).float()
    classify = _imagenet_classifier(net, spec.feature_dim)
    for label, run in engines.items():
        feats[label] = run(x)
        top1[label] = classify(feats[label]).argmax(1) if classify else None
        times[label] = {"forward": []}
    for _round in range(rounds):
        for p in times:
            if p in engines:
                times[p]["forward"].append(_timed(lambda p=p: engines[p](x), 1))
                continue
            times[p]["forward"].append(_timed(lambda p=p: _forward(body, x, p), 1))
            times[p]["step"].append(_timed(lambda p=p: _step(net, x, p), 1))
    result = {"batch": batch, "precisions": {}, "engines": engine_candidates()}
    for p, t in times.items():
        ref = reference if p in engines else feats[FP32]
        err = float((feats[p] - ref).norm() / ref.norm().clamp_min(1e-12))
        agree = None if top1[p] is None else float((top1[p] == top1[FP32]).float().mean())
        result["precisions"][p] = {"forward_ips": round(batch / statistics.median(t["forward"]), 2),
                                   "feature_error": round(err, 5), "top1_agreement": agree}
        if t.get("step"):
            result["precisions"][p]["step_ips"] = round(batch / statistics.median(t["step"]), 2)
    result["choice"], result["reason"] = _pick(result["precisions"], "forward_ips")
    result["train_choice"], result["train_reason"] = _pick(result["precisions"], "step_ips")
    if pretrained:  # random weights make the guardrail meaningless: measured again once weights exist
        _remember(spec.name, result)
    return result


def _engines(part: torch.nn.Module, spec) -> dict:
    """The frozen ``part`` compiled by every other engine worth measuring; one that fails is left out."""
    engines = {}
    for label in engine_candidates():
        try:
            engines[label] = ovengine.compiled(part, spec, None, split_label(label)[1])
        except Exception as exc:  # noqa: BLE001 - an engine that cannot build this network is not a choice
            log.warning("%s could not compile %s: %s", label, spec.name, exc)
    return engines


def _imagenet_classifier(net: torch.nn.Module, dim: int):
    """The ImageNet classifier of ``net`` as a function of pooled features of size ``dim``, or
    ``None`` where it reads something else (VGG's classifier reads the 7x7 map, not the mean)."""
    layer = net.get_classifier() if hasattr(net, "get_classifier") else list(net.children())[-1]
    modules = list(layer) if isinstance(layer, torch.nn.Sequential) else [layer]
    passive = (torch.nn.Dropout, torch.nn.Flatten, torch.nn.Identity)
    if not (isinstance(modules[-1], torch.nn.Linear) and modules[-1].in_features == dim
            and all(isinstance(m, passive) for m in modules[:-1])):
        return None  # e.g. ConvNeXt's classifier normalises the map first: it is not a function of the mean

    def classify(features: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return modules[-1](features)

    return classify


def _pooled(net: torch.nn.Module):
    """The pooled features of the ImageNet network (what the head sees)."""
    if hasattr(net, "forward_features") and hasattr(net, "forward_head"):  # timm
        return lambda x: net.forward_head(net.forward_features(x), pre_logits=True)
    return lambda x: torch.flatten(torch.nn.Sequential(*list(net.children())[:-1])(x), 1)


@torch.inference_mode()
def _forward(body, x: torch.Tensor, precision: str) -> None:
    with autocast("cpu", precision):
        body(x)


def _step(net: torch.nn.Module, x: torch.Tensor, precision: str) -> None:
    """Forward and backward as fine-tuning runs them: BatchNorm keeps ImageNet's statistics (eval
    mode, the default ``bn_stats``), which costs differently in bf16 than batch statistics do."""
    with autocast("cpu", precision):
        loss = net(x).float().logsumexp(1).mean()
    loss.backward()
    net.zero_grad(set_to_none=True)


def _pick(results: dict, speed: str) -> tuple[str, str]:
    """The fastest candidate by ``speed`` (``forward_ips`` or ``step_ips``) that passes the
    guardrail and beats PyTorch fp32 by ``MIN_SPEEDUP``; fp32 otherwise, with the reasons."""
    base, best, rejected = results[FP32], None, []
    for label, r in results.items():
        if label == FP32 or speed not in r:
            continue
        speedup = r[speed] / base[speed]
        agree = r.get("top1_agreement")
        if r["feature_error"] > MAX_FEATURE_ERROR or (agree is not None and agree < MIN_AGREEMENT):
            top1 = "not checked" if agree is None else f"{agree:.0%}"
            rejected.append(f"{label}: features differ by {r['feature_error']:.1%} (limit {MAX_FEATURE_ERROR:.0%}), "
                            f"top-1 agreement {top1} (at least {MIN_AGREEMENT:.0%})")
        elif speedup < MIN_SPEEDUP:
            rejected.append(f"{label}: {speedup:.2f}x {speed}: not faster")
        elif best is None or speedup > best[1]:
            best = (label, speedup, r["feature_error"])
    if best:
        return best[0], f"{best[0]}: {best[1]:.2f}x {speed}, features within {best[2]:.1%}"
    return FP32, "; ".join(rejected) or "no native bf16 on this CPU"


def choose(spec, device: torch.device | str = "cpu") -> Numerics:
    """The numerics a new run of ``spec`` uses here: ``TL_PRECISION`` / ``TL_ENGINE`` when set, the
    GPU's mixed precision on CUDA, else this machine's measured choice (measured now when not yet known)."""
    device = torch.device(device)
    forced, forced_engine = settings.forced_precision(), settings.forced_engine()
    if forced or forced_engine:
        forced_numerics = Numerics(forced or FP32, device.type, "TL_PRECISION / TL_ENGINE", forced or FP32,
                                   forced_engine or TORCH)
        return for_device(forced_numerics, device)  # what can run here: a resume and the predictor agree
    if device.type == "cuda":
        return Numerics(candidates(device)[0], "cuda", "GPU mixed precision", candidates(device)[0])
    if candidates() == [FP32] and not engine_candidates():
        return Numerics(FP32, "cpu", "no native bf16 on this CPU")
    known = measured().get(spec.name)
    fresh = known and "train_choice" in known and known.get("engines", []) == engine_candidates()
    known = known if fresh else measure(spec)
    engine, precision = split_label(known["choice"])
    return Numerics(precision, "cpu", f"{known['reason']}; training: {known['train_reason']}",
                    known["train_choice"], engine)


def for_device(numerics: Numerics, device: torch.device | str) -> Numerics:
    """``numerics`` as they can run on ``device``: a recorded bf16 is honoured on a CPU only with
    native support, fp16 only on a GPU, OpenVINO only on a CPU where it is installed; else fp32 in
    PyTorch (same weights, features within the guardrail)."""
    device = torch.device(device)

    def runnable(precision: str) -> str:
        if device.type == "cuda" or precision == FP32 or (precision == BF16 and bf16_native()):
            return precision
        return FP32

    engine = numerics.engine if numerics.engine == TORCH or (device.type == "cpu" and ovengine.available()) \
        else TORCH
    return Numerics(runnable(numerics.precision), device.type, numerics.reason, runnable(numerics.train_precision),
                    engine)
