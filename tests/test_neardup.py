"""Near duplicates by feature distance: planted copies (other bytes, same photo) are found, and
every later split keeps each group on one side."""

from __future__ import annotations

import json
import random

import pytest
from PIL import Image, ImageDraw, ImageEnhance

from conftest import SHARED_DATASETS, run_cli
from tl_core.curation import load_curation
from tl_core.data import Item, scan_folder, validate
from tl_core.neardup import find_near_duplicates, group_pairs, similar_pairs
from tl_core.splits import keep_together, make_split


def scene(seed: int, size: int = 224) -> Image.Image:
    """A random 'photo' of coloured shapes: distinct seeds give clearly different features."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), tuple(rng.randint(0, 255) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(5, 12)):
        x, y, w, h = rng.randint(-20, size), rng.randint(-20, size), rng.randint(20, 120), rng.randint(20, 120)
        rng.choice([draw.ellipse, draw.rectangle])([x, y, x + w, y + h],
                                                   fill=tuple(rng.randint(0, 255) for _ in range(3)))
    return img


@pytest.fixture()
def with_copies(tmp_path):
    """3 classes x 20 scenes, and of 6 of them a slightly brighter, recompressed copy (other bytes)."""
    root = tmp_path / "scenes"
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(20):
            scene(c * 100 + i).save(root / f"c{c}" / f"{i}.jpg", quality=90)
    planted = []
    for c, i in [(0, 3), (0, 4), (1, 5), (1, 6), (2, 7), (2, 8)]:
        im = Image.open(root / f"c{c}" / f"{i}.jpg")
        ImageEnhance.Brightness(im).enhance(1.04).save(root / f"c{c}" / f"{i}_copy.jpg", quality=80)
        planted.append([f"c{c}/{i}.jpg", f"c{c}/{i}_copy.jpg"])
    return root, sorted(planted)


def test_planted_copies_are_found_and_kept_on_one_side_of_the_split(with_copies, cache_dir):
    root, planted = with_copies
    before = make_split(validate(scan_folder(root))[1], seed=1)
    where = {str(it.path): part for part, items in before.items() for it in items}
    spread = [g for g in planted if len({where[str(root / p)] for p in g}) > 1]
    assert spread, "the fixture should make the plain split separate some copies"
    result = find_near_duplicates(root, cache_dir=str(cache_dir))
    assert sorted(g["paths"] for g in result["groups"]) == planted
    assert all(g["similarity"] >= result["threshold"] for g in result["groups"]) and not result["too_alike"]
    assert sorted(load_curation(root).groups) == planted  # remembered in the data set's file
    for seed in (0, 1, 2):
        split = make_split(validate(scan_folder(root))[1], seed=seed)
        where = {str(it.path): part for part, items in split.items() for it in items}
        for g in planted:
            assert len({where[str(root / p)] for p in g}) == 1, (seed, g)
        assert sum(len(v) for v in split.values()) == 66


def test_keep_together_prefers_train_and_leaves_other_images_alone():
    split = {"train": [Item("/d/a", 0), Item("/d/x", 0)], "val": [Item("/d/b", 0)],
             "test": [Item("/d/c", 0), Item("/d/y", 1), Item("/d/z", 1)]}
    out = keep_together(split, [["/d/a", "/d/c"], ["/d/b", "/d/y"], ["/d/gone", "/d/z"]])
    assert [it.path for it in out["train"]] == ["/d/a", "/d/x", "/d/c"]
    assert [it.path for it in out["val"]] == ["/d/b", "/d/y"] and [it.path for it in out["test"]] == ["/d/z"]
    assert keep_together(split, []) is split


def test_pairs_and_groups():
    import torch

    f = torch.tensor([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.02, 1.0], [0.03, 0.99], [-1.0, 0.0]])
    pairs = similar_pairs(f, 0.99, chunk=2)
    assert {(i, j) for i, j, _s in pairs} == {(0, 1), (2, 3), (2, 4), (3, 4)}
    assert group_pairs(6, pairs) == [[0, 1], [2, 3, 4]]


def test_photos_that_all_look_alike_are_not_grouped(tmp_path, cache_dir):
    from conftest import make_folder

    root = make_folder(tmp_path / "alike", per_class=12)  # generated stripes/dots: near-identical features
    result = find_near_duplicates(root, cache_dir=str(cache_dir))
    assert result["too_alike"] and result["groups"] == [] and load_curation(root).groups == []


def test_cli_duplicates(with_copies, cache_dir):
    root, planted = with_copies
    r = run_cli("duplicates", "--data", str(root), "--cache-dir", str(cache_dir), "--json")
    assert r.returncode == 0, r.stderr
    assert sorted(g["paths"] for g in json.loads(r.stdout.strip().splitlines()[-1])["groups"]) == planted
    r = run_cli("duplicates", "--data", str(root), "--threshold", "1.5")
    assert r.returncode == 2 and "--threshold must be in (0, 1]" in r.stderr


CATS = SHARED_DATASETS / "cats-vs-dogs" / "train"


@pytest.mark.slow
@pytest.mark.skipif(not CATS.is_dir(), reason="shared cats-vs-dogs data set not on this machine")
def test_the_known_duplicate_pair_of_cats_vs_dogs_is_found(tmp_path):
    import shutil

    shutil.copytree(CATS, tmp_path / "train")  # the shared folder is read-only: the groups file goes here
    result = find_near_duplicates(tmp_path / "train", remember=False)
    assert not result["too_alike"] and 1 <= len(result["groups"]) <= 5


def test_a_test_set_the_user_supplied_is_never_changed():
    """A user's own test folder (or --test-data) is their benchmark: its images stay. A training copy
    of one of its photos leaves training instead, so the score is not inflated either way."""
    split = {"train": [Item("/d/a", 0), Item("/d/b", 0), Item("/d/x", 1)], "val": [Item("/d/v", 1)],
             "test": [Item("/d/t", 0)]}
    out = keep_together(split, [["/d/a", "/d/t"], ["/d/b", "/d/v"]], fixed=("test",))
    assert [it.path for it in out["test"]] == ["/d/t"]  # untouched
    assert [it.path for it in out["train"]] == ["/d/b", "/d/x", "/d/v"]  # /d/a (a copy of /d/t) left training
    assert [it.path for it in out["val"]] == []  # carved by the app: /d/v joined its copy in train
