"""int8 models: static quantization of an exported ONNX graph with onnxruntime's tools, calibrated
on the run's own training images, and measured against the full (fp32) model before it is kept.

Weights are int8 per output channel, activations uint8 with ranges observed on the calibration
images (QDQ format, which onnxruntime fuses into integer kernels, in Python and in the browser).
The final softmax stays in float: quantized probabilities would move in steps of 1/255. An int8
model can lose accuracy badly (one published case fell from 81.5% to 11.9%), so the test
accuracy of both models is measured on the run's test photos, with the file size and the speed
here, and a loss of more than ``MAX_LOSS`` is refused unless the caller accepts it.
"""

from __future__ import annotations

import os
import tempfile
import time
from itertools import zip_longest
from pathlib import Path

import numpy as np

from .errors import RunError
from .i18n import _
from .imaging import ImageReadError
from .runs import RunDir, read_json
from .serving import pixels
from .splits import split_from_json

CALIBRATION_IMAGES = 128
MAX_LOSS = 0.01  # one point of test accuracy
BATCH = 16


class QuantizationLoss(RunError):
    """The int8 model loses more than ``MAX_LOSS`` of test accuracy; ``comparison`` says by how much."""

    def __init__(self, message: str, comparison: dict):
        super().__init__(message)
        self.comparison = comparison


def _decoded(items, pre, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``limit`` readable images as model views ``[N, S, S, 3]`` uint8, and their labels."""
    views, labels = [], []
    for it in items:
        if len(views) >= limit:
            break
        try:
            views.append(pixels(it.path, pre))
            labels.append(it.label)
        except (ImageReadError, OSError):
            continue
    return np.stack(views) if views else np.zeros((0, pre.crop, pre.crop, 3), np.uint8), np.array(labels, int)


def run_images(run: RunDir, pre, part: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """A split of the run, decoded as the app does it; training images round robin over the classes
    (so a capped calibration set still shows every class)."""
    items = split_from_json(read_json(run.split_file, {}))[part]
    if part == "train":
        by_class: dict[int, list] = {}
        for it in items:
            by_class.setdefault(it.label, []).append(it)
        items = [it for row in zip_longest(*by_class.values()) for it in row if it is not None]
    return _decoded(items, pre, limit)


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over batches of training images."""

    def __init__(self, images: np.ndarray):
        self.batches = iter([{"images": images[i:i + BATCH]} for i in range(0, len(images), BATCH)])

    def get_next(self):
        return next(self.batches, None)


def quantize_file(src: Path, dst: Path, calibration: np.ndarray) -> None:
    """Static int8 quantization of ``src`` into ``dst``, ranges from ``calibration`` (uint8 NHWC)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) == 0:
        raise RunError(_("no training image of this run can be read, so there is nothing to calibrate the int8 "
                         "model on; export without int8, or restore the training images"))
    with tempfile.TemporaryDirectory(prefix="tl-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        softmax = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Softmax"]
        quantize_static(str(prepared), str(dst), _Reader(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=softmax)


def measure(model: Path, images: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """Test accuracy, file size and images/s of an ONNX model here; and its predicted classes."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    run = lambda x: session.run(None, {"images": x})[0]  # noqa: E731
    run(images[:2])  # warm-up: the first call prepares kernels
    start = time.perf_counter()
    probs = np.concatenate([run(images[i:i + BATCH]) for i in range(0, len(images), BATCH)])
    seconds = time.perf_counter() - start
    pred = probs.argmax(1)
    return {"accuracy": round(float((pred == labels).mean()), 4), "images": int(len(labels)),
            "bytes": os.path.getsize(model), "images_per_second": round(len(images) / max(seconds, 1e-9), 1)}, pred


def compare(fp32: Path, int8: Path, images: np.ndarray, labels: np.ndarray) -> dict:
    """Both models side by side on the same test images."""
    a, pred_a = measure(fp32, images, labels)
    b, pred_b = measure(int8, images, labels)
    return {"fp32": a, "int8": b, "loss_points": round(100 * (a["accuracy"] - b["accuracy"]), 2),
            "top1_agreement": round(float((pred_a == pred_b).mean()), 4),
            "size_ratio": round(a["bytes"] / b["bytes"], 2),
            "speed_ratio": round(b["images_per_second"] / max(a["images_per_second"], 1e-9), 2),
            "summary": {"fp32": f"{a['accuracy']:.1%}", "int8": f"{b['accuracy']:.1%}",
                        "ratio": f"{a['bytes'] / b['bytes']:.1f}"}}


def quantize_bundle(run: RunDir, model: Path, pre, accept_loss: bool = False, max_loss: float = MAX_LOSS) -> dict:
    """Replace the bundle's fp32 ``model`` by its int8 version, measured first.

    Raises:
        QuantizationLoss: the int8 model loses more than ``max_loss`` test accuracy and
            ``accept_loss`` is false (``model`` is left as it was).
    """
    calibration, _labels = run_images(run, pre, "train", CALIBRATION_IMAGES)
    images, labels = run_images(run, pre, "test", 10_000)
    if len(images) == 0:
        images, labels = run_images(run, pre, "val", 10_000)
    if len(images) == 0:
        raise RunError(_("no test or validation image of this run can be read, so the int8 model cannot be "
                         "measured; export without int8, or restore the images"))
    int8 = model.with_name("model.int8.onnx")
    quantize_file(model, int8, calibration)
    result = compare(model, int8, images, labels)
    result.update(calibration_images=int(len(calibration)), method=_METHOD, max_loss_points=100 * max_loss)
    if result["loss_points"] > 100 * max_loss + 1e-9 and not accept_loss:
        int8.unlink()
        raise QuantizationLoss(_("the int8 model loses {loss:.1f} points of test accuracy ({fp32} -> {int8} on {n} "
                                 "test photos), more than {max:.0f}; nothing was written. Keep the full model, or "
                                 "accept the loss (--accept-loss, or confirm on the Evaluate page)",
                                 loss=result["loss_points"], fp32=result["summary"]["fp32"],
                                 int8=result["summary"]["int8"], n=len(labels), max=100 * max_loss), result)
    result["accepted_loss"] = result["loss_points"] > 100 * max_loss + 1e-9
    int8.replace(model)
    return result


_METHOD = "onnxruntime static quantization, QDQ, int8 per-channel weights, uint8 activations (MinMax), float softmax"
