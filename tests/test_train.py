"""Training runs end to end on a tiny generated data set with the real offline ImageNet weights."""

from __future__ import annotations

import json

import pytest
import torch

from tl_core import checkpoints as ckpt
from tl_core.config import TrainConfig
from tl_core.engine import Callback
from tl_core.errors import ConfigError, DatasetError
from tl_core.runs import RunDir, read_json, run_state
from tl_core.train import train_run


def _run(tmp_path, image_folder, cache_dir, **kw):
    cfg = TrainConfig(data=str(image_folder), cache_dir=str(cache_dir), **kw)
    run = RunDir.create(tmp_path / "runs")
    cfg.save(run.config_file)
    return run, train_run(run, cfg)


def test_head_only_learns_and_reuses_the_cache(tmp_path, image_folder, cache_dir):
    run, result = _run(tmp_path, image_folder, cache_dir, scenario=1)
    assert result["feature_cache"] == "miss" and result["frozen_fraction"] == 1.0
    assert result["test_accuracy"] >= 0.8 and result["val_accuracy"] >= 0.8
    assert result["trainable_params"] == 1280 * 64 + 64 + 64 * 3 + 3
    # Run directory contents.
    cfg = json.loads(run.config_file.read_text())
    # 24 training images = 1 step per epoch: the cheap cached head gets enough epochs for 400 steps.
    assert cfg["scenario"] == 1 and cfg["epochs"] == 300 and cfg["augment"] == "none"
    assert run.labels() == ["blue", "green", "red"]
    split = read_json(run.split_file)
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == 36
    records = run.metrics()
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(epochs) == result["epochs_run"] and {"train_loss", "val_acc", "lr", "images_per_s"} <= set(epochs[0])
    assert any(r["kind"] == "batch" for r in records)
    assert run_state(run) == "succeeded" and run.status()["result"]["test_accuracy"] == result["test_accuracy"]
    ev = read_json(run.eval_file)
    assert ev["test"]["confusion"] and len(ev["test"]["per_class"]) == 3
    # Same data, other head settings: the features come from the cache.
    _, second = _run(tmp_path, image_folder, cache_dir, scenario=1, epochs=5, head_hidden=0, head_lr=3e-3)
    assert second["feature_cache"] == "hit"
    assert second["trainable_params"] == 1280 * 3 + 3


@pytest.mark.slow
def test_fine_tune_scenario_uses_discriminative_stage(tmp_path, image_folder, cache_dir):
    run, result = _run(tmp_path, image_folder, cache_dir, scenario=3, epochs=1, head_epochs=3, batch_size=8)
    assert 0.33 <= result["frozen_fraction"] <= 0.5
    stages = {r["stage"] for r in run.metrics() if r["kind"] == "epoch"}
    assert stages == {"head", "finetune"}
    assert result["epochs_run"] == 4
    last = ckpt.load_checkpoint(run.checkpoint("last"))
    assert last["stage"] == "finetune" and last["epoch"] == 1
    assert result["trainable_params"] > 1_000_000
    assert result["prefix_cache"] == "miss"  # fine-tuned on cached activations at the freeze boundary


def test_prefix_cache_over_its_memory_limit_falls_back_to_images(tmp_path, image_folder, cache_dir, monkeypatch):

    monkeypatch.setenv("TL_PREFIX_CACHE_MAX_GB", "0.000001")
    _, result = _run(tmp_path, image_folder, cache_dir, scenario=3, epochs=1, head_epochs=2, batch_size=8)
    assert result["prefix_cache"] == "too_large" and result["epochs_run"] == 3
    assert result["test_accuracy"] is not None


def test_stop_file_stops_between_batches(tmp_path, image_folder, cache_dir, monkeypatch):
    cfg = TrainConfig(data=str(image_folder), cache_dir=str(cache_dir), scenario=1, epochs=50, batch_size=4,
                      patience=0)
    run = RunDir.create(tmp_path / "runs")
    cfg.save(run.config_file)

    class StopAtEpoch3(Callback):
        def on_epoch_end(self, trainer, record):
            if trainer.epoch == 3:
                run.request_stop()

    import tl_core.stages as stages

    monkeypatch.setattr(stages, "EarlyStopping", lambda patience: StopAtEpoch3())
    result = train_run(run, cfg)
    assert result["stop_reason"] == "stopped" and result["epochs_run"] == 3
    assert run_state(run) == "stopped"
    assert result["test_accuracy"] is not None  # the best model so far is still evaluated


