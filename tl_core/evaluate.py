"""Accuracy, per-class precision/recall/F1, confusion matrix and the list of mistakes."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from .backbones import BackboneSpec
from .data import Item
from .numerics import FP32, autocast
from .i18n import _
from .transforms import ImageDataset, eval_transform


@torch.inference_mode()
def predict_probs(model, items: list[Item], spec: BackboneSpec, batch_size: int = 32,
                  precision: str = FP32) -> torch.Tensor:
    """Class probabilities ``[N, C]`` for the images of ``items``: of a ``Predictor`` in its own
    numerics (engine included), or of a bare ``model`` in ``precision``."""
    from .numerics import Numerics
    from .predict import Predictor

    if not isinstance(model, Predictor):
        model = Predictor(model, [], spec.preprocess, spec.channels_last, next(model.parameters()).device,
                          Numerics(precision))
    loader = DataLoader(ImageDataset(items, eval_transform(spec.preprocess), spec.preprocess),
                        batch_size=batch_size, shuffle=False)
    out = [torch.softmax(model.logits(x.to(model.device)), 1).cpu() for x, _labels, _index in loader]
    return torch.cat(out) if out else torch.zeros(0, 0)


@torch.inference_mode()
def chunked_probs(model, forward, inputs: torch.Tensor, chunk: int, precision: str = FP32) -> torch.Tensor:
    """Class probabilities of cached inputs (features or activations) through ``forward``, in chunks."""
    model.eval()
    device = next(model.parameters()).device
    with autocast(device, precision):
        logits = [forward(x.to(device)).float() for x in torch.split(inputs, chunk)]
    return torch.softmax(torch.cat(logits).float(), 1).cpu() if logits else torch.zeros(0, 0)


def compute_metrics(items: list[Item], probs: torch.Tensor, classes: list[str]) -> dict:
    """Metrics of predictions ``probs`` against the items' labels."""
    n_cls = len(classes)
    y = torch.tensor([it.label for it in items], dtype=torch.long)
    conf, pred = probs.max(1) if len(items) else (torch.zeros(0), torch.zeros(0, dtype=torch.long))
    cm = torch.zeros(n_cls, n_cls, dtype=torch.long)
    for t, p in zip(y.tolist(), pred.tolist()):
        cm[t, p] += 1
    per_class = []
    for i, name in enumerate(classes):
        tp = cm[i, i].item()
        support, predicted = cm[i].sum().item(), cm[:, i].sum().item()
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": support})
    mistakes = [{"path": it.path, "true": classes[it.label], "pred": classes[p], "confidence": c}
                for it, p, c in zip(items, pred.tolist(), conf.tolist()) if p != it.label]
    mistakes.sort(key=lambda m: -m["confidence"])
    with_support = [c for c in per_class if c["support"]]
    true_probs = probs[torch.arange(len(items)), y] if len(items) else torch.zeros(0)
    return {
        "n": len(items),
        # Mean -log p(true class): how sure the model is of the right answers, not only how often.
        "log_loss": float(-true_probs.double().clamp_min(1e-12).log().mean()) if len(items) else None,
        "accuracy": (cm.trace().item() / len(items)) if len(items) else None,
        "macro_f1": sum(c["f1"] for c in with_support) / len(with_support) if with_support else None,
        "classes": classes,
        "per_class": per_class,
        "confusion": cm.tolist(),
        "misclassified": mistakes,
    }


def evaluate_run(run_dir, data: str | None = None, batch_size: int = 32) -> dict:
    """Evaluate a run's best checkpoint on its saved test split, or on another folder ``data``."""
    from .backbones import get_backbone
    from .data import scan_folder, validate
    from .errors import DatasetError
    from .predict import Predictor
    from .runs import RunDir, read_json, write_json_atomic
    from .splits import remap_labels, split_from_json

    run = RunDir.open(run_dir)
    predictor = Predictor.from_run(run.path)
    spec = get_backbone(read_json(run.config_file)["backbone"])
    if data:
        scan = validate(scan_folder(data))[1]
        items = remap_labels(scan, predictor.labels)
    else:
        items = split_from_json(read_json(run.split_file, {}))["test"]
    if not items:
        raise DatasetError(_("nothing to evaluate: the run has no test split; pass --data DIR with labelled images"))
    probs = predict_probs(predictor, items, spec, batch_size)
    metrics = compute_metrics(items, probs, predictor.labels)
    if not data:
        write_json_atomic(run.eval_file, {**read_json(run.eval_file, {}), "test": metrics})
    return metrics
