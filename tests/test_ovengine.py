"""The OpenVINO engine for the frozen part: the same numbers as PyTorch in fp32, a converted model
kept on disk and reused, measured beside PyTorch, and honoured by every consumer of a run."""

from __future__ import annotations

import pytest
import torch

from tl_core import numerics, ovengine
from tl_core.backbones import get_backbone
from tl_core.config import TrainConfig
from tl_core.evaluate import evaluate_run, predict_probs
from tl_core.features import cache_key
from tl_core.model import build_model
from tl_core.numerics import BF16, FP32, OPENVINO, TORCH, Numerics, frozen_forward
from tl_core.predict import Predictor
from tl_core.runs import RunDir, read_json
from tl_core.errors import RunError
from tl_core.train import train_run

needs_openvino = pytest.mark.skipif(not ovengine.available(), reason="OpenVINO is not installed here")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    ovengine._COMPILED.clear()
    yield tmp_path / "cache"
    ovengine._COMPILED.clear()


@needs_openvino
def test_the_frozen_part_computes_what_pytorch_does_and_its_converted_model_is_reused(cache, monkeypatch):
    import openvino

    spec = get_backbone(None)
    model = build_model(spec, 3).eval()
    x = torch.rand(3, 3, spec.input_size, spec.input_size) * 2 - 1
    for frozen in (None, 2):  # pooled features (scenario 1), the activations after 2 groups (a prefix)
        expected = frozen_forward(model, spec, Numerics(), frozen)(x)
        got = frozen_forward(model, spec, Numerics(FP32, engine=OPENVINO), frozen)(x)
        assert got.shape == expected.shape and got.dtype == torch.float32
        assert (got - expected).abs().max() <= 1e-4
    assert len(list((cache / "openvino").glob("*.xml"))) == 2 and not list((cache / "openvino").glob("*tmp*"))

    ovengine._COMPILED.clear()  # a new process: the model files are read, nothing is converted again
    monkeypatch.setattr(openvino, "convert_model", lambda *a, **k: pytest.fail("converted again"))
    assert (frozen_forward(model, spec, Numerics(FP32, engine=OPENVINO))(x) - expected_pooled(model, x)).abs().max() \
        <= 1e-4
    with torch.no_grad():  # other weights (a fine-tuned part) are another model, never the pretrained one
        model.body[0][0].weight.add_(0.1)
    with pytest.raises(pytest.fail.Exception, match="converted again"):
        frozen_forward(model, spec, Numerics(FP32, engine=OPENVINO))(x)


def expected_pooled(model, x):
    with torch.inference_mode():
        return model.forward_pooled(x)


def test_the_pick_is_the_fastest_that_holds_and_a_cpu_without_bf16_stays_fp32():
    base = {"forward_ips": 10.0, "step_ips": 4.0, "feature_error": 0.0, "top1_agreement": 1.0}
    results = {FP32: base,
               BF16: {"forward_ips": 14.0, "step_ips": 3.0, "feature_error": 0.05, "top1_agreement": 1.0},
               "openvino:fp32": {"forward_ips": 20.0, "feature_error": 1e-6, "top1_agreement": None},
               "openvino:bf16": {"forward_ips": 35.0, "feature_error": 0.04, "top1_agreement": 1.0}}
    assert numerics._pick(results, "forward_ips")[0] == "openvino:bf16"
    assert numerics._pick({**results, "openvino:bf16": {**results["openvino:bf16"], "top1_agreement": 0.5}},
                          "forward_ips")[0] == "openvino:fp32"  # no top-1 check for VGG: the features decide
    assert numerics._pick(results, "step_ips")[0] == FP32  # engines have no training step
    assert numerics.split_label("openvino:bf16") == (OPENVINO, BF16) and numerics.split_label(BF16) == (TORCH, BF16)


