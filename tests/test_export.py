"""Export bundles: the exported file predicts what the app predicts, alone, in both formats."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from conftest import run_cli

from tl_core.errors import ConfigError
from tl_core.export import export_run
from tl_core.serving import BundlePredictor, open_predictor
from tl_core.predict import Predictor


@pytest.fixture(scope="module", params=["onnx", "torchscript"])
def bundle(request, trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / request.param
    info = export_run(trained_run.path, request.param, out)
    return request.param, out, info


def _images(folder):
    return sorted(folder.rglob("*.jpg"))


def test_bundle_description_and_card(bundle, trained_run):
    fmt, out, info = bundle
    on_disk = json.loads((out / "bundle.json").read_text())
    assert on_disk == info
    assert on_disk["format"] == fmt and (out / on_disk["model_file"]).is_file()
    assert on_disk["labels"] == ["blue", "green", "red"]
    assert on_disk["input"] == {"layout": "NHWC", "dtype": "uint8", "size": [224, 224], "channels": "RGB"}
    parity = on_disk["parity"]
    assert parity["top1_equal"] and parity["max_abs_diff"] <= 1e-4 and parity["images"] >= 5
    card = (out / "README.md").read_text()
    assert "efficientnet_lite0" in card and "scenario 1" in card and "test: accuracy" in card
    assert sorted(p.name for p in out.iterdir()) == sorted(["bundle.json", "README.md", on_disk["model_file"]])


def test_bundle_predicts_like_the_app(bundle, trained_run, image_folder):
    _, out, _ = bundle
    images = _images(image_folder)[::3]
    app, exported = Predictor.from_run(trained_run.path), open_predictor(out, trust=True)  # made here
    assert isinstance(exported, BundlePredictor)
    a, b = app.probs(images), exported.probs(images)
    assert a.shape == b.shape == (len(images), 3)
    assert (a.argmax(1) == b.argmax(1)).all()
    assert float((a - b).abs().max()) <= 1e-4
    # the model really classifies: most fixture images get their folder's label
    right = sum(p[0]["label"] == img.parent.name for p, img in zip(exported.predict(images, 1), images))
    assert right >= 0.8 * len(images)


def test_card_preprocessing_recipe_reproduces_the_app(bundle, image_folder, monkeypatch):
    """The Python recipe in the model card, run as written, gives the bundle predictor's probabilities."""
    fmt, out, _ = bundle
    code = re.search(r"```python\n(.*?)```", (out / "README.md").read_text(), re.S).group(1)
    img = _images(image_folder)[5]
    monkeypatch.chdir(out)
    scope = {"path": str(img)}
    exec(code, scope)  # noqa: S102 - our own card
    expected = BundlePredictor(out, trust=True).probs([img]).numpy()
    assert np.abs(scope["probs"] - expected).max() <= 1e-6


def test_predict_cli_on_bundle_alone(bundle, image_folder, tmp_path):
    fmt, out, _ = bundle
    moved = shutil.copytree(out, tmp_path / "elsewhere")  # no run directory next to it
    img = _images(image_folder)[0]
    trust = ["--trust"] if fmt == "torchscript" else []  # made by this test
    proc = run_cli("predict", str(moved), str(img), "--top-k", "2", "--json", *trust)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result[0]["top"][0]["label"] == img.parent.name and len(result[0]["top"]) == 2


def test_export_cli_and_refusals(trained_run, tmp_path):
    proc = run_cli("export", str(trained_run.path), "--format", "onnx", "--out", str(tmp_path / "b"), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["parity"]["max_abs_diff"] <= 1e-4 and (tmp_path / "b" / "model.onnx").is_file()
    # exporting again over a bundle replaces it; over other files it refuses and deletes nothing
    assert run_cli("export", str(trained_run.path), "--out", str(tmp_path / "b")).returncode == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not an exported bundle"):
        export_run(trained_run.path, "onnx", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(ConfigError, match="unknown export format"):
        export_run(trained_run.path, "tflite", tmp_path / "c")
