"""Export a trained run as a self-contained bundle that predicts exactly what the app predicts.

A bundle is a folder: the model file (ONNX or TorchScript), ``bundle.json`` and a model card
``README.md``. The graph takes what any image library produces, a uint8 RGB batch in NHWC layout of
``S x S`` pixels, and returns class probabilities ``[N, C]``; scaling and normalisation are inside
the graph. Resizing stays outside, written down in the card, because the in-graph resize operators
of ONNX/TorchScript do not reproduce Pillow's antialiased resize to within 1e-4.

Every export runs a parity check: the same sample images through the in-app ``Predictor`` and
through the exported file (onnxruntime / TorchScript); it must agree on the top-1 class and to
within ``PARITY_TOLERANCE`` on every probability, or no bundle is written.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections import Counter
from itertools import zip_longest
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .backbones import Preprocess
from .card import describe, model_card  # noqa: F401 - describe is part of this module's API
from .errors import ConfigError, RunError
from .i18n import _
from .imaging import ImageReadError
from .numerics import FP32, Numerics
from .predict import Predictor
from .runs import RunDir, read_json, write_json_atomic
from .serving import BUNDLE_FILE, FORMATS, ONNX_FORMATS, BundlePredictor, is_bundle
from .splits import split_from_json
from .transforms import load_for

PARITY_TOLERANCE = 1e-4


class ExportGraph(nn.Module):
    """uint8 NHWC RGB ``[N, S, S, 3]`` -> class probabilities ``[N, C]``, normalisation inside."""

    def __init__(self, model: nn.Module, pre: Preprocess):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(pre.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(pre.std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # The same operations, in the same order, as ToDtype(scale=True) + Normalize in training.
        x = images.permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return torch.softmax(self.model((x - self.mean) / self.std), 1)


def _sample_images(run: RunDir, n: int = 8) -> list[str]:
    """Up to ``n`` readable images of the run (test split first), for the parity check."""
    split = split_from_json(read_json(run.split_file, {}))
    by_class: dict[int, list[str]] = {}
    for part in ("test", "val", "train"):
        for it in split[part]:
            by_class.setdefault(it.label, []).append(it.path)
    # Round robin over the classes, so every class is represented.
    order = [p for row in zip_longest(*by_class.values()) for p in row if p is not None]
    return [p for p in order[: 4 * n] if Path(p).is_file()][:n]


def _write_model(graph: ExportGraph, fmt: str, file: Path, size: int) -> None:
    example = torch.randint(0, 256, (2, size, size, 3), dtype=torch.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer / legacy-exporter deprecation chatter
        if fmt in ONNX_FORMATS:
            torch.onnx.export(graph, (example,), str(file), dynamo=False, input_names=["images"],
                              output_names=["probs"], dynamic_axes={"images": {0: "n"}, "probs": {0: "n"}},
                              opset_version=17)
        else:
            torch.jit.trace(graph, example, check_trace=False).save(str(file))


def check_parity(predictor: Predictor, bundle: BundlePredictor, images: list) -> dict:
    """Both predictors on the same images: top-1 agreement and the largest probability difference."""
    a, b = predictor.probs(images), bundle.probs(images)
    return {"images": len(images), "top1_equal": bool((a.argmax(1) == b.argmax(1)).all()),
            "max_abs_diff": float((a - b).abs().max()), "tolerance": PARITY_TOLERANCE}


def export_run(run_dir: str | Path, fmt: str, out_dir: str | Path, which: str = "best", quantize: str | None = None,
               accept_loss: bool = False) -> dict:
    """Write the bundle of a run to ``out_dir`` and return its ``bundle.json`` (with the parity result).

    ``fmt`` "web" adds ``index.html`` (see ``webexport``); ``quantize="int8"`` (ONNX and web) replaces
    the model by its int8 version after measuring both (see ``quantize``).

    Raises:
        ConfigError: unknown format or quantization, or ``out_dir`` holds something that is not a bundle.
        RunError: the run has no checkpoint, or the exported model disagrees with the app.
        QuantizationLoss: int8 loses more than a point of test accuracy and ``accept_loss`` is false.
    """
    if fmt not in FORMATS:
        raise ConfigError(_("unknown export format {fmt!r}; choose one of {names}", fmt=fmt, names=', '.join(FORMATS)))
    if quantize not in (None, "int8") or (quantize and fmt not in ONNX_FORMATS):
        raise ConfigError(_("quantization {q!r} is not available for {fmt}; int8 works for the onnx and web formats",
                            q=quantize, fmt=fmt))
    started = time.perf_counter()
    run, out = RunDir.open(run_dir), Path(out_dir)
    if out.exists() and any(out.iterdir()) and not is_bundle(out):
        raise ConfigError(_("{out} exists and is not an exported bundle; choose an empty or new folder", out=out))
    if not run.checkpoint(which).is_file():
        raise RunError(_("{path} has no {which} checkpoint yet; train it (or wait for its first epoch)",
                         path=run.path, which=which))
    # A bundle computes in fp32 on any device; the gate compares it with the app's predictor in fp32
    # (same weights). The run's own numerics (bf16, OpenVINO here) are compared and recorded beside it.
    predictor = Predictor.from_run(run.path, which, device="cpu", numerics=Numerics())  # export traces on the CPU
    in_run = Predictor.from_run(run.path, which, device="cpu")
    pre, size = predictor.pre, predictor.pre.crop
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out.parent if out.parent.exists() else None))
    try:
        _write_model(ExportGraph(predictor.model, pre).eval(), fmt, tmp / FORMATS[fmt], size)
        info = _bundle_info(run, fmt, predictor, which)
        write_json_atomic(tmp / BUNDLE_FILE, info)
        images = _sample_images(run)
        readable = []
        for p in images:
            try:
                readable.append(load_for(p, pre))
            except ImageReadError:
                continue
        rng = np.random.default_rng(0)  # plus noise images, so a run without its data still gets checked
        from PIL import Image

        readable += [Image.fromarray(rng.integers(0, 256, (size + 13, size + 40, 3), dtype=np.uint8))
                     for _noise in range(2)]
        bundle = BundlePredictor(tmp, trust=True)
        info["parity"] = check_parity(predictor, bundle, readable)
        info["numerics"] = {"run": in_run.numerics.label, "bundle": FP32}
        if in_run.numerics.label != FP32:  # what a user of the app saw against what the bundle says
            info["numerics"]["vs_run_numerics"] = check_parity(in_run, bundle, readable)
        if not info["parity"]["top1_equal"] or info["parity"]["max_abs_diff"] > PARITY_TOLERANCE:
            raise RunError(_("exported model disagrees with the app: {parity}; nothing was written",
                             parity=info['parity']))
        _finish(run, tmp, info, quantize, accept_loss, predictor.pre)
        info["export_seconds"] = round(time.perf_counter() - started, 1)
        write_json_atomic(tmp / BUNDLE_FILE, info)
        (tmp / "README.md").write_text(model_card(info))
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.chmod(0o755)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def _finish(run: RunDir, tmp: Path, info: dict, quantize: str | None, accept_loss: bool, pre: Preprocess) -> None:
    """After the parity check: the int8 model (measured against fp32), then the web page around it."""
    if quantize:
        from .quantize import quantize_bundle

        info["quantization"] = {"type": quantize, **quantize_bundle(run, tmp / info["model_file"], pre, accept_loss)}
    if info["format"] == "web":
        from .webexport import write_page

        write_page(tmp, info)


def _bundle_info(run: RunDir, fmt: str, predictor: Predictor, which: str) -> dict:
    cfg, ev, status = read_json(run.config_file, {}), read_json(run.eval_file, {}), run.status()
    result = status.get("result") or {}
    counts = Counter(predictor.labels[it.label] for it in split_from_json(read_json(run.split_file, {}))["train"])
    return {
        "format": fmt, "model_file": FORMATS[fmt], "labels": predictor.labels,
        "input": {"layout": "NHWC", "dtype": "uint8", "size": [predictor.pre.crop, predictor.pre.crop],
                  "channels": "RGB"},
        "output": {"name": "probs", "shape": ["N", len(predictor.labels)], "meaning": "class probabilities"},
        "preprocess": predictor.pre.to_dict(),
        "backbone": cfg.get("backbone"), "scenario": cfg.get("scenario"),
        "frozen_fraction": result.get("frozen_fraction", cfg.get("frozen_fraction")),
        # The data set's name only: a bundle is shared, the server's folder layout is nobody's business.
        "data": Path(cfg.get("data") or "").name, "train_images_per_class": dict(counts),
        "metrics": {part: {k: ev[part][k] for k in ("accuracy", "macro_f1", "n") if k in ev[part]}
                    for part in ("val", "test") if isinstance(ev.get(part), dict)},
        "run_id": run.id, "checkpoint": which, "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "torch": torch.__version__, **_calibration(run),
    }


def _calibration(run: RunDir) -> dict:
    """The run's temperature and "not sure" threshold (fitted on its validation images), if any."""
    cal = read_json(run.path / "calibration.json")
    return {"calibration": {"temperature": cal["temperature"], "not_sure_below": cal["threshold"]}} if cal else {}


def zip_bundle(folder: str | Path) -> bytes:
    """The bundle folder as zip bytes (for a browser download)."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(Path(folder).iterdir()):
            if f.is_file():
                zf.write(f, f"{Path(folder).name}/{f.name}")
    return buf.getvalue()
