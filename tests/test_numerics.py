"""Numerics chosen by measurement: fp32 without native bf16, bf16 recorded and honoured by every
consumer of a run, and a feature cache that never mixes precisions."""

from __future__ import annotations

import json

import pytest
import torch

from tl_core import numerics, ovengine
from tl_core.backbones import get_backbone
from tl_core.config import TrainConfig
from tl_core.data import scan_folder
from tl_core.evaluate import evaluate_run, predict_probs
from tl_core.features import cache_key, cached_features
from tl_core.model import build_model
from tl_core.numerics import BF16, FP32, Numerics
from tl_core.predict import Predictor
from tl_core.runs import RunDir, read_json
from tl_core.train import train_run


@pytest.fixture()
def measured_here(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("TL_PRECISION", raising=False)


def _results(fp32_ips=10.0, bf16_ips=15.0, bf16_step=5.0, error=0.01, agree=1.0):
    return {FP32: {"forward_ips": fp32_ips, "step_ips": 4.0, "feature_error": 0.0, "top1_agreement": 1.0},
            BF16: {"forward_ips": bf16_ips, "step_ips": bf16_step, "feature_error": error, "top1_agreement": agree}}


def test_the_pick_needs_speed_and_agreement():
    assert numerics._pick(_results(), "forward_ips")[0] == BF16
    assert numerics._pick(_results(error=0.2), "forward_ips")[0] == FP32  # faster, but the features moved
    assert numerics._pick(_results(agree=0.5), "forward_ips")[0] == FP32
    assert numerics._pick(_results(bf16_ips=10.5), "forward_ips")[0] == FP32  # within the noise
    assert numerics._pick(_results(bf16_step=3.0), "step_ips")[0] == FP32  # training steps would get slower
    assert numerics._pick(_results(bf16_step=3.0), "forward_ips")[0] == BF16  # the frozen work still gains
    assert numerics._pick({FP32: _results()[FP32]}, "forward_ips") == (FP32, "no native bf16 on this CPU")


def test_without_native_bf16_the_measured_choice_is_fp32(measured_here, monkeypatch):
    monkeypatch.setattr(numerics, "bf16_native", lambda: False)
    monkeypatch.setattr(ovengine, "available", lambda: False)  # PyTorch alone (test_ovengine measures OpenVINO)
    spec = get_backbone("mobilenet_v3_large")
    assert numerics.candidates() == [FP32]
    result = numerics.measure(spec, batch=2, rounds=1, network=spec.build())
    assert list(result["precisions"]) == [FP32] and result["choice"] == FP32
    assert numerics.choose(spec) == Numerics(FP32, "cpu", "no native bf16 on this CPU")


def test_with_native_bf16_both_are_measured_and_remembered(measured_here, monkeypatch):
    monkeypatch.setattr(numerics, "bf16_native", lambda: True)
    monkeypatch.setattr(ovengine, "available", lambda: False)
    spec = get_backbone("mobilenet_v3_large")
    result = numerics.measure(spec, batch=2, rounds=1, network=spec.build())
    assert set(result["precisions"]) == {FP32, BF16}
    bf16 = result["precisions"][BF16]
    assert 0 < bf16["feature_error"] < 0.5 and bf16["forward_ips"] > 0 and bf16["step_ips"] > 0
    assert numerics.measured()[spec.name]["choice"] == result["choice"]
    chosen = numerics.choose(spec)  # read back, not measured again
    assert (chosen.precision, chosen.train_precision) == (result["choice"], result["train_choice"])


def test_a_cpu_without_bf16_predicts_a_bf16_run_in_fp32(monkeypatch):
    monkeypatch.setattr(numerics, "bf16_native", lambda: False)
    assert numerics.for_device(Numerics(BF16, train_precision=BF16), "cpu") == Numerics(FP32)
    monkeypatch.setattr(numerics, "bf16_native", lambda: True)
    assert numerics.for_device(Numerics(BF16), "cpu").precision == BF16


def test_the_cache_keeps_precisions_apart(image_folder, tmp_path):
    spec = get_backbone(None)  # the default backbone's weights are installed with the requirements
    items = scan_folder(image_folder).items[:4]
    paths = [it.path for it in items]
    assert cache_key(paths, spec) == cache_key(paths, spec, precision=FP32)  # old fp32 caches still hit
    assert cache_key(paths, spec, precision=BF16) != cache_key(paths, spec)
    model = build_model(spec, 3)
    fp32, status = cached_features(model, items, spec, tmp_path, numerics=Numerics(FP32))
    assert status == "miss"
    bf16, status = cached_features(model, items, spec, tmp_path, numerics=Numerics(BF16))
    assert status == "miss"  # never the fp32 file
    assert len(list(tmp_path.glob("*.pt"))) == 2
    assert not torch.equal(fp32, bf16)
    again, status = cached_features(model, items, spec, tmp_path, numerics=Numerics(BF16))
    assert status == "hit" and torch.equal(again, bf16)


@pytest.mark.slow
def test_a_bf16_run_records_its_numerics_and_every_consumer_honours_them(image_folder, tmp_path, monkeypatch):
    from tl_core.export import export_run

    monkeypatch.setattr(numerics, "bf16_native", lambda: True)
    monkeypatch.setenv("TL_PRECISION", BF16)
    run = RunDir.create(tmp_path / "runs")
    cfg = TrainConfig(data=str(image_folder), scenario=1, epochs=3, cache_dir=str(tmp_path / "cache"))
    cfg.save(run.config_file)
    summary = train_run(run, cfg)
    assert summary["precision"] == summary["train_precision"] == BF16
    assert read_json(run.path / numerics.NUMERICS_FILE)["precision"] == BF16
    monkeypatch.delenv("TL_PRECISION")  # what the run recorded counts now, not the setting

    predictor = Predictor.from_run(run.path)
    assert predictor.numerics.precision == BF16
    items = [it for part in ("test", "val") for it in _split(run)[part]]
    spec = get_backbone(summary["backbone"])
    paths = [it.path for it in items]
    in_bf16 = predict_probs(predictor.model, items, spec, precision=BF16)
    in_fp32 = predict_probs(predictor.model, items, spec, precision=FP32)
    assert torch.allclose(predictor.probs(paths), in_bf16, atol=1e-6)
    assert not torch.allclose(in_bf16, in_fp32, atol=1e-6)  # the two really differ: the check means something
    test_items = _split(run)["test"]
    metrics = evaluate_run(run.path)
    expected = predict_probs(predictor.model, test_items, spec, precision=BF16).argmax(1)
    assert metrics["accuracy"] == pytest.approx(float((expected == torch.tensor([i.label for i in test_items]))
                                                      .float().mean()))
    _overlay, target = predictor.explain(paths[0])
    assert target == int(in_bf16[0].argmax())

    info = export_run(run.path, "onnx", tmp_path / "bundle")
    assert info["parity"]["max_abs_diff"] <= 1e-4 and info["parity"]["top1_equal"]
    assert info["numerics"]["run"] == BF16 and "vs_run_numerics" in info["numerics"]
    assert json.loads((tmp_path / "bundle" / "bundle.json").read_text())["numerics"]["bundle"] == FP32


def _split(run):
    from tl_core.splits import split_from_json

    return split_from_json(read_json(run.split_file))
