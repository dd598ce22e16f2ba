"""Registry conformance over every backbone (random weights, no download) and weight loading."""

from __future__ import annotations

import dataclasses
import urllib.error

import pytest
import torch

from tl_core.backbones import Preprocess, _build_uninitialised, get_backbone, list_backbones
from tl_core.errors import ConfigError, WeightsError
from tl_core.model import TransferModel

ALL = list_backbones("*")
OFFLINE = [n for n in ALL if get_backbone(n).weights_source[0] == "package"]
DOWNLOADED = [n for n in ALL if get_backbone(n).weights_source[0] == "torchvision"]


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


@pytest.mark.parametrize("name", OFFLINE)
def test_offline_weights_load_strictly_with_their_own_preprocessing(name):
    spec = get_backbone(name)
    assert spec.weights_available() and spec.check_weights().label == "ready offline"
    state = torch.load(spec.weights_file(), map_location="cpu", weights_only=True)
    random_net = spec.build()
    # Every tensor of the file gets its own name in the network, and every name is used.
    assert len(spec.key_map(state, random_net)) == len(state) == len(random_net.state_dict())
    net = spec.load_pretrained()
    assert not torch.equal(net.conv_stem.weight, random_net.conv_stem.weight)
    assert net.bn1.running_var.mean() != 1.0  # ImageNet BatchNorm statistics
    size = {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}[name]
    assert spec.preprocess == Preprocess(size + 32, size, (0.5,) * 3, (0.5,) * 3, "bicubic")
    with torch.inference_mode():
        out = net(torch.zeros(1, 3, size, size))
    assert out.shape == (1, 1000)


def _no_network(url, dst, *args, **kwargs):
    raise urllib.error.URLError("no network")


def _torchvision_weights(name: str):
    """torchvision's own weights enum entry for a registry name (``vgg16`` -> ``VGG16_Weights.DEFAULT``)."""
    import torchvision.models as tvm

    return tvm.get_model_weights(name).DEFAULT


def test_torchvision_weights_offline_error_names_file_and_fix(hub_dir, monkeypatch):
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    spec = get_backbone("resnet18")
    assert not spec.weights_available()
    with pytest.raises(WeightsError) as info:
        spec.load_pretrained()
    msg = str(info.value)
    assert "resnet18-f37072fd.pth" in msg and "--weights" in msg and str(hub_dir) in msg


@pytest.mark.parametrize("name", DOWNLOADED)
def test_weights_in_torch_hub_cache_are_found_offline_and_load_strictly(name, hub_dir, monkeypatch):
    """A file where torchvision's own loader looks for it is what the app loads, without a download."""
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_network)
    spec = get_backbone(name)
    assert spec.check_weights().label == "downloads on first use" and not spec.weights_available()
    reference = spec.build()
    spec.cache_path().parent.mkdir(parents=True)
    torch.save(reference.state_dict(), spec.cache_path())
    # torchvision itself finds the file there (right place, right format)...
    tv_state = _torchvision_weights(name).get_state_dict(progress=False)
    assert tv_state.keys() == reference.state_dict().keys()
    # ... and so does the app, which calls it ready only because it loads.
    assert spec.weights_available() and spec.check_weights().label == "ready offline"
    loaded = spec.load_pretrained()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in reference.state_dict().items())
    x = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(loaded(x), reference.eval()(x))  # nothing was left uninitialised


def test_a_cached_file_that_does_not_load_is_not_called_ready(hub_dir):
    spec = get_backbone("resnet18")
    spec.cache_path().parent.mkdir(parents=True)
    state = spec.build().state_dict()
    del state["fc.bias"]
    torch.save(state, spec.cache_path())
    check = spec.check_weights()
    assert not spec.weights_available() and check.state == "unusable" and "fc.bias" in check.detail
    # Replacing the file asks again (the answer is cached per file version, not per name).
    torch.save(spec.build().state_dict(), spec.cache_path())
    assert spec.weights_available()


def test_a_buffer_no_weights_file_restores_keeps_its_constructor_value():
    class WithTable(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 1)
            self.register_buffer("table", torch.arange(4.0), persistent=False)

    assert _build_uninitialised(lambda: torch.nn.Linear(2, 2)).weight.device.type == "cpu"  # not "meta"
    assert torch.equal(_build_uninitialised(WithTable).table, torch.arange(4.0))


def test_weights_file_given_by_path_loads(tmp_path):
    spec = get_backbone("resnet18")
    reference = spec.build()
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(reference.state_dict(), path)
    assert torch.equal(spec.load_pretrained(weights=path).fc.weight, reference.fc.weight)


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
