"""Every backbone x every scenario, end to end: one epoch of training, evaluation, prediction and an
ONNX export with its parity check, on a tiny generated data set.

The EfficientNet-Lite networks train from their real offline weights (what the app does by default),
so a key map that does not fit a variant fails here. torchvision's networks, whose real weights need
a download, train from a file in torchvision's format written here from a randomly initialised
network and passed like ``--weights PATH``: the same loading path, another file.

Kept cheap (2 classes x 3 images, 1 epoch, no head-only warm-up before fine-tuning): every scenario
trains; evaluation and prediction run for scenarios 1 and 4 (the checkpoint is the same kind whatever
was frozen) and the ONNX export once per backbone (freezing does not change the graph).
"""

from __future__ import annotations

import shutil

import pytest
import torch

from conftest import make_folder
from tl_core.backbones import get_backbone, list_backbones
from tl_core.config import TrainConfig
from tl_core.evaluate import evaluate_run
from tl_core.freezing import SCENARIOS
from tl_core.export import export_run
from tl_core.model import build_model
from tl_core.predict import Predictor
from tl_core.runs import RunDir, read_json
from tl_core.serving import BundlePredictor
from tl_core.train import train_run

CLASSES = ("red", "blue")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """2 classes x 3 images: one each for train, validation and test per class."""
    return make_folder(tmp_path_factory.mktemp("matrix") / "data", per_class=3, classes=CLASSES)


@pytest.fixture(scope="module")
def weights_for(tmp_path_factory):
    """``name -> weights file`` (None for backbones whose real weights are installed offline)."""
    folder = tmp_path_factory.mktemp("weights")

    def path_for(name: str):
        spec = get_backbone(name)
        if spec.weights_source[0] == "package":
            return None
        path = folder / spec.weights_id
        if not path.is_file():
            torch.save(spec.build().state_dict(), path)
        return path

    yield path_for
    shutil.rmtree(folder, ignore_errors=True)  # VGG16's file alone is 528 MB


def _train(tmp_path, data, name: str, weights, scenario: int, cache_dir) -> tuple[RunDir, dict]:
    cfg = TrainConfig(data=str(data), backbone=name, weights=None if weights is None else str(weights),
                      scenario=scenario, epochs=1, head_epochs=0, batch_size=4, cache_dir=str(cache_dir))
    run = RunDir.create(tmp_path / "runs")
    cfg.save(run.config_file)
    return run, train_run(run, cfg)


def _assert_frozen_body_is_the_loaded_network(run: RunDir, name: str, weights) -> None:
    """Scenario 1 freezes the whole body: the checkpoint must hold exactly the weights that were loaded."""
    saved = torch.load(run.checkpoint("best"), map_location="cpu", weights_only=True)["model"]
    loaded = build_model(get_backbone(name), len(CLASSES), weights=weights).state_dict()
    body = [k for k in loaded if k.startswith("body.")]
    assert body and all(torch.equal(saved[k], loaded[k]) for k in body)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", [1, 2, 3, 4])
@pytest.mark.parametrize("name", list_backbones())
def test_backbone_trains_evaluates_predicts_and_exports(name, scenario, tiny_data, weights_for, tmp_path,
                                                        tmp_path_factory):
    weights = weights_for(name)
    cache_dir = tmp_path_factory.getbasetemp() / "matrix-cache"  # shared: later scenarios reuse features
    run, result = _train(tmp_path, tiny_data, name, weights, scenario, cache_dir)
    assert result["stop_reason"] == "completed" and result["epochs_run"] == 1
    target = SCENARIOS[scenario].frozen_target
    assert result["frozen_fraction"] == pytest.approx(target, abs=0.0 if target in (0.0, 1.0) else 0.25)
    if scenario == 1:
        _assert_frozen_body_is_the_loaded_network(run, name, weights)
    if scenario in (2, 3):
        return  # the checkpoint is the same kind whatever was frozen: evaluated and exported for 1 and 4
    # Evaluating again through the predictor gives what training reported.
    trained = read_json(run.eval_file)["test"]
    again = evaluate_run(run.path)
    assert again["n"] == trained["n"] == len(CLASSES) and again["accuracy"] == pytest.approx(trained["accuracy"])
    images = sorted(tiny_data.rglob("*.jpg"))[:2]
    top = Predictor.from_run(run.path).predict(images, k=2)
    assert [sorted(t["label"] for t in row) for row in top] == [sorted(CLASSES)] * 2
    if scenario != 4:
        return  # freezing does not change the exported graph: one export per backbone
    info = export_run(run.path, "onnx", tmp_path / "bundle")
    parity = info["parity"]
    assert parity["top1_equal"] and parity["max_abs_diff"] <= 1e-4 and parity["images"] >= 6
    bundle = BundlePredictor(tmp_path / "bundle").predict(images, k=1)
    assert [b[0]["label"] for b in bundle] == [t[0]["label"] for t in top]
    assert info["input"]["size"] == [get_backbone(name).input_size] * 2
