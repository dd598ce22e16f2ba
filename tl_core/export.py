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
from .errors import ConfigError, RunError
from .i18n import _
from .imaging import BASE_FORMATS, ImageReadError
from .numerics import FP32, Numerics
from .predict import Predictor
from .runs import RunDir, read_json, write_json_atomic
from .serving import BUNDLE_FILE, FORMATS, BundlePredictor, is_bundle
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
        if fmt == "onnx":
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


def export_run(run_dir: str | Path, fmt: str, out_dir: str | Path, which: str = "best") -> dict:
    """Write the bundle of a run to ``out_dir`` and return its ``bundle.json`` (with the parity result).

    Raises:
        ConfigError: unknown format, or ``out_dir`` holds something that is not a bundle.
        RunError: the run has no checkpoint, or the exported model disagrees with the app.
    """
    if fmt not in FORMATS:
        raise ConfigError(_("unknown export format {fmt!r}; choose one of {names}", fmt=fmt, names=', '.join(FORMATS)))
    run, out = RunDir.open(run_dir), Path(out_dir)
    if out.exists() and any(out.iterdir()) and not is_bundle(out):
        raise ConfigError(_("{out} exists and is not an exported bundle; choose an empty or new folder", out=out))
    if not run.checkpoint(which).is_file():
        raise RunError(_("{path} has no {which} checkpoint yet; train it (or wait for its first epoch)",
                         path=run.path, which=which))
    # A bundle computes in fp32 on any device; the gate compares it with the app's predictor in fp32
    # (same weights). The run's own numerics (bf16 here) are compared and recorded beside it.
    predictor = Predictor.from_run(run.path, which, device="cpu", numerics=Numerics())  # export traces on the CPU
    in_run = Predictor(predictor.model, predictor.labels, predictor.pre, predictor.channels_last, "cpu",
                       Numerics.from_dict(ckpt_numerics(run, which)))
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
        info["numerics"] = {"run": in_run.numerics.precision, "bundle": FP32}
        if in_run.numerics.precision != FP32:  # what a user of the app saw against what the bundle says
            info["numerics"]["vs_run_numerics"] = check_parity(in_run, bundle, readable)
        if not info["parity"]["top1_equal"] or info["parity"]["max_abs_diff"] > PARITY_TOLERANCE:
            raise RunError(_("exported model disagrees with the app: {parity}; nothing was written",
                             parity=info['parity']))
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


def ckpt_numerics(run: RunDir, which: str) -> dict:
    """The numerics recorded with a run's checkpoint (fp32 for runs from before they were recorded)."""
    from .checkpoints import load_checkpoint

    return load_checkpoint(run.checkpoint(which)).get("numerics") or {}


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


def _not_sure_section(info: dict) -> str:
    cal = info.get("calibration")
    if not cal:
        return ""
    return f"""
## Saying "not sure"
The probabilities are the network's own. Fitted on the validation images: divide their logarithm by the
temperature {cal["temperature"]} and take the softmax again (`p = softmax(log(probs) / {cal["temperature"]})`) for
honest confidences; when the largest is below {cal["not_sure_below"]}, answer "not sure" (the app does this).
"""


def _numerics_note(info: dict) -> str:
    """The run trained in bf16 (say): the bundle computes in fp32; how far the two answers are apart."""
    n = info.get("numerics") or {}
    vs = n.get("vs_run_numerics")
    if not vs:
        return ""
    return (f"\nThe app computed this run's frozen features in {n['run']}; the bundle computes in {n['bundle']} "
            f"(checked against the app in {n['bundle']} above). Against the app in {n['run']}: top-1 "
            f"{'equal' if vs['top1_equal'] else 'DIFFERENT'}, largest probability difference "
            f"{vs['max_abs_diff']:.2e}.\n")


