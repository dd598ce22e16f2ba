"""Predictions from an exported bundle alone (no run directory, no pretrained weights), under a
trust policy: a bundle may come from someone else.

Policy: ONNX bundles are data (a graph of standard operators run by onnxruntime) and open freely.
A TorchScript file is code: ``torch.jit.load`` runs whatever its ``forward`` says, including
reading and writing files, so a TorchScript bundle opens only when the caller says it trusts it
(``trust=True``, the CLI's ``--trust``), and the export's own parity check, which loads the file
it has just written. The model file named in ``bundle.json`` must lie inside the bundle folder.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from .backbones import Preprocess
from .errors import ConfigError, RunError
from .i18n import _
from .paths import is_inside
from .predict import ImageLike, Predictor, top_k
from .runs import read_json
from .transforms import crop_transform, load_image

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt", "web": "model.onnx"}  # web: ONNX + index.html
ONNX_FORMATS = ("onnx", "web")
BUNDLE_FILE = "bundle.json"


def pixels(image: ImageLike, pre: Preprocess) -> np.ndarray:
    """The model's view of an image as uint8 ``[S, S, 3]``: decoded, resized and cropped exactly as
    the app does it (see the model card's preprocessing rule)."""
    return crop_transform(pre)(load_image(image, pre)).permute(1, 2, 0).numpy().astype(np.uint8)


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / BUNDLE_FILE).is_file()


def _model_file(folder: Path, name) -> Path:
    """The bundle's model file, refused when its name leads out of the bundle folder."""
    path = folder / str(name)
    if not isinstance(name, str) or Path(name).is_absolute() or not is_inside(folder, path):
        raise RunError(_("the bundle's model file {name!r} is not inside the bundle folder; refusing to open it",
                         name=name))
    if not path.is_file():
        raise RunError(_("the bundle's model file {model_file} is missing", model_file=path.name))
    return path


def _onnx_session(model_file: Path, n_labels: int):
    """An onnxruntime session of ``model_file``, or a RunError saying why the file cannot serve."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for a damaged file
        raise RunError(_("{file} is not a model onnxruntime can open ({error}); export the run again",
                         file=model_file.name, error=str(exc).splitlines()[0][:200])) from None
    shape = session.get_outputs()[0].shape
    per_image = shape[-1] if shape else None  # an int, or a name / None when the graph leaves it open
    if [i.name for i in session.get_inputs()] != ["images"] or (isinstance(per_image, int) and per_image != n_labels):
        raise RunError(_("{file} does not take the bundle's input (uint8 'images') or give one probability per "
                         "label; export the run again", file=model_file.name))
    return session


class BundlePredictor:
    """Predictions from an exported bundle (ONNX, or TorchScript when trusted)."""

    def __init__(self, folder: str | Path, trust: bool = False):
        self.folder = Path(folder)
        info = read_json(self.folder / BUNDLE_FILE)
        invalid = RunError(_("{file} is not a valid bundle description; export the run again", file=BUNDLE_FILE))
        if not isinstance(info, dict) or info.get("format") not in FORMATS:
            raise invalid
        labels = info.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise invalid
        try:  # a bundle made elsewhere: every field it needs, or one clear message
            self.pre = Preprocess.from_dict(info["preprocess"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise invalid from None
        self.info, self.labels = info, list(labels)
        model_file = _model_file(self.folder, info.get("model_file"))
        if info["format"] in ONNX_FORMATS:
            self.session = _onnx_session(model_file, len(labels))
            self._run = lambda x: self.session.run(None, {"images": x})[0]
            return
        if not trust:
            raise ConfigError(_("{folder} is a TorchScript bundle: TorchScript files run their own code when opened, "
                                "so only open one you made or trust. Pass --trust to open it anyway, or export the "
                                "run as ONNX (safe to share)", folder=self.folder.name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated"
            module = torch.jit.load(str(model_file), map_location="cpu").eval()

        def run(x):
            with torch.inference_mode():
                return module(torch.from_numpy(x)).numpy()

        self._run = run

    def probs(self, images: list[ImageLike]) -> torch.Tensor:
        batch = np.stack([pixels(im, self.pre) for im in images])
        return torch.from_numpy(np.asarray(self._run(batch), dtype=np.float32))

    def predict(self, images: list[ImageLike], k: int = 5) -> list[list[dict]]:
        return top_k(self.probs(images), self.labels, k)


def open_predictor(path: str | Path, trust: bool = False):
    """A bundle folder or a run directory, whichever ``path`` is (``trust``: see the module's policy)."""
    return BundlePredictor(path, trust) if is_bundle(path) else Predictor.from_run(path)
