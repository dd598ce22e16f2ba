"""Registry conformance over every backbone (random weights, no download) and weight loading."""

from __future__ import annotations

import dataclasses
import urllib.error

import pytest
import torch

from tl_core.backbones import get_backbone, list_backbones
from tl_core.errors import ConfigError, WeightsError
from tl_core.model import TransferModel

ALL = list_backbones("*")


@pytest.fixture()
def hub_dir(tmp_path):
    """Point torch's hub cache at an empty folder for one test, then restore it."""
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(old)


def test_registry_lists_expected_names_and_wildcards():
    for name in ["efficientnet_lite0", "vgg16", "resnet18", "resnet50", "mobilenet_v3_large", "efficientnet_b0",
                 "convnext_tiny"]:
        assert name in ALL
    assert list_backbones("resnet*") == ["resnet18", "resnet50"]
    assert list_backbones("nothing*") == []
    assert get_backbone(None).name == "efficientnet_lite0"


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ConfigError, match="unknown backbone 'resnet19'.*resnet18"):
        get_backbone("resnet19")


@pytest.mark.parametrize("name", ALL)
def test_backbone_conformance(name):
    spec = get_backbone(name)
    net = spec.build()
    groups = spec.groups(net)
    assert len(groups) >= 5, "groups must be fine enough to freeze a share of the network"
    model = TransferModel(groups, spec.feature_dim, num_classes=3)
    # Every body parameter belongs to exactly one group.
    seen = {}
    for gname, module in groups:
        for p in module.parameters():
            assert id(p) not in seen, f"parameter in both {seen.get(id(p))} and {gname}"
            seen[id(p)] = gname
    assert len(seen) == len(list(model.body.parameters()))
    assert sum(model.group_param_counts()) == sum(p.numel() for p in model.body.parameters())
    # The classifier of the ImageNet net is not part of the body.
    assert sum(model.group_param_counts()) < spec.params
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        feats = model.eval().forward_pooled(x)
        logits = model(x)
    assert feats.shape == (2, spec.feature_dim)
    assert logits.shape == (2, 3)
    pre = spec.preprocess
    assert pre.crop == spec.input_size and pre.resize >= pre.crop and len(pre.mean) == 3 and spec.license


def test_efficientnet_lite0_real_weights_load_strictly_offline():
    spec = get_backbone("efficientnet_lite0")
    assert spec.weights_available()
    net = spec.load_pretrained()
    random_net = spec.build()
    # Real weights differ from a fresh init and carry ImageNet BatchNorm statistics.
    assert not torch.equal(net.conv_stem.weight, random_net.conv_stem.weight)
    assert net.bn1.running_var.mean() != 1.0
    with torch.inference_mode():
        out = net(torch.zeros(1, 3, 224, 224))
    assert out.shape == (1, 1000)


def test_torchvision_weights_offline_error_names_file_and_fix(hub_dir, monkeypatch):

    def offline(url, dst, progress=True):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    spec = get_backbone("resnet18")
    assert not spec.weights_available()
    with pytest.raises(WeightsError) as info:
        spec.load_pretrained()
    msg = str(info.value)
    assert "resnet18-f37072fd.pth" in msg and "--weights" in msg and str(hub_dir) in msg


def test_weights_file_in_torchvision_format_loads(tmp_path, hub_dir):
    spec = get_backbone("resnet18")
    reference = spec.build()
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(reference.state_dict(), path)
    loaded = spec.load_pretrained(weights=path)
    assert torch.equal(loaded.fc.weight, reference.fc.weight)
    # The same file put in torch's cache is found without --weights.
    spec.cache_path().parent.mkdir(parents=True)
    path.rename(spec.cache_path())
    assert spec.weights_available()
    assert torch.equal(spec.load_pretrained().fc.weight, reference.fc.weight)


def test_wrong_weights_file_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"something": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="do not fit resnet18"):
        get_backbone("resnet18").load_pretrained(weights=path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        get_backbone("resnet18").load_pretrained(weights=path)


def test_spec_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_backbone("resnet18").name = "x"
