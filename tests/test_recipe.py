"""The training recipe, tested by behaviour: each test here kills a one-line bug that once passed
the whole suite (see benchmarks/mutation.py, which re-applies them), and its near relatives."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time

import pytest
import torch

import tl_core.checkpoints as ckpt
import tl_core.engine as engine
from conftest import ROOT, make_folder
from tl_core.config import TrainConfig
from tl_core.runs import RunDir
from tl_core.train import train_run


@pytest.fixture()
def with_callback(monkeypatch):
    """Add a callback to every Trainer that fits from now on (a test's probe into the loop)."""
    added = []
    original = engine.Trainer.fit

    def fit(self):
        self.callbacks.extend(added)
        return original(self)

    monkeypatch.setattr(engine.Trainer, "fit", fit)
    return added.append


def first_head_epoch_is_best(monkeypatch) -> None:
    """Rank epochs so that the first head epoch stays the best for the whole run: later epochs
    (and the whole fine-tune stage) are then known to differ from the best checkpoint."""
    monkeypatch.setattr(ckpt, "score", lambda r: (-r["epoch"] - (1000 if r["stage"] == "finetune" else 0),))


def new_run(tmp_path, cfg: TrainConfig) -> RunDir:
    run = RunDir.create(tmp_path / "runs")
    cfg.save(run.config_file)
    return run


def finetune_config(image_folder, cache_dir, **kw) -> TrainConfig:
    """Scenario 3 on efficientnet_lite0 with its real weights: 14 of 18 groups frozen, 4 fine-tuned."""
    return TrainConfig(**{"data": str(image_folder), "scenario": 3, "frozen_groups": 14, "head_epochs": 3,
                          "epochs": 3, "patience": 0, "cache_dir": str(cache_dir), **kw})


# 1: every backbone's preprocessing is what its weights were trained with ------------------------
@pytest.mark.parametrize("variant,size", [(0, 224), (1, 240), (2, 260)])
def test_efficientnet_lite_preprocessing_matches_the_published_weights(variant, size):
    import timm

    from tl_core.backbones import get_backbone

    published = timm.models.get_pretrained_cfg(f"tf_efficientnet_lite{variant}")
    pre = get_backbone(f"efficientnet_lite{variant}").preprocess
    assert (pre.mean, pre.std) == (tuple(published.mean), tuple(published.std)) == ((0.5,) * 3, (0.5,) * 3)
    assert pre.crop == published.input_size[-1] == size and pre.interpolation == published.interpolation


@pytest.mark.parametrize("name,weights", [("vgg16", "VGG16_Weights"), ("resnet18", "ResNet18_Weights"),
                                          ("resnet50", "ResNet50_Weights"),
                                          ("mobilenet_v3_large", "MobileNet_V3_Large_Weights"),
                                          ("efficientnet_b0", "EfficientNet_B0_Weights"),
                                          ("convnext_tiny", "ConvNeXt_Tiny_Weights")])
def test_torchvision_preprocessing_matches_the_published_weights(name, weights):
    import torchvision.models as tvm

    from tl_core.backbones import get_backbone

    t = getattr(tvm, weights).DEFAULT.transforms()
    pre = get_backbone(name).preprocess
    assert pre.mean == tuple(t.mean) and pre.std == tuple(t.std)
    assert (pre.resize, pre.crop, pre.interpolation) == (t.resize_size[0], t.crop_size[0], t.interpolation.value)


# 2: BatchNorm keeps its ImageNet statistics while fine-tuning ------------------------------------
def _batchnorm_keys(state: dict, groups: list[str]) -> list[str]:
    return [k for k in state if k.endswith("running_mean") and k.split(".")[1] in groups]


@pytest.mark.slow
@pytest.mark.parametrize("bn_stats", ["frozen", "train"])
def test_fine_tuning_keeps_batchnorm_statistics_unless_asked(tmp_path, image_folder, cache_dir, bn_stats):
    from tl_core.backbones import get_backbone
    from tl_core.model import build_model

    run = new_run(tmp_path, finetune_config(image_folder, cache_dir, head_epochs=1, epochs=2, bn_stats=bn_stats))
    train_run(run)
    trained = ckpt.load_checkpoint(run.checkpoint("last"))["model"]
    model = build_model(get_backbone("efficientnet_lite0"), 3)
    pretrained = model.state_dict()
    keys = _batchnorm_keys(trained, model.group_names[14:])
    assert len(keys) >= 4
    unchanged = [torch.equal(trained[k], pretrained[k]) for k in keys]
    if bn_stats == "frozen":
        assert all(unchanged), "running statistics of fine-tuned groups moved"
        gammas = [k.replace("running_mean", "weight") for k in keys]
        assert not all(torch.equal(trained[g], pretrained[g]) for g in gammas), "BatchNorm scale must still learn"
    else:
        assert not any(unchanged)


# 3 + 4: the best checkpoint is what is evaluated, exported and fine-tuned from --------------------
@pytest.mark.slow
def test_evaluation_export_and_fine_tuning_use_the_best_checkpoint(tmp_path, image_folder, cache_dir,
                                                                   monkeypatch, with_callback):
    from tl_core.export import export_run
    from tl_core.predict import Predictor
    from tl_core.splits import split_from_json

    first_head_epoch_is_best(monkeypatch)
    starts = {}

    class HeadAtStart(engine.Callback):
        def on_fit_start(self, trainer):
            starts[trainer.stage] = {k: v.clone() for k, v in trainer.model.head.state_dict().items()}

    with_callback(HeadAtStart())
    run = new_run(tmp_path, finetune_config(image_folder, cache_dir))
    train_run(run)
    best = ckpt.load_checkpoint(run.checkpoint("best"))
    last = ckpt.load_checkpoint(run.checkpoint("last"))
    assert (best["stage"], best["epoch"], last["stage"], last["epoch"]) == ("head", 1, "finetune", 3)
    best_head = {k[len("head."):]: v for k, v in best["model"].items() if k.startswith("head.")}
    assert all(torch.equal(starts["finetune"][k], best_head[k]) for k in best_head), "fine-tune started elsewhere"
    evaluated = json.loads(run.eval_file.read_text())
    assert (evaluated["best_stage"], evaluated["best_epoch"]) == ("head", 1)
    # The reported numbers are the best model's: recompute them from best.pt.
    split = split_from_json(json.loads(run.split_file.read_text()))
    predictor = Predictor.from_run(run.path)
    for part in ("val", "test"):
        probs = predictor.probs([it.path for it in split[part]])
        nll = -torch.log(probs[range(len(probs)), [it.label for it in split[part]]]).mean().item()
        assert evaluated[part]["log_loss"] == pytest.approx(nll, abs=1e-4), part
    info = export_run(run.path, "onnx", tmp_path / "bundle")
    assert info["checkpoint"] == "best" and info["parity"]["max_abs_diff"] <= 1e-4


# 5: resuming keeps the best score so far ---------------------------------------------------------
@pytest.mark.slow
def test_resume_keeps_the_best_checkpoint_of_the_interrupted_run(tmp_path, image_folder, cache_dir, monkeypatch,
                                                                  with_callback):
    first_head_epoch_is_best(monkeypatch)
    cfg = TrainConfig(data=str(image_folder), scenario=1, epochs=6, patience=0, cache_dir=str(cache_dir))
    whole = new_run(tmp_path, cfg)
    train_run(whole)

    class Crash(engine.Callback):
        def on_epoch_end(self, trainer, record):
            if trainer.epoch == 3:
                raise RuntimeError("simulated crash")

    with_callback(Crash())
    run = new_run(tmp_path, cfg)
    with pytest.raises(RuntimeError):
        train_run(run)
    monkeypatch.undo()  # no more crashes; rank epochs the same way again
    first_head_epoch_is_best(monkeypatch)
    train_run(run, resume=True)
    a, b = (ckpt.load_checkpoint(r.checkpoint("best")) for r in (run, whole))
    assert a["epoch"] == b["epoch"] == 1
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


# 6: discriminative learning rates survive the one-cycle schedule ---------------------------------
@pytest.mark.slow
def test_one_cycle_keeps_every_groups_own_learning_rate(tmp_path, image_folder, cache_dir, with_callback):
    seen = []

    class LRs(engine.Callback):
        def on_batch_end(self, trainer, record):
            if trainer.stage == "finetune":
                seen.append([g["lr"] for g in trainer.optimizer.param_groups])

    with_callback(LRs())
    run = new_run(tmp_path, finetune_config(image_folder, cache_dir, head_epochs=1, epochs=4, batch_size=8))
    train_run(run)
    ratio = json.loads(run.config_file.read_text())["lr_ratio"]
    assert len(seen) >= 6 and len(seen[0]) == 5  # 4 fine-tuned groups + the head
    for lrs in seen:
        assert lrs == sorted(lrs) and lrs[0] < lrs[-1], lrs
        assert lrs[-1] / lrs[0] == pytest.approx(ratio, rel=1e-6)
    heads = [lrs[-1] for lrs in seen]
    # One-cycle: warms up to the head's learning rate, then anneals far below it.
    assert max(heads) == pytest.approx(1e-3, rel=1e-3) and heads[0] < 0.9 * max(heads) and heads[-1] < 0.1 * max(heads)


# 7: every epoch sees its own, reproducible order -------------------------------------------------
def test_epoch_orders_differ_and_are_reproducible():
    from torch.utils.data import TensorDataset

    from tl_core.stages import Batches

    def order(seed, epoch):
        batches = Batches(TensorDataset(torch.arange(64)), 8, shuffle=True, seed=seed)
        return torch.cat([b[0] for b in batches(epoch)]).tolist()

    epochs = [order(0, e) for e in range(1, 6)]
    assert len({tuple(o) for o in epochs}) == 5 and all(sorted(o) == list(range(64)) for o in epochs)
    assert epochs == [order(0, e) for e in range(1, 6)]
    assert order(1, 1) != order(0, 1)


# 8: the export refuses a graph that predicts differently -----------------------------------------
def test_export_refuses_a_model_that_differs_from_the_app(trained_run, tmp_path, monkeypatch):
    import tl_core.export as export
    from tl_core.errors import RunError

    original = export._write_model

    def subtly_wrong(graph, fmt, file, size):
        graph = copy.deepcopy(graph)  # the app's own model stays as it is
        with torch.no_grad():
            graph.model.head[-1].bias[0] += 0.05  # one class a little likelier: other probabilities
        original(graph, fmt, file, size)

    monkeypatch.setattr(export, "_write_model", subtly_wrong)
    with pytest.raises(RunError, match="disagrees"):
        export.export_run(trained_run.path, "onnx", tmp_path / "b")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".export-*"))


