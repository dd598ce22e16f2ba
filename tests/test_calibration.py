"""Temperature scaling: an overconfident model gets T > 1 and a smaller ECE, no answer changes, the
threshold keeps 95% of the correct answers, every run stores calibration.json, and the Evaluate
and Predict pages use it."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import COLOURS, make_image
from tl_core.calibration import (CALIBRATION_FILE, apply_temperature, calibrate, calibrate_run, default_threshold,
                                 ece, fit_temperature, load_calibration, reliability, verdict)


def overconfident(n: int = 2000, seed: int = 0) -> tuple[torch.Tensor, list[int]]:
    """3 classes, 80% right, but always about 99% sure."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    right = torch.rand(n, generator=g) < 0.8
    pred = torch.where(right, labels, (labels + 1 + torch.randint(0, 2, (n,), generator=g)) % 3)
    logits = torch.randn(n, 3, generator=g) * 0.5
    logits[torch.arange(n), pred] += 6.0
    return logits.softmax(1), labels.tolist()


def test_temperature_scaling_makes_an_overconfident_model_honest():
    probs, labels = overconfident()
    assert ece(probs, labels) > 0.15
    t = fit_temperature(probs, labels)
    after = apply_temperature(probs, t)
    assert t > 1.5 and ece(after, labels) < 0.05
    assert torch.equal(after.argmax(1), probs.argmax(1))  # no answer changes
    assert abs(float(after.max(1).values.mean()) - 0.8) < 0.05
    rows = reliability(after, labels)
    assert sum(r["n"] for r in rows) == len(labels) and len(rows) == 10


def test_threshold_keeps_95_percent_of_the_correct_answers():
    probs, labels = overconfident()
    th = default_threshold(probs, labels)
    conf, pred = probs.max(1)
    right = pred == torch.tensor(labels)
    kept = float((conf[right] >= th).float().mean())
    assert 0.94 <= kept <= 0.96
    assert default_threshold(torch.full((4, 4), 0.25), [0, 1, 2, 3]) == 0.25  # never below chance
    assert verdict([{"label": "cat", "prob": 0.6}], 0.7) is None
    assert verdict([{"label": "cat", "prob": 0.8}], 0.7) == "cat"


def test_calibrate_reports_every_part():
    val, y_val = overconfident(600, seed=1)
    test, y_test = overconfident(600, seed=2)
    out = calibrate({"val": (y_val, val), "test": (y_test, test)})
    assert out["fitted_on"] == "val" and out["temperature"] > 1.5
    for part in ("val", "test"):
        p = out["parts"][part]
        assert p["n"] == 600 and p["ece_after"] < p["ece_before"] and 0 < p["not_sure_share"] < 0.5
    json.dumps(out)


def test_every_trained_run_is_calibrated_and_can_be_again(trained_run):
    cal = load_calibration(trained_run.path)
    assert cal is not None, "train_run writes calibration.json"
    assert set(cal["parts"]) == {"val", "test"} and 0.05 <= cal["temperature"] <= 20
    assert 0 < cal["threshold"] <= 1
    (trained_run.path / CALIBRATION_FILE).unlink()
    again = calibrate_run(trained_run.path)
    assert abs(again["temperature"] - cal["temperature"]) < 0.05 * cal["temperature"] + 0.05
    assert load_calibration(trained_run.path) == again


def test_evaluate_and_predict_pages_use_the_calibration(trained_run, env, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from conftest import ROOT

    monkeypatch.setenv("TL_RUNS_DIR", str(trained_run.path.parent))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = trained_run.id
    at.run()
    at.switch_page("pages/evaluate.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Expected calibration error" in c.value for c in at.caption)
    assert any("Predict answers \"not sure\"" in c.value for c in at.caption)
    at.switch_page("pages/predict.py").run()
    assert not at.exception, [e.value for e in at.exception]
    slider = at.slider(key=f"p_threshold_{trained_run.id}")
    assert slider.value == pytest.approx(load_calibration(trained_run.path)["threshold"], abs=0.01)
    photo = tmp_path / "red.png"
    make_image(COLOURS["red"], 4242).save(photo)
    at.file_uploader(key="p_files").set_value([("red.png", photo.read_bytes(), "image/png")]).run()
    assert any(m.value.startswith("**red**") for m in at.markdown)
    saved = (trained_run.path / CALIBRATION_FILE).read_text()
    try:  # a run whose temperature flattens every answer: below the threshold, the page says so
        (trained_run.path / CALIBRATION_FILE).write_text(json.dumps({**json.loads(saved), "temperature": 50.0}))
        at.run()
    finally:
        (trained_run.path / CALIBRATION_FILE).write_text(saved)
    assert any(m.value.startswith("**not sure** (best guess: red") for m in at.markdown), [m.value for m in at.markdown]


def test_exported_bundle_carries_the_temperature_and_threshold(trained_run, image_folder, tmp_path):
    from tl_core.export import export_run
    from tl_core.predict import Predictor
    from tl_core.serving import open_predictor

    info = export_run(trained_run.path, "onnx", tmp_path / "bundle")
    cal = load_calibration(trained_run.path)
    assert info["calibration"] == {"temperature": cal["temperature"], "not_sure_below": cal["threshold"]}
    card = (tmp_path / "bundle" / "README.md").read_text()
    assert f"softmax(log(probs) / {cal['temperature']})" in card and str(cal["threshold"]) in card
    photos = [str(p) for p in sorted(image_folder.rglob("*.jpg"))[:4]]
    by_card = torch.softmax(open_predictor(tmp_path / "bundle").probs(photos).clamp_min(1e-12).log()
                            / info["calibration"]["temperature"], 1)
    in_app = apply_temperature(Predictor.from_run(trained_run.path).probs(photos), cal["temperature"])
    assert torch.allclose(by_card, in_app, atol=1e-3)


def test_a_validation_set_without_mistakes_never_makes_the_model_surer():
    """With every validation answer right, the likelihood keeps rising as T -> 0: fitting would turn a
    60% answer into 99.9%. Too few mistakes to learn from: no sharpening (T >= 1)."""
    import torch

    from tl_core.calibration import calibrate, fit_temperature

    probs = torch.tensor([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]] * 5)
    labels = [0, 1, 2, 0] * 5
    assert fit_temperature(probs, labels) >= 1.0
    out = calibrate({"val": (labels, probs)})
    assert out["temperature"] >= 1.0
    # The default threshold keeps (at least) 95% of the correct validation answers above it.
    assert out["parts"]["val"]["not_sure_share"] <= 0.05, out["parts"]["val"]