@needs_openvino
def test_a_predictor_runs_the_cached_groups_on_the_engine_and_the_rest_in_pytorch(cache, monkeypatch):
    spec = get_backbone(None)
    model = build_model(spec, 3).eval()
    x = torch.rand(2, 3, spec.input_size, spec.input_size) * 2 - 1
    calls = []
    real = ovengine.compiled
    monkeypatch.setattr(ovengine, "compiled", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    in_torch = Predictor(model, ["a", "b", "c"], spec.preprocess, spec.channels_last, "cpu")
    for cached, part in ((2, 2), (len(model.body), None), (0, "none")):  # a prefix, pooled features, images
        calls.clear()
        on_engine = Predictor(model, ["a", "b", "c"], spec.preprocess, spec.channels_last, "cpu",
                              Numerics(FP32, engine=OPENVINO), spec, cached)
        assert calls == ([] if part == "none" else [part])
        assert on_engine.numerics.engine == (TORCH if part == "none" else OPENVINO)
        assert (on_engine.logits(x) - in_torch.logits(x)).abs().max() <= 1e-4

    def broken(*_a, **_k):
        raise RuntimeError("unsupported operation")

    monkeypatch.setattr(ovengine, "compiled", broken)  # the engine fails here: training says so, never mislabels
    with pytest.raises(RunError, match="TL_ENGINE=torch"):
        frozen_forward(model, spec, Numerics(FP32, engine=OPENVINO))
    fallback = Predictor(model, ["a", "b", "c"], spec.preprocess, spec.channels_last, "cpu",
                         Numerics(FP32, engine=OPENVINO), spec, 2)  # a prediction still answers, in PyTorch
    assert fallback.numerics.engine == TORCH and torch.equal(fallback.logits(x), in_torch.logits(x))


def test_the_imagenet_top1_check_reads_only_a_classifier_of_the_pooled_features():
    lite = get_backbone(None).build()
    assert numerics._imagenet_classifier(lite, 1280)(torch.zeros(2, 1280)).shape == (2, 1000)
    convnext = get_backbone("convnext_tiny")
    assert numerics._imagenet_classifier(convnext.build(), convnext.feature_dim) is None  # it normalises the map


@needs_openvino
def test_without_native_bf16_openvino_is_measured_in_fp32_only(cache, monkeypatch):
    monkeypatch.delenv("TL_PRECISION", raising=False)
    monkeypatch.setattr(numerics, "bf16_native", lambda: False)
    spec = get_backbone("mobilenet_v3_large")
    result = numerics.measure(spec, batch=2, rounds=1, network=spec.build())
    assert set(result["precisions"]) == {FP32, "openvino:fp32"}
    assert result["precisions"]["openvino:fp32"]["feature_error"] < 1e-4
    monkeypatch.setattr(numerics, "measure", lambda *a, **k: pytest.fail("measured again"))
    chosen = numerics.choose(spec)  # read back, not measured again
    assert chosen.precision == FP32 and chosen.engine == numerics.split_label(result["choice"])[0]
    monkeypatch.setattr(ovengine, "available", lambda: False)  # OpenVINO removed: PyTorch fp32, nothing to measure
    assert numerics.choose(spec) == Numerics(FP32, "cpu", "no native bf16 on this CPU")
    assert numerics.for_device(Numerics(FP32, engine=OPENVINO), "cpu").engine == TORCH


@needs_openvino
@pytest.mark.slow
def test_an_openvino_run_records_its_engine_and_every_consumer_runs_it(image_folder, tmp_path, cache, monkeypatch):
    from tl_core.export import export_run

    monkeypatch.setenv("TL_ENGINE", OPENVINO)
    run = RunDir.create(tmp_path / "runs")
    cfg = TrainConfig(data=str(image_folder), scenario=1, epochs=3, cache_dir=str(tmp_path / "features"))
    cfg.save(run.config_file)
    summary = train_run(run, cfg)
    assert read_json(run.path / numerics.NUMERICS_FILE)["engine"] == OPENVINO
    assert list((cache / "openvino").glob("*.xml"))  # the engine really computed the features    monkeypatch.delenv("TL_ENGINE")  # what the run recorded counts now, not the setting
    paths = [str(f) for f in (tmp_path / "features").glob("*.pt")]
    assert len(paths) == 1  # its features were cached under the engine's own key
    spec = get_backbone(summary["backbone"])

    calls = []
    real = ovengine.compiled
    monkeypatch.setattr(ovengine, "compiled", lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    predictor = Predictor.from_run(run.path)
    assert predictor.numerics.engine == OPENVINO and calls == [None]  # the whole extractor: pooled features
    in_torch = Predictor.from_run(run.path, numerics=Numerics())
    items = [it for part in ("test", "val") for it in _split(run)[part]]
    images = [it.path for it in items]
    assert (predictor.probs(images) - in_torch.probs(images)).abs().max() <= 1e-4
    metrics = evaluate_run(run.path)
    test_items = _split(run)["test"]
    expected = predict_probs(predictor, test_items, spec).argmax(1)
    assert metrics["accuracy"] == pytest.approx(
        float((expected == torch.tensor([i.label for i in test_items])).float().mean()))
    _overlay, target = predictor.explain(images[0])
    assert target == int(predictor.probs(images[:1])[0].argmax())

    info = export_run(run.path, "onnx", tmp_path / "bundle")
    assert info["parity"]["max_abs_diff"] <= 1e-4 and info["parity"]["top1_equal"]
    assert info["numerics"]["run"] == "openvino:fp32"
    vs = info["numerics"]["vs_run_numerics"]
    assert vs["top1_equal"] and vs["max_abs_diff"] <= 1e-4
    assert cache_key(images, spec, engine=OPENVINO) != cache_key(images, spec)


def _split(run):
    from tl_core.splits import split_from_json

    return split_from_json(read_json(run.split_file))


@needs_openvino
def test_sessions_in_threads_each_get_their_own_answer_from_one_compiled_part(cache):
    from concurrent.futures import ThreadPoolExecutor

    spec = get_backbone(None)
    model = build_model(spec, 3).eval()
    run = frozen_forward(model, spec, Numerics(FP32, engine=OPENVINO))
    inputs = [torch.full((1, 3, spec.input_size, spec.input_size), v) for v in torch.linspace(-1, 1, 6).tolist()]
    expected = [run(x) for x in inputs]
    with ThreadPoolExecutor(4) as pool:  # the app's sessions share a cached predictor, each in its own thread
        got = list(pool.map(lambda i: run(inputs[i % 6]), range(60)))
    assert all(torch.equal(g, expected[i % 6]) for i, g in enumerate(got))