# 9: a photo in both train and test is reported as such -------------------------------------------
def test_the_same_photo_in_train_and_test_is_reported_across_splits(tmp_path):
    from tl_core.train import prepare_data

    root = tmp_path / "pre-split"
    make_folder(root / "train", per_class=6, classes=("red", "blue"))
    make_folder(root / "test", per_class=2, classes=("red", "blue"), seed=7)
    shutil.copy(root / "train" / "red" / "red_3.jpg", root / "test" / "red" / "again.jpg")
    report = prepare_data(TrainConfig(data=str(root)))[2]
    across = [i for i in report["issues"] if i["code"] == "duplicate_across_splits"]
    assert len(across) == 1 and {p.rsplit("/", 1)[-1] for p in across[0]["paths"]} == {"red_3.jpg", "again.jpg"}
    assert "across splits test/train" in across[0]["message"]


# 10: a recycled pid of another program does not keep a run alive ---------------------------------
def test_a_pid_reused_by_another_program_is_not_a_live_run(tmp_path):
    from tl_core.runs import pid_alive, run_state

    other = subprocess.Popen(["sleep", "30"])
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "-m", "tl_core", "train"])
    try:
        time.sleep(0.3)
        assert not pid_alive(other.pid) and pid_alive(ours.pid)
        run = RunDir.create(tmp_path)
        run.write_status(state="running", pid=other.pid)
        assert run_state(run) == "interrupted"
        run.write_status(state="running", pid=ours.pid)
        assert run_state(run) == "running"
    finally:
        for p in (other, ours):
            p.kill()
            p.wait()
    assert not pid_alive(ours.pid)


