"""Preprocessing (exactly what the pretrained weights expect), augmentation presets, datasets."""

from __future__ import annotations

import math
import queue
import random
import threading

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2 as T
from torchvision.transforms.v2 import functional as TF

from . import settings
from .backbones import Preprocess
from .data import Item
from .imaging import load_rgb

_INTERP = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
           "nearest": T.InterpolationMode.NEAREST}


class _ToModelInput:
    """uint8 picture -> normalised float32 CHW: exactly ``ToImage``, ``ToDtype(scale=True)`` and
    ``Normalize`` (the same operations in the same order), without their per-call dispatch, which
    cost a quarter of a single-image prediction's overhead."""

    def __init__(self, pre: Preprocess):
        self.mean = torch.tensor(pre.mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(pre.std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, img) -> torch.Tensor:
        x = img.as_subclass(torch.Tensor) if isinstance(img, torch.Tensor) else TF.pil_to_tensor(img)
        return x.to(torch.float32).mul_(1.0 / 255).sub_(self.mean).div_(self.std)


def _tail(pre: Preprocess) -> list:
    return [_ToModelInput(pre)]


def _resize(pre: Preprocess) -> T.Compose:
    """Decoded picture -> uint8 tensor with its short side resized to ``pre.resize`` (antialiased).

    On uint8 tensors torchvision has a SIMD kernel, 5x faster than Pillow's resize here (0.4 vs
    2.1 ms for a typical photo), which matters for single-image prediction latency; pixels are
    within 2 levels of Pillow's. max_size bounds the long side, so a 20000x20 strip cannot blow up
    to 256000x256 pixels; only images wider than 8:1 are affected (CenterCrop pads them).
    """
    return T.Compose([T.PILToTensor(), T.Resize(pre.resize, interpolation=_INTERP[pre.interpolation],
                                                  antialias=True, max_size=pre.resize * 8)])


def crop_transform(pre: Preprocess) -> T.Compose:
    """Resize the short side and centre-crop: the picture the model sees, as a uint8 CHW tensor."""
    return T.Compose([*_resize(pre).transforms, T.CenterCrop(pre.crop)])


def eval_transform(pre: Preprocess, predecoded: bool = False) -> T.Compose:
    """Resize the short side, centre crop, normalise: the transform of evaluation and prediction.
    ``predecoded``: for images from ``DecodedImages`` (already resized): crop and normalise only."""
    crop = [T.CenterCrop(pre.crop)] if predecoded else crop_transform(pre).transforms
    return T.Compose([*crop, *_tail(pre)])


def train_transform(pre: Preprocess, augment: str = "none", predecoded: bool = False):
    """The training transform for an augmentation preset: "none", "light" or "strong" (the random
    crops work the same on a full picture and on a ``DecodedImages`` one)."""
    if augment == "none":
        return eval_transform(pre, predecoded)
    return Augment(pre, augment)


class Augment:
    """Random crop, flip and colour changes ("strong": also rotation, hue and erasing).

    Every random choice comes from ``random.Random(seed)`` with a seed per sample and epoch (see
    ``ImageDataset``), never from torch's global generator: augmentation can run in a prefetch
    thread next to the training step (whose dropout does use the global generator) and a run is
    still exactly reproducible, and a resumed run sees the same pictures as an uninterrupted one.
    """

    random = True  # ImageDataset passes a seed

    def __init__(self, pre: Preprocess, level: str = "light"):
        if level not in ("light", "strong"):
            raise ValueError(f"unknown augmentation preset {level!r}")
        self.pre, self.level = pre, level
        self.interp = _INTERP[pre.interpolation]
        self.scale = (0.6, 1.0) if level == "light" else (0.3, 1.0)
        self.jitter = (0.2, 0.2, 0.1, 0.0) if level == "light" else (0.4, 0.4, 0.3, 0.05)
        self.tail = T.Compose(_tail(pre))

    def _crop_box(self, rng: random.Random, height: int, width: int) -> tuple[int, int, int, int]:
        area = height * width
        for _attempt in range(10):  # RandomResizedCrop's rule, ratio 3/4..4/3
            target = area * rng.uniform(*self.scale)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            w, h = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
            if 0 < w <= width and 0 < h <= height:
                return rng.randint(0, height - h), rng.randint(0, width - w), h, w
        side = min(height, width)
        return (height - side) // 2, (width - side) // 2, side, side

    def __call__(self, img, seed: int) -> torch.Tensor:
        rng = random.Random(seed)
        x = img if isinstance(img, torch.Tensor) else TF.pil_to_tensor(img)
        top, left, h, w = self._crop_box(rng, x.shape[-2], x.shape[-1])
        x = TF.resized_crop(x, top, left, h, w, [self.pre.crop, self.pre.crop], self.interp, antialias=True)
        if rng.random() < 0.5:
            x = TF.horizontal_flip(x)
        if self.level == "strong":
            x = TF.rotate(x, rng.uniform(-15, 15), self.interp if self.interp != T.InterpolationMode.BICUBIC
                          else T.InterpolationMode.BILINEAR)
        b, c, s, hue = self.jitter
        ops = [(TF.adjust_brightness, b), (TF.adjust_contrast, c), (TF.adjust_saturation, s)]
        rng.shuffle(ops)
        for op, amount in ops:
            x = op(x, rng.uniform(1 - amount, 1 + amount))
        if hue:
            x = TF.adjust_hue(x, rng.uniform(-hue, hue))
        x = self.tail(x)
        if self.level == "strong" and rng.random() < 0.25:  # RandomErasing's rule
            area = x.shape[-2] * x.shape[-1]
            for _attempt in range(10):
                target, ratio = area * rng.uniform(0.02, 0.33), math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
                eh, ew = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
                if eh < x.shape[-2] and ew < x.shape[-1]:
                    i, j = rng.randint(0, x.shape[-2] - eh), rng.randint(0, x.shape[-1] - ew)
                    x = TF.erase(x, i, j, eh, ew, torch.zeros(1, 1, 1))
                    break
        return x


def load_image(image, pre: Preprocess):
    """A path, the bytes of a file, or a PIL image, as the RGB picture the transforms expect."""
    return image.convert("RGB") if isinstance(image, Image.Image) else load_for(image, pre)


def load_for(path_or_bytes, pre: Preprocess):
    """Decode an image for a preprocessing spec, letting JPEG decode at a reduced scale when that
    still leaves at least ``pre.resize`` pixels on the short side (much faster for big photos)."""
    return load_rgb(path_or_bytes, min_side=pre.resize)


class DecodedImages:
    """Each image decoded and resized once (short side ``pre.resize``, the first step of every
    transform), kept in memory as a uint8 tensor; later epochs of augmentation start from there
    instead of decoding the file again. Stops storing at ``max_bytes`` (the rest is decoded each
    time), so memory stays bounded on big data sets."""

    def __init__(self, pre: Preprocess, max_bytes: int | None = None):
        self.pre = pre
        self.max_bytes = settings.decode_cache_max_bytes() if max_bytes is None else max_bytes
        self.resize = _resize(pre)
        self.store: dict[str, torch.Tensor] = {}
        self.bytes = 0

    def __call__(self, path: str) -> torch.Tensor:
        t = self.store.get(path)
        if t is None:
            t = self.resize(load_for(path, self.pre)).as_subclass(torch.Tensor)
            if self.bytes + t.numel() <= self.max_bytes:
                self.store[path] = t
                self.bytes += t.numel()
        return t


class ImageDataset(Dataset):
    """``(tensor, label, index)`` for a list of ``Item``s; images are opened with ``load_rgb``, or
    taken from ``decoded`` (then ``transform`` must be a ``predecoded`` one)."""

    def __init__(self, items: list[Item], transform, pre: Preprocess, decoded: DecodedImages | None = None,
                 seed: int = 0):
        self.items, self.transform, self.pre, self.decoded = items, transform, pre, decoded
        self.seed, self.epoch = seed, 0  # a random (Augment) transform gets a seed per sample and epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        img = self.decoded(it.path) if self.decoded is not None else load_for(it.path, self.pre)
        if getattr(self.transform, "random", False):
            return self.transform(img, (self.seed * 1_000_003 + self.epoch) * 1_000_003 + i), it.label, i
        return self.transform(img), it.label, i


def prefetch(iterable, depth: int = 2):
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead; errors are re-raised
    here, and leaving the loop early (a stop, early stopping) ends the thread."""
    q: queue.Queue = queue.Queue(depth)
    done, stop = object(), threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in iterable:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)

    threading.Thread(target=work, daemon=True, name="tl-prefetch").start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
