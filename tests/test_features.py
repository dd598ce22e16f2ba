"""The feature cache: hit on the same inputs, miss when any part of the key changes."""

from __future__ import annotations

import dataclasses
import os
import shutil

import pytest
import torch

from tl_core.backbones import get_backbone
from tl_core.data import scan_folder
from tl_core.features import cache_key, cached_features
from tl_core.model import build_model


@pytest.fixture(scope="module")
def lite0_spec():
    return get_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def lite0_model(lite0_spec):
    return build_model(lite0_spec, num_classes=3, pretrained=False)


def test_key_changes_with_each_part(image_folder, lite0_spec, tmp_path):
    items = scan_folder(image_folder).items[:4]
    paths = [it.path for it in items]
    base = cache_key(paths, lite0_spec)
    assert cache_key(list(reversed(paths)), lite0_spec) == base  # order does not matter
    assert cache_key(paths[:3], lite0_spec) != base  # file set
    assert cache_key(paths, get_backbone("efficientnet_lite1")) != base  # backbone
    other_pre = dataclasses.replace(lite0_spec, preprocess=dataclasses.replace(lite0_spec.preprocess, resize=240))
    assert cache_key(paths, other_pre) != base  # preprocessing
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"0" * 10)
    assert cache_key(paths, lite0_spec, weights=str(weights)) != base  # weights file
    assert cache_key(paths, lite0_spec, frozen_groups=3) != base  # where features are taken
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(open(paths[0], "rb").read())
    os.utime(copy, ns=(1_000_000_000, 1_000_000_000))
    k1 = cache_key([str(copy)] + paths[1:], lite0_spec)
    os.utime(copy, ns=(2_000_000_000, 2_000_000_000))
    assert cache_key([str(copy)] + paths[1:], lite0_spec) != k1  # modification time


def test_cached_features_hit_and_miss(image_folder, lite0_spec, lite0_model, cache_dir, tmp_path):
    mine = shutil.copytree(image_folder, tmp_path / "mine")  # this test edits a photo: the shared folder stays as it is
    items = scan_folder(mine).items[:6]
    calls = []
    feats, status = cached_features(lite0_model, items, lite0_spec, cache_dir, progress=lambda d, t: calls.append(d))
    assert status == "miss" and feats.shape == (6, 1280) and calls[-1] == 6
    again, status = cached_features(lite0_model, list(reversed(items)), lite0_spec, cache_dir)
    assert status == "hit"
    assert torch.equal(again, feats.flip(0))  # rows follow the requested order
    other = dataclasses.replace(lite0_spec, preprocess=dataclasses.replace(lite0_spec.preprocess, crop=192))
    _, status = cached_features(lite0_model, items, other, cache_dir)
    assert status == "miss"
    os.utime(items[0].path)  # the user edited a photo
    _, status = cached_features(lite0_model, items, lite0_spec, cache_dir)
    assert status == "miss"
    weights = tmp_path / "w.pth"
    torch.save(lite0_spec.build().state_dict(), weights)
    _, status = cached_features(lite0_model, items, lite0_spec, cache_dir, weights=str(weights))
    assert status == "miss"


def test_damaged_cache_file_is_recomputed(image_folder, lite0_spec, lite0_model, cache_dir):
    items = scan_folder(image_folder).items[:2]
    cached_features(lite0_model, items, lite0_spec, cache_dir)
    for f in cache_dir.iterdir():
        f.write_bytes(b"broken")
    feats, status = cached_features(lite0_model, items, lite0_spec, cache_dir)
    assert status == "miss" and feats.shape == (2, 1280)
