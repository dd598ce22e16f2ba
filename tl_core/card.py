"""The model card (``README.md``) of an exported bundle and its one-line description."""

from __future__ import annotations

from .imaging import BASE_FORMATS
from .serving import ONNX_FORMATS


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


def _extras_section(info: dict) -> str:
    """The card's words about the int8 model and the web page, when the bundle has them."""
    out, q = "", info.get("quantization")
    if q:
        a, b = q["fp32"], q["int8"]
        out += f"""
## int8 model (measured at export on {a["images"]} test images, this computer)
| | fp32 | int8 |
|---|---|---|
| test accuracy | {a["accuracy"]:.1%} | {b["accuracy"]:.1%} |
| file size | {a["bytes"] / 1e6:.1f} MB | {b["bytes"] / 1e6:.1f} MB |
| images/s | {a["images_per_second"]} | {b["images_per_second"]} |

{q["method"]}; calibrated on {q["calibration_images"]} training images. Same top-1 as fp32 on
{q["top1_agreement"]:.1%} of the test images.{" The loss was accepted at export." if q.get("accepted_loss") else ""}
The parity check below is the fp32 graph's; int8 answers differ from the app's by design.
"""
    if info["format"] == "web":
        out += """
## Web page
Open `index.html` (double-click; no server, no internet): photos or the live camera, classified on the
device with onnxruntime-web (single-threaded WebAssembly). No image leaves the device.
"""
    return out


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
            'probs = session.run(None, {"images": batch})[0]' if info["format"] in ONNX_FORMATS else
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

{_not_sure_section(info)}{_extras_section(info)}
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


def describe(info: dict) -> str:
    p = info["parity"]
    return (f"{info['format']} bundle, input uint8 NHWC {info['input']['size'][0]}x{info['input']['size'][1]}; "
            f"parity on {p['images']} images: top-1 {'equal' if p['top1_equal'] else 'different'}, "
            f"max |diff| {p['max_abs_diff']:.1e}" + _int8_line(info))


def _int8_line(info: dict) -> str:
    q = info.get("quantization")
    if not q:
        return ""
    a, b = q["fp32"], q["int8"]
    return (f"\nint8 vs fp32 on {a['images']} test images: accuracy {b['accuracy']:.1%} vs {a['accuracy']:.1%}, "
            f"size {b['bytes'] / 1e6:.1f} vs {a['bytes'] / 1e6:.1f} MB, {b['images_per_second']} vs "
            f"{a['images_per_second']} images/s")