@pytest.mark.slow
def test_resume_continues_from_last_checkpoint(tmp_path, image_folder, cache_dir):
    cfg = TrainConfig(data=str(image_folder), cache_dir=str(cache_dir), scenario=1, epochs=6, patience=0)
    run = RunDir.create(tmp_path / "runs")
    cfg.save(run.config_file)
    full_run, full = _run(tmp_path, image_folder, cache_dir, scenario=1, epochs=6, patience=0)

    import tl_core.engine as engine

    class Crash(Callback):
        def on_epoch_end(self, trainer, record):
            if trainer.epoch == 3:
                raise RuntimeError("simulated crash")

    original = engine.Trainer.fit

    def crashing_fit(self):
        self.callbacks.append(Crash())
        return original(self)

    engine.Trainer.fit = crashing_fit
    try:
        with pytest.raises(RuntimeError):
            train_run(run, cfg)
    finally:
        engine.Trainer.fit = original
    assert ckpt.load_checkpoint(run.checkpoint("last"))["epoch"] == 3
    resumed = train_run(run, None, resume=True)
    assert resumed["epochs_run"] == 3  # epochs 4..6 only
    epochs = [r["epoch"] for r in run.metrics() if r["kind"] == "epoch"]
    assert epochs == [1, 2, 3, 4, 5, 6]
    # Same data order and optimizer state: the resumed run ends where an uninterrupted one does.
    a = ckpt.load_checkpoint(run.checkpoint("last"))["model"]
    b = ckpt.load_checkpoint(full_run.checkpoint("last"))["model"]
    assert torch.allclose(a["head.0.weight"], b["head.0.weight"], atol=1e-5)


def test_refuses_what_cannot_work(tmp_path, cache_dir):
    from conftest import make_folder

    data = make_folder(tmp_path / "one", per_class=5, classes=("red",))
    with pytest.raises(DatasetError, match="at least 2"):
        _run(tmp_path, data, cache_dir)
    with pytest.raises(ConfigError, match="scenario must be"):
        TrainConfig(data="x", scenario=7)


def test_decoded_images_give_the_same_pixels_and_stay_bounded(image_folder, tmp_path):
    """Augmented epochs start from images decoded and resized once; the pixels equal a fresh
    decode, and past the memory limit images are simply decoded again."""
    from PIL import Image

    from tl_core.backbones import get_backbone
    from tl_core.transforms import DecodedImages, eval_transform, load_for

    pre = get_backbone("efficientnet_lite0").preprocess
    big = tmp_path / "big.jpg"
    Image.open(next(image_folder.rglob("*.jpg"))).resize((900, 600)).save(big)  # downscaled once, at load
    paths = [str(p) for p in sorted(image_folder.rglob("*.jpg"))[:4]] + [str(big)]
    decoded = DecodedImages(pre)
    for p in paths:
        fresh = eval_transform(pre)(load_for(p, pre))
        assert torch.equal(eval_transform(pre, predecoded=True)(decoded(p)), fresh)
        assert decoded(p) is decoded.store[p]  # the second call comes from memory
    assert decoded.store[str(big)].shape == (3, pre.resize, 384)  # short side resized, aspect kept
    tight = DecodedImages(pre, max_bytes=3 * pre.resize * pre.resize)
    for p in paths:
        tight(p)
    assert len(tight.store) == 1 and tight.bytes <= tight.max_bytes


@pytest.mark.slow
def test_augmented_fine_tune_records_time_spent_waiting_for_data(tmp_path, image_folder, cache_dir):
    run, result = _run(tmp_path, image_folder, cache_dir, scenario=3, epochs=2, head_epochs=1, batch_size=8,
                       augment="light")
    assert result["prefix_cache"] == "off"  # augmentation changes every epoch's input: no prefix cache
    epochs = [r for r in run.metrics() if r["kind"] == "epoch" and r["stage"] == "finetune"]
    assert len(epochs) == 2 and all(r["data_seconds"] <= r["seconds"] for r in epochs)


def test_data_seconds_count_the_wait_for_batches_not_the_training_step():
    """A loader that takes 50 ms a batch and a step that takes 50 ms: the engine must put the
    first in ``data_seconds`` and not the second (sleeps last at least that long on any machine)."""
    import time

    from tl_core.engine import Trainer

    model = torch.nn.Linear(4, 2)

    def slow_batches(epoch):
        for _i in range(6):
            time.sleep(0.05 if slow_data else 0)
            yield torch.randn(8, 4), torch.randint(0, 2, (8,))

    def forward(x):
        time.sleep(0 if slow_data else 0.05)
        return model(x)

    records = {}
    for slow_data in (True, False):
        trainer = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), slow_batches, lambda: [], forward, 1)
        trainer.fit()
        records[slow_data] = trainer.history[0]
    assert records[True]["data_seconds"] >= 0.3 and records[True]["seconds"] >= 0.3
    assert records[False]["seconds"] >= 0.3 and records[False]["data_seconds"] < 0.5 * records[True]["data_seconds"]


