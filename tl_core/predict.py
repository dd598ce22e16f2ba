"""Top-k predictions from a trained run, or from the pretrained network as-is (ImageNet labels)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from . import checkpoints as ckpt
from .backbones import BackboneSpec, Preprocess, get_backbone
from .distributed import pick_device, to_channels_last
from .errors import RunError, TLError
from .i18n import _
from .model import build_model
from .numerics import TORCH, Numerics, autocast, for_device, frozen_forward
from .runs import RunDir
from .transforms import crop_transform, eval_transform, load_image

ImageLike = str | Path | bytes | Image.Image
log = logging.getLogger(__name__)


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, in the order every registered backbone's classifier uses."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


class Predictor:
    """A model loaded once, answering top-k queries for images (paths, bytes or PIL images), in the
    numerics its head was trained on (fp32 unless given).

    A trained run whose numerics run the frozen part on another engine (OpenVINO) computes the
    ``cached_groups`` leading groups there, as its feature cache held them when the checkpoint was
    trained (all groups: pooled features; some: the frozen prefix), and the rest in PyTorch. Where the
    engine cannot run here, PyTorch computes everything and ``numerics.engine`` says so."""

    def __init__(self, model: torch.nn.Module, labels: list[str], pre: Preprocess, channels_last: bool = False,
                 device: torch.device | str | None = None, numerics: Numerics | None = None,
                 spec: BackboneSpec | None = None, cached_groups: int = 0):
        self.device = torch.device(device) if device else pick_device()
        self.numerics = for_device(numerics or Numerics(), self.device)
        self.model, self.labels, self.pre = model.eval().to(self.device), labels, pre
        self.transform = eval_transform(pre)
        self.channels_last = channels_last
        self.model = to_channels_last(self.model, channels_last)
        self.cached_groups, self._frozen = 0, None
        if self.numerics.engine != TORCH and spec is not None and cached_groups > 0:
            whole = cached_groups >= len(self.model.body)  # the head read pooled features
            try:
                self._frozen = frozen_forward(self.model, spec, self.numerics, None if whole else cached_groups)
                self.cached_groups = len(self.model.body) if whole else cached_groups
            except TLError as exc:  # a prediction still answers: the same weights, features within the guardrail
                log.warning("%s", exc)
        if self._frozen is None:
            self.numerics = replace(self.numerics, engine=TORCH)

    @classmethod
    def from_run(cls, run_dir: str | Path, which: str = "best", device: str | None = None,
                 numerics: Numerics | None = None) -> "Predictor":
        """Load a run's checkpoint (``weights_only=True``); no pretrained weights file is needed.
        Predicts in the numerics the run recorded, unless ``numerics`` overrides them."""
        run = RunDir.open(run_dir)
        state = ckpt.load_checkpoint(run.checkpoint(which))
        spec = get_backbone(state["backbone"])
        model = build_model(spec, len(state["labels"]), state["head_hidden"], state["dropout"], pretrained=False,
                            empty=True)  # the checkpoint fills every weight
        try:
            model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise RunError(_("checkpoint {path} does not match its backbone: {exc}",
                             path=run.checkpoint(which), exc=exc)) from None
        numerics = numerics or Numerics.from_dict(state.get("numerics"))
        return cls(model, list(state["labels"]), spec.preprocess, spec.channels_last, device, numerics, spec,
                   int(state.get("cached_groups") or 0))

    @classmethod
    def imagenet(cls, backbone: str | None = None, weights: str | None = None) -> "Predictor":
        """The pretrained network as-is, with its 1000 ImageNet classes."""
        spec: BackboneSpec = get_backbone(backbone)
        return cls(spec.load_pretrained(weights), imagenet_labels(), spec.preprocess, spec.channels_last)

    def _tensor(self, image: ImageLike) -> torch.Tensor:
        img = load_image(image, self.pre)
        return self.transform(img)

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of a preprocessed image batch on the predictor's device, in the run's numerics."""
        x = to_channels_last(x, self.channels_last)
        if self._frozen is None:
            with autocast(self.device, self.numerics.precision):
                return self.model(x).float()
        inner = self._frozen(x)
        with autocast(self.device, self.numerics.precision):
            if self.cached_groups == len(self.model.body):
                return self.model.forward_head(inner).float()
            return self.model.forward_from(to_channels_last(inner, self.channels_last), self.cached_groups).float()

    def probs(self, images: list[ImageLike]) -> torch.Tensor:
        """Class probabilities ``[N, C]``."""
        x = torch.stack([self._tensor(im) for im in images]).to(self.device)
        return torch.softmax(self.logits(x), 1).cpu()

    def explain(self, image: ImageLike, target: int | None = None) -> tuple[Image.Image, int]:
        """Grad-CAM overlay on the model's view of ``image`` (resized and cropped) and the class it
        explains (the predicted one unless ``target`` is given). Trained runs only."""
        from .explain import grad_cam, overlay

        img = load_image(image, self.pre)
        x = self.transform(img).unsqueeze(0).to(self.device)
        if target is None and self._frozen is not None:  # gradients need PyTorch: explain what the engine predicted
            target = int(self.logits(x).argmax(1))
        cam, target = grad_cam(self.model, x, target, self.numerics.precision)
        return overlay(TF.to_pil_image(crop_transform(self.pre)(img)), cam), target

    def predict(self, images: list[ImageLike], k: int = 5) -> list[list[dict]]:
        """For each image, the ``k`` most likely ``{"label", "prob"}`` pairs, most likely first."""
        return top_k(self.probs(images), self.labels, k)


def top_k(probs: torch.Tensor, labels: list[str], k: int) -> list[list[dict]]:
    """Rows of ``probs`` as ``k`` ``{"label", "prob"}`` pairs each, most likely first."""
    values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
    return [[{"label": labels[i], "prob": round(float(v), 6)} for v, i in zip(vs, ix)]
            for vs, ix in zip(values.tolist(), indices.tolist())]
