"""The feature map: PCA to 2-D, which classes overlap (measured in the full feature space), and the
figure / Data-page section that show it."""

from __future__ import annotations

import pytest
import torch

from tl_core.embedding import class_overlap, describe_overlap, embedding_map, pca_2d
from tl_core.figures import embedding_scatter


def clouds(mixed: bool) -> tuple[torch.Tensor, list[int]]:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[10.0, 0, 0], [0, 10.0, 0], [0, 10.0, 0.5] if mixed else [0, 0, 10.0]])
    x = torch.cat([c + torch.randn(30, 3, generator=g) for c in centres])
    return x, [0] * 30 + [1] * 30 + [2] * 30


def test_pca_finds_the_widest_directions():
    x = torch.randn(200, 5) * torch.tensor([10.0, 3.0, 0.1, 0.1, 0.1])
    points, variance = pca_2d(x)
    assert points.shape == (200, 2) and variance[0] > 0.85 and variance[0] > variance[1] > 0.05
    assert sum(variance) <= 1.0


def test_overlap_names_the_classes_that_mix():
    x, y = clouds(mixed=False)
    apart = class_overlap(x, y, 3)
    assert torch.allclose(apart.diagonal(), torch.ones(3))
    assert describe_overlap(apart, ["a", "b", "c"]).startswith("Every class forms its own cloud")
    x, y = clouds(mixed=True)
    mixed = class_overlap(x, y, 3)
    assert mixed[0, 0] == 1 and mixed[1, 2] + mixed[2, 1] > 0.3
    text = describe_overlap(mixed, ["a", "b", "c"])
    assert "'b' and 'c'" in text and "'a'" not in text


def test_overlap_in_chunks_equals_the_whole_matrix():
    x, y = clouds(mixed=True)
    assert torch.equal(class_overlap(x, y, 3, chunk=7), class_overlap(x, y, 3, chunk=10_000))


def test_map_of_a_folder_and_its_figure(image_folder, cache_dir):
    m = embedding_map(image_folder, cache_dir=str(cache_dir))
    assert m["classes"] == ["blue", "green", "red"] and m["images"] == 36
    assert len(m["x"]) == len(m["y"]) == len(m["labels"]) == len(m["paths"]) == 36
    assert m["summary"].startswith("Every class forms its own cloud"), m["summary"]
    fig = embedding_scatter(m)
    assert [t.name for t in fig.data] == m["classes"] and sum(len(t.x) for t in fig.data) == 36
    assert fig.data[0].customdata[0][0].endswith(".jpg")


@pytest.mark.slow
def test_maps_before_and_after_training(trained_run, image_folder, tmp_path):
    from tl_core.config import TrainConfig
    from tl_core.embedding import run_maps
    from tl_core.predict import Predictor
    from tl_core.runs import RunDir, read_json
    from tl_core.splits import split_from_json
    from tl_core.train import train_run

    from tl_core.errors import DatasetError
    from tl_core.runs import write_json_atomic

    frozen = run_maps(trained_run.path, cache_dir=str(tmp_path / "cache"))  # scenario 1: the body never changed
    n_test = len(split_from_json(read_json(trained_run.split_file))["test"])
    assert frozen["same"] and frozen["after"] is frozen["before"] and frozen["before"]["images"] == n_test
    run = RunDir.create(tmp_path / "runs")  # scenario 4: every layer trained, so the features moved
    cfg = TrainConfig(data=str(image_folder), scenario=4, epochs=1, head_epochs=0, batch_size=8,
                      cache_dir=str(tmp_path / "cache"))
    cfg.save(run.config_file)
    train_run(run, cfg)
    maps = run_maps(run.path, cache_dir=str(tmp_path / "cache"))
    assert not maps["same"] and maps["before"]["paths"] == maps["after"]["paths"]
    items = split_from_json(read_json(run.split_file))["test"]
    model = Predictor.from_run(run.path).model
    with torch.inference_mode():
        from tl_core.backbones import get_backbone
        from tl_core.features import extract_features

        trained = extract_features(model, items, get_backbone(cfg.backbone))
    assert maps["after"]["x"] == [round(float(v), 4) for v in pca_2d(trained)[0][:, 0]]  # the trained network's
    assert maps["before"]["x"] != maps["after"]["x"]
    split = read_json(run.split_file)
    write_json_atomic(run.split_file, {**split, "test": split["test"][:2]})  # trained without a real test part
    with pytest.raises(DatasetError, match="has 2 test images: a map needs at least 3"):
        run_maps(run.path)


def test_data_page_shows_the_map(env):
    from conftest import make_folder
    from test_app import app, page
    from test_app_data_tools import _use_server_folder

    make_folder(env / "data" / "colours", per_class=8)
    at = _use_server_folder(page(app(), "data"), "colours")
    at.button(key="d_map").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("forms its own cloud" in i.value for i in at.info)
    assert any("Each dot is one photo" in c.value for c in at.caption)