def model_card(info: dict) -> str:
    """The bundle's README.md: what the model is, how well it did, and how to feed it."""
    pre, size = info["preprocess"], info["input"]["size"][0]
    metrics = "\n".join(f"- {part}: accuracy {m['accuracy']:.1%} on {m.get('n', '?')} images"
                        + (f", macro F1 {m['macro_f1']:.3f}" if "macro_f1" in m else "")
                        for part, m in info["metrics"].items()) or "- not evaluated"
    counts = ", ".join(f"{k} ({v})" for k, v in info["train_images_per_class"].items()) or "unknown"
    p = info["parity"]
    call = ('import onnxruntime as ort\nsession = ort.InferenceSession("model.onnx")\n'
            'probs = session.run(None, {"images": batch})[0]' if info["format"] == "onnx" else
            'import torch\nmodel = torch.jit.load("model.pt")\nwith torch.no_grad():\n'
            '    probs = model(torch.from_numpy(batch.copy())).numpy()')
    return f"""# Image classifier: {", ".join(info["labels"])}

Exported {info["created"]} from run `{info["run_id"]}` ({info["checkpoint"]} checkpoint) as {info["format"]}.

## Model
- Pretrained backbone: `{info["backbone"]}` (ImageNet weights), transfer scenario {info["scenario"]},
  {info["frozen_fraction"]:.0%} of the backbone's parameters frozen; a new head for {len(info["labels"])} classes.
- Training data: `{info["data"]}`; training images per class: {counts}.

## Metrics
{metrics}

{_not_sure_section(info)}
## Input and output
- Input `images`: uint8, RGB, layout NHWC, shape `[N, {size}, {size}, 3]`. Scaling to 0..1 and the
  normalisation (mean {pre["mean"]}, std {pre["std"]}) happen inside the graph.
- Output `probs`: float32 `[N, {len(info["labels"])}]`, class probabilities in the order of `labels` in `bundle.json`.

## Preprocessing rule (do exactly this, or predictions drift)
1. Decode to 8-bit RGB, applying the EXIF orientation; transparent pixels become white.
2. Resize so the shorter side is {pre["resize"]} px ({pre["interpolation"]}, antialiased), keeping the
   aspect ratio (the long side is capped at {8 * pre["resize"]} px).
3. Centre-crop {size} x {size}.

The app decodes JPEGs with Pillow's reduced-size decoding (`draft`) when the result still has at
least {pre["resize"]} px on the short side, and resizes with torchvision's uint8 kernel. This recipe
gives identical pixels (Pillow's own `resize` is within 2 levels per pixel, also fine):

```python
import numpy as np
from PIL import Image, ImageOps
from torchvision.transforms.v2 import functional as F

img = Image.open(path, formats={list(BASE_FORMATS)})  # never EPS or other decoders
if img.format == "JPEG":
    img.draft("RGB", ({pre["resize"]}, {pre["resize"]}))
img = ImageOps.exif_transpose(img).convert("RGB")
x = F.resize(F.pil_to_tensor(img), [{pre["resize"]}], interpolation=F.InterpolationMode.{pre["interpolation"].upper()},
             antialias=True, max_size={8 * pre["resize"]})
batch = F.center_crop(x, [{size}, {size}]).permute(1, 2, 0).numpy()[None]
{call}
```

Or, with this project installed: `python -m tl_core predict THIS_FOLDER image.jpg`.

## Parity check (run at export)
{p["images"]} images through the app's predictor and through this file: top-1
{"equal" if p["top1_equal"] else "DIFFERENT"}, largest probability difference {p["max_abs_diff"]:.2e} (tolerance {p["tolerance"]:.0e}).
{_numerics_note(info)}
## Limits
Trained on the classes above only: any picture gets one of these labels, however unrelated. Accuracy
is measured on images like the training ones; other cameras, lighting or backgrounds may do worse.
"""


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


def describe(info: dict) -> str:
    p = info["parity"]
    return (f"{info['format']} bundle, input uint8 NHWC {info['input']['size'][0]}x{info['input']['size'][1]}; "
            f"parity on {p['images']} images: top-1 {'equal' if p['top1_equal'] else 'different'}, "
            f"max |diff| {p['max_abs_diff']:.1e}")