# The recipe on real photos: a floor measured, not guessed ----------------------------------------
SAMPLE = ROOT / "sample_data" / "sign-language-digits"


@pytest.mark.slow
@pytest.mark.parametrize("scenario,floor", [(1, 0.70), (3, 0.83)])
def test_recipe_accuracy_on_the_bundled_real_photos(tmp_path, scenario, floor):
    """200 hand-sign photos (Apache-2.0), default split (30 test images), seed 0. Measured here:
    scenario 1 0.767 (23 of 30, early-stopped at epoch 45), scenario 3 0.900 (27 of 30); each floor
    is two test images under it. Also: early stopping really stops, and the reported best epoch is
    the epoch with the best validation score."""
    run = new_run(tmp_path, TrainConfig(data=str(SAMPLE), scenario=scenario, cache_dir=str(tmp_path / "cache")))
    result = train_run(run)
    assert result["test_accuracy"] >= floor, result
    epochs = [r for r in run.metrics() if r["kind"] == "epoch"]
    best = max(epochs, key=lambda r: (engine.score(r), -epochs.index(r)))
    evaluated = json.loads(run.eval_file.read_text())
    assert (evaluated["best_stage"], evaluated["best_epoch"]) == (best["stage"], best["epoch"])
    if scenario == 1:
        assert result["stop_reason"] == "early_stopped"
        assert epochs[-1]["epoch"] == best["epoch"] + 5  # the default patience


