"""The Lightweight OpenPose network, with heads sized from a skeleton.

Module and parameter names follow the reference implementation exactly (`model`, `cpm`,
`initial_stage`, `refinement_stages`, and the index layout inside each `nn.Sequential`), so
its published checkpoints load by name. That is why the small building blocks below are plain
`nn.Sequential`s: the position of each layer inside them *is* its parameter name
(e.g. `model.1.3.weight` is the pointwise convolution of the first depthwise-separable block).

`width` scales every internal channel count for small CPU runs; with width=1.0 every parameter
name and shape equals the reference's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

# Output stride of the backbone: three stride-2 layers. Targets are rendered at this stride.
STRIDE = 8


def scaled(channels: int, width: float) -> int:
    """Channel count times width, rounded to a multiple of 8 (at least 8); exact at width 1."""
    if width == 1.0:
        return channels
    return max(8, int(round(channels * width / 8)) * 8)


def conv_block(c_in: int, c_out: int, kernel: int = 3, padding: int = 1, *, bn: bool = True,
               relu: bool = True, stride: int = 1, dilation: int = 1, bias: bool = True) -> nn.Sequential:
    """[Conv2d, (BatchNorm2d), (ReLU)]; index 0 is always the convolution."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def separable_block(c_in: int, c_out: int, *, stride: int = 1, dilation: int = 1, bn: bool = True) -> nn.Sequential:
    """MobileNet-v1 depthwise 3x3 then pointwise 1x1, no biases.

    With batch norm (the backbone): [dw, bn, relu, pw, bn, relu] (pointwise at index 3);
    without (the CPM trunk): [dw, elu, pw, elu] (pointwise at index 2). The reference's trunk uses
    ELU there, not ReLU: same names and shapes, different function (conventions §4), so a ReLU here
    would make reference weights compute something else (tests/test_model.py compares outputs).
    """
    depthwise = nn.Conv2d(c_in, c_in, 3, stride, dilation, dilation=dilation, groups=c_in, bias=False)
    pointwise = nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False)
    if bn:
        return nn.Sequential(depthwise, nn.BatchNorm2d(c_in), nn.ReLU(inplace=True),
                             pointwise, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
    return nn.Sequential(depthwise, nn.ELU(inplace=True), pointwise, nn.ELU(inplace=True))


def backbone(width: float = 1.0) -> nn.Sequential:
    """MobileNet-v1 up to conv5_5 with output stride 8: conv4_2 keeps stride 1 (ImageNet
    MobileNet has stride 2 there) and the next block is dilated to keep the receptive field."""
    c = [scaled(n, width) for n in (32, 64, 128, 256, 512)]
    return nn.Sequential(
        conv_block(3, c[0], stride=2, bias=False),   # 0: conv1, stride 2
        separable_block(c[0], c[1]),                 # 1
        separable_block(c[1], c[2], stride=2),       # 2: stride 4
        separable_block(c[2], c[2]),                 # 3
        separable_block(c[2], c[3], stride=2),       # 4: stride 8
        separable_block(c[3], c[3]),                 # 5
        separable_block(c[3], c[4]),                 # 6: conv4_2
        separable_block(c[4], c[4], dilation=2),     # 7: dilated
        separable_block(c[4], c[4]),                 # 8
        separable_block(c[4], c[4]),                 # 9
        separable_block(c[4], c[4]),                 # 10
        separable_block(c[4], c[4]),                 # 11: conv5_5
    )


class Cpm(nn.Module):
    """Reduces backbone features to `channels`, with a residual depthwise trunk: align 1x1 + ReLU,
    three batch-norm-free separable blocks with ELU, then a 3x3 + ReLU (no batch norm anywhere)."""

    def __init__(self, c_in: int, channels: int):
        super().__init__()
        self.align = conv_block(c_in, channels, kernel=1, padding=0, bn=False)
        self.trunk = nn.Sequential(*[separable_block(channels, channels, bn=False) for _ in range(3)])
        self.conv = conv_block(channels, channels, bn=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.align(x)
        return self.conv(x + self.trunk(x))


def head(c_in: int, hidden: int, c_out: int) -> nn.Sequential:
    """1x1 conv + ReLU, then a linear 1x1 conv to the output maps."""
    return nn.Sequential(
        conv_block(c_in, hidden, kernel=1, padding=0, bn=False),
        conv_block(hidden, c_out, kernel=1, padding=0, bn=False, relu=False),
    )


class InitialStage(nn.Module):
    def __init__(self, channels: int, num_heatmaps: int, num_pafs: int, hidden: int = 512):
        super().__init__()
        self.trunk = nn.Sequential(*[conv_block(channels, channels, bn=False) for _ in range(3)])
        self.heatmaps = head(channels, hidden, num_heatmaps)
        self.pafs = head(channels, hidden, num_pafs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.trunk(x)
        return [self.heatmaps(features), self.pafs(features)]


class RefinementStageBlock(nn.Module):
    """1x1 projection plus a residual of a plain and a dilated 3x3 convolution."""

    def __init__(self, c_in: int, channels: int):
        super().__init__()
        self.initial = conv_block(c_in, channels, kernel=1, padding=0, bn=False)
        self.trunk = nn.Sequential(
            conv_block(channels, channels),
            conv_block(channels, channels, padding=2, dilation=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.initial(x)
        return x + self.trunk(x)


class RefinementStage(nn.Module):
    def __init__(self, c_in: int, channels: int, num_heatmaps: int, num_pafs: int):
        super().__init__()
        blocks = [RefinementStageBlock(c_in, channels)] + [RefinementStageBlock(channels, channels) for _ in range(4)]
        self.trunk = nn.Sequential(*blocks)
        self.heatmaps = head(channels, channels, num_heatmaps)
        self.pafs = head(channels, channels, num_pafs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.trunk(x)
        return [self.heatmaps(features), self.pafs(features)]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the network; stored in every checkpoint."""

    num_heatmaps: int
    num_pafs: int
    stages: int = 1  # refinement stages
    width: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


class PoseNet(nn.Module):
    """Backbone -> CPM -> initial stage -> N refinement stages.

    forward() returns [heatmaps_0, pafs_0, heatmaps_1, pafs_1, ...], one pair per stage, each at
    1/8 of the input resolution; the last pair is the prediction.
    """

    def __init__(self, num_heatmaps: int, num_pafs: int, stages: int = 1, width: float = 1.0):
        super().__init__()
        if num_heatmaps < 2 or num_pafs < 2 or num_pafs % 2:
            raise ValueError(f"need >= 2 heatmaps and an even number >= 2 of PAF channels, got {num_heatmaps}, {num_pafs}")
        if stages < 0:
            raise ValueError(f"refinement stages must be >= 0, got {stages}")
        if not 0 < width <= 4:
            raise ValueError(f"width must be in (0, 4], got {width}")
        self.spec = ModelSpec(num_heatmaps, num_pafs, stages, float(width))
        channels = scaled(128, width)
        self.model = backbone(width)
        self.cpm = Cpm(scaled(512, width), channels)
        self.initial_stage = InitialStage(channels, num_heatmaps, num_pafs, hidden=scaled(512, width))
        self.refinement_stages = nn.ModuleList(
            RefinementStage(channels + num_heatmaps + num_pafs, channels, num_heatmaps, num_pafs)
            for _ in range(stages)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.cpm(self.model(x))
        outputs = self.initial_stage(features)
        for stage in self.refinement_stages:
            outputs += stage(torch.cat([features, outputs[-2], outputs[-1]], dim=1))
        return outputs


def for_inference(model: nn.Module, copy: bool = True, channels_last: bool = True) -> nn.Module:
    """A copy of an eval-mode network to run inference with: each BatchNorm folded into the
    convolution before it, and the weights channels-last. Same function to float rounding (~1e-7).
    copy=False folds the model itself (a network nobody else holds: the ONNX graph writer's, read
    from a checkpoint for it); channels_last=False keeps the weights' layout (the graph writer
    copies them out as contiguous arrays anyway).

    Why (bench/README.md, "val"): the forward pass is most of `posedata val`'s CPU time (0.5 s of
    about 0.6 s per COCO image at 368, width 1.0), and a tenth of it was the BatchNorm passes after
    33 convolutions (backbone, refinement blocks), each a full read and write of a feature map; channels-last is
    oneDNN's own layout. Together they took 10-17% off the forward pass's CPU time. The copy has no
    BatchNorm parameters, so it is never saved as a checkpoint; a network in training mode (whose
    BatchNorm uses batch statistics) is returned as it is."""
    import copy as copying

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        return model
    fused = copying.deepcopy(model) if copy else model
    for seq in fused.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()  # keeps the positions (and so the names) of the layers after it
    return (fused.to(memory_format=torch.channels_last) if channels_last else fused).eval()


def build(spec: ModelSpec) -> PoseNet:
    return PoseNet(spec.num_heatmaps, spec.num_pafs, spec.stages, spec.width)


def for_skeleton(skeleton, stages: int = 1, width: float = 1.0) -> PoseNet:
    """Heads sized from the skeleton: K + 1 heatmaps (background last), 2 per limb PAFs."""
    return PoseNet(skeleton.num_heatmaps, skeleton.num_pafs, stages, width)


# ------------------------------------------------------------- optimiser groups
def _direct_params(root: nn.Module, predicate) -> list[nn.Parameter]:
    """Parameters owned directly (not through children) by modules of root matching predicate."""
    out = []
    for m in root.modules():
        for name, p in m.named_parameters(recurse=False):
            if predicate(m, name):
                out.append(p)
    return out


def _conv(name: str):
    return lambda m, n: isinstance(m, nn.Conv2d) and m.groups == 1 and n == name


def _depthwise(name: str):
    return lambda m, n: (isinstance(m, nn.Conv2d) and m.groups == m.in_channels
                         and m.in_channels == m.out_channels and n == name)


def _bn(name: str):
    return lambda m, n: isinstance(m, nn.BatchNorm2d) and n == name


def param_groups(net: PoseNet, base_lr: float) -> list[dict]:
    """The reference's Adam parameter groups (global weight decay 5e-4 set on the optimiser):
    no decay on depthwise and batch-norm weights or on biases, doubled learning rate for biases
    and BN shifts, and 4x / 8x learning rate for the refinement stages' weights / biases.

    Every parameter lands in exactly one group (checked), so a new layer cannot silently
    go untrained.
    """
    m, cpm, init, ref = net.model, net.cpm, net.initial_stage, net.refinement_stages
    groups = [
        {"name": "backbone.conv.weight", "params": _direct_params(m, _conv("weight"))},
        {"name": "backbone.depthwise.weight", "params": _direct_params(m, _depthwise("weight")), "weight_decay": 0},
        {"name": "backbone.bn.weight", "params": _direct_params(m, _bn("weight")), "weight_decay": 0},
        {"name": "backbone.bn.bias", "params": _direct_params(m, _bn("bias")), "lr": base_lr * 2, "weight_decay": 0},
        {"name": "cpm.conv.weight", "params": _direct_params(cpm, _conv("weight")), "lr": base_lr},
        {"name": "cpm.conv.bias", "params": _direct_params(cpm, _conv("bias")), "lr": base_lr * 2, "weight_decay": 0},
        {"name": "cpm.depthwise.weight", "params": _direct_params(cpm, _depthwise("weight")), "weight_decay": 0},
        {"name": "initial.conv.weight", "params": _direct_params(init, _conv("weight")), "lr": base_lr},
        {"name": "initial.conv.bias", "params": _direct_params(init, _conv("bias")), "lr": base_lr * 2, "weight_decay": 0},
        {"name": "refinement.conv.weight", "params": _direct_params(ref, _conv("weight")), "lr": base_lr * 4},
        {"name": "refinement.conv.bias", "params": _direct_params(ref, _conv("bias")), "lr": base_lr * 8, "weight_decay": 0},
        {"name": "refinement.bn.weight", "params": _direct_params(ref, _bn("weight")), "weight_decay": 0},
        {"name": "refinement.bn.bias", "params": _direct_params(ref, _bn("bias")), "lr": base_lr * 2, "weight_decay": 0},
    ]
    seen: dict[int, str] = {}
    for g in groups:
        for p in g["params"]:
            if id(p) in seen:
                raise RuntimeError(f"parameter in two optimiser groups: {seen[id(p)]} and {g['name']}")
            seen[id(p)] = g["name"]
    names = {id(p): n for n, p in net.named_parameters()}
    missing = [names[i] for i in names if i not in seen]
    if missing:
        raise RuntimeError(f"parameters in no optimiser group: {missing}")
    # Empty groups (no refinement stages) are harmless to Adam but clutter the state.
    return [g for g in groups if g["params"]]