@pytest.mark.parametrize("level", ["light", "strong"])
def test_augmentation_is_random_per_sample_but_reproducible(image_folder, level):
    from tl_core.backbones import get_backbone
    from tl_core.data import Item
    from tl_core.transforms import DecodedImages, ImageDataset, train_transform

    pre = get_backbone("efficientnet_lite0").preprocess
    items = [Item(str(p), 0) for p in sorted(image_folder.rglob("*.jpg"))[:3]]
    ds = ImageDataset(items, train_transform(pre, level, predecoded=True), pre, DecodedImages(pre), seed=7)
    first = ds[0][0]
    assert first.shape == (3, pre.crop, pre.crop) and first.dtype == torch.float32
    assert torch.equal(ds[0][0], first)  # same seed, epoch and sample: same picture (any thread)
    ds.epoch = 1
    assert not torch.equal(ds[0][0], first)  # next epoch: another crop / flip / colour
    assert not torch.equal(ds[1][0], ds[2][0])


@pytest.mark.slow
def test_a_one_epoch_fine_tune_of_a_few_batches_trains(tmp_path, image_folder, cache_dir):
    """The one-cycle schedule needs a few steps per phase; shorter runs keep a constant rate."""
    for batch_size, epochs in ((8, 1), (8, 2), (4, 2)):  # 3, 6 and 12 steps
        _, result = _run(tmp_path, image_folder, cache_dir, scenario=2, epochs=epochs, head_epochs=1,
                         batch_size=batch_size)
        assert result["stop_reason"] == "completed" and result["epochs_run"] == epochs + 1


def test_one_progress_bar_that_never_goes_back(tmp_path, image_folder, cache_dir, monkeypatch):
    """Across features, head epochs, the frozen-prefix pass and fine-tuning, the bar only moves
    forward, it moves during the feature pass, and no speed is reported from a split-second window."""
    from tl_core.runs import RunDir

    written = []
    original = RunDir.write_status

    def record(self, **fields):
        written.append(dict(fields))
        return original(self, **fields)

    monkeypatch.setattr(RunDir, "write_status", record)
    run, _result = _run(tmp_path, image_folder, cache_dir, scenario=3, epochs=2, head_epochs=2, batch_size=8)
    bars = [w["progress"] for w in written if "progress" in w]
    assert bars == sorted(bars), bars
    assert bars[-1] == 1.0
    stages = [w.get("stage") for w in written if "progress" in w]
    assert "features" in stages and "prefix" in stages
    assert any(w["progress"] > 0 for w in written if w.get("stage") == "features")
    # the first write of a stage comes after a batch or two: too short a window for images/s
    for stage in ("head", "finetune"):
        assert next(w for w in written if w.get("stage") == stage).get("images_per_s") is None


def test_epoch_snapshots_copy_what_training_changes_and_share_the_frozen_weights(tmp_path):
    """A head-only epoch takes milliseconds; copying the whole frozen network after each one cost
    more than the epoch. The snapshot must still keep the values of the epoch it was taken at."""
    from types import SimpleNamespace

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)  # the frozen part
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    trainer = SimpleNamespace(model=model, optimizer=opt, scheduler=None, epoch=1, stage="head", step=1)
    saver = ckpt.Checkpointer(RunDir.create(tmp_path / "runs"), {}, min_interval=1e9)  # nothing written yet
    saver.on_epoch_end(trainer, {"val_acc": 0.5, "val_loss": 1.0})
    head_before = model[2].weight.detach().clone()
    model.train()
    model(torch.randn(8, 4)).sum().backward()  # a later step changes the head and the BatchNorm statistics
    opt.step()
    assert not torch.equal(model[2].weight, head_before)
    state = saver.pending["last"]["model"]
    assert torch.equal(state["2.weight"], head_before) and torch.equal(saver.pending["best"]["model"]["2.weight"],
                                                                       head_before)
    assert torch.equal(state["1.running_mean"], torch.zeros(4))  # buffers are copied too
    assert state["0.weight"].data_ptr() == model[0].weight.data_ptr()  # frozen: shared, not copied
    saver.flush()
    assert torch.equal(ckpt.load_checkpoint(saver.run.checkpoint("last"))["model"]["2.weight"], head_before)