# A generated fixture where the recipe's choices show ----------------------------------------------
def _knn_by_depth(folder, depths: tuple[int, ...]) -> dict[int, float]:
    """5-NN accuracy (the measure step's similarity test) on the pooled output of the first
    ``depth`` layer groups of the pretrained default backbone."""
    from tl_core.backbones import get_backbone
    from tl_core.data import scan_folder
    from tl_core.measure import knn_accuracy
    from tl_core.model import build_model
    from tl_core.transforms import ImageDataset, eval_transform

    spec = get_backbone("efficientnet_lite0")
    model = build_model(spec, 3).eval()
    items = scan_folder(folder).items
    loader = torch.utils.data.DataLoader(ImageDataset(items, eval_transform(spec.preprocess), spec.preprocess),
                                         batch_size=40)
    with torch.inference_mode():
        batches = [x for x, _y, _i in loader]
        out = {}
        for depth in depths:
            feats = torch.cat([model.forward_body(x, 0, depth).mean(dim=(2, 3)) for x in batches])
            out[depth] = knn_accuracy(feats, [it.label for it in items])
    return out


@pytest.mark.slow
def test_shapes_need_the_late_layers_that_colours_do_not(image_folder, shapes_folder):
    """Why the shapes fixture exists: on the colour fixture the first two layer groups already
    separate every class, so a recipe that froze or fed the wrong layers would still score 100%.
    On shapes the early groups are near chance (1/3) and only the whole network separates them.
    Measured here: colours 1.00 at 2 groups; shapes 0.29 / 0.42 / 0.90 at 2 / 5 / 18 groups."""
    colours = _knn_by_depth(image_folder, (2,))
    shapes = _knn_by_depth(shapes_folder, (2, 5, 18))
    assert colours[2] == 1.0
    assert shapes[2] < 0.5 and shapes[5] < 0.55, shapes
    assert shapes[18] >= 0.8, shapes


@pytest.mark.slow
def test_recipe_accuracy_on_generated_shapes(tmp_path, shapes_folder):
    """Scenario 1's head on frozen features of generated shapes (18 test images). Measured here:
    0.944 (17 of 18); the floor is two images under it. The colour fixture gives 100% to any recipe."""
    run = new_run(tmp_path, TrainConfig(data=str(shapes_folder), scenario=1, cache_dir=str(tmp_path / "cache")))
    result = train_run(run)
    assert result["test_accuracy"] >= 0.83, result
    assert json.loads(run.eval_file.read_text())["test"]["n"] == 18
