"""The ONNX graph of a PoseNet written node by node from its modules, without torch.onnx.export.

Why: `infer --backend onnx` on a checkpoint exports the network in memory before the first image,
and torch.onnx.export (the TorchScript exporter) spent 1.4-1.8 CPU s at width 1.0 on it: a traced
forward pass at the input size (0.55 s), the exporter's graph passes (0.4 s) and its
serialisation, while ONNX Runtime's own session creation took 0.03-0.05 s (bench/README.md,
"infer"). The network is a fixed family (trainer/model.py: convolutions, BatchNorm, ReLU/ELU,
the CPM's and refinement blocks' residual adds, the concat before each refinement stage), so its
graph is a walk over the modules: 0.1 CPU s at width 1.0, most of it folding and copying the weights.

BatchNorm is folded into the convolution before it (trainer.model.for_inference, the torch
backend's own folding), so the graph holds Conv / Relu / Elu / Add / Concat only. Anything the
walk does not know (another module type, a subclass that may compute something else) raises
NotImplementedError, and the caller falls back to torch.onnx.export; parity with the torch model
is tested on real photos (tests/test_onnx_graph.py).
"""
from __future__ import annotations

import struct
from typing import Any

import numpy as np

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17; ONNX Runtime 1.17+ reads it


# ---------------------------------------------------------------- protobuf, written by hand
# The graph is written as onnx.proto's wire format directly, not with the onnx package: `import
# onnx` loads ml_dtypes, whose extension took 1.0-1.1 CPU s (2.5 s wall) to import here, more than
# writing the whole graph; onnxruntime itself never imports it. Field numbers are onnx-ml.proto's;
# tests/test_onnx_graph.py parses the bytes back with onnx and runs its checker on them.
def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 fields: two's complement, ten bytes
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(field: int, n: int) -> bytes:
    return _varint(field << 3) + _varint(n)


def _bytes(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _float(field: int, x: float) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<f", x)


_FLOAT, _INT, _INTS = 1, 2, 7  # AttributeProto.AttributeType
_TENSOR_FLOAT = 1  # TensorProto.DataType


def _attribute(name: str, value: Any) -> bytes:
    """AttributeProto: name 1, f 2, i 3, ints 8, type 20."""
    if isinstance(value, float):
        body = _float(2, value) + _int(20, _FLOAT)
    elif isinstance(value, int):
        body = _int(3, value) + _int(20, _INT)
    else:
        body = b"".join(_int(8, int(v)) for v in value) + _int(20, _INTS)
    return _bytes(1, name) + body


def _value_info(name: str, dims: list[int | str]) -> bytes:
    """ValueInfoProto (name 1, type 2) of a float tensor: TypeProto.tensor_type 1 -> elem_type 1,
    shape 2 -> dim 1 -> dim_value 1 or dim_param 2."""
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, _int(1, _TENSOR_FLOAT) + _bytes(2, shape)))


def model_bytes(nodes: list[bytes], weights: list[bytes], inputs: list[bytes], outputs: list[bytes],
                opset: int = OPSET, metadata: dict[str, str] | None = None) -> bytes:
    """A serialised ModelProto: ir_version 1, producer_name 2, graph 7 (node 1, name 2,
    initializer 5, input 11, output 12), opset_import 8 (domain 1, version 2), metadata_props 14."""
    graph = (b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "posenet") + b"".join(_bytes(5, w) for w in weights)
             + b"".join(_bytes(11, i) for i in inputs) + b"".join(_bytes(12, o) for o in outputs))
    meta = b"".join(_bytes(14, _bytes(1, k) + _bytes(2, v)) for k, v in (metadata or {}).items())
    return (_int(1, IR_VERSION) + _bytes(2, "posedata") + _bytes(7, graph)
            + _bytes(8, _bytes(1, "") + _int(2, opset)) + meta)


class _Graph:
    """Nodes and initializers of the graph being written (serialised), with unique value names."""

    def __init__(self) -> None:
        self.nodes: list[bytes] = []
        self.weights: list[bytes] = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def node(self, op: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        """NodeProto: input 1, output 2, name 3, op_type 4, attribute 5."""
        out = output or self.name(op.lower())
        self.nodes.append(b"".join(_bytes(1, i) for i in inputs) + _bytes(2, out) + _bytes(3, out) + _bytes(4, op)
                          + b"".join(_bytes(5, _attribute(k, v)) for k, v in attrs.items()))
        return out

    def weight(self, array: np.ndarray, hint: str) -> str:
        """TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian float32)."""
        name = self.name(hint)
        a = np.ascontiguousarray(array, dtype="<f4")
        self.weights.append(b"".join(_int(1, d) for d in a.shape) + _int(2, _TENSOR_FLOAT) + _bytes(8, name)
                            + _bytes(9, a.tobytes()))
        return name


def _conv(g: _Graph, conv: Any, x: str, output: str | None) -> str:
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise NotImplementedError(f"Conv2d padding {conv.padding!r} / {conv.padding_mode!r}")
    inputs = [x, g.weight(conv.weight.detach().cpu().numpy(), "W")]
    if conv.bias is not None:
        inputs.append(g.weight(conv.bias.detach().cpu().numpy(), "B"))
    ph, pw = conv.padding
    return g.node("Conv", inputs, output, kernel_shape=list(conv.kernel_size), strides=list(conv.stride),
                  pads=[ph, pw, ph, pw], dilations=list(conv.dilation), group=conv.groups)


def _sequential(g: _Graph, seq: Any, x: str, output: str | None = None) -> str:
    """A Sequential of Conv2d / ReLU / ELU / Identity; output names its last node."""
    from torch import nn

    layers = [m for m in seq if type(m) is not nn.Identity]
    for i, m in enumerate(layers):
        out = output if i == len(layers) - 1 else None
        if type(m) is nn.Conv2d:
            x = _conv(g, m, x, out)
        elif type(m) is nn.ReLU:
            x = g.node("Relu", [x], out)
        elif type(m) is nn.ELU:
            x = g.node("Elu", [x], out, alpha=float(m.alpha))
        elif type(m) is nn.Sequential:
            x = _sequential(g, m, x, out)
        else:
            raise NotImplementedError(f"no ONNX node for {type(m).__name__}")
    if output is not None and not layers:
        x = g.node("Identity", [x], output)
    return x


def _stage(g: _Graph, stage: Any, x: str, names: tuple[str | None, str | None]) -> tuple[str, str]:
    """InitialStage / RefinementStage: trunk, then the heatmap and PAF heads."""
    from .model import InitialStage, RefinementStage, RefinementStageBlock

    if type(stage) is InitialStage:
        features = _sequential(g, stage.trunk, x)
    elif type(stage) is RefinementStage:
        features = x
        for block in stage.trunk:
            if type(block) is not RefinementStageBlock:
                raise NotImplementedError(f"no ONNX node for {type(block).__name__}")
            features = _sequential(g, block.initial, features)
            features = g.node("Add", [features, _sequential(g, block.trunk, features)])
    else:
        raise NotImplementedError(f"no ONNX node for {type(stage).__name__}")
    return _sequential(g, stage.heatmaps, features, names[0]), _sequential(g, stage.pafs, features, names[1])


def posenet_model(model: Any, opset: int = OPSET, metadata: dict[str, str] | None = None,
                  fold_in_place: bool = False) -> bytes:
    """The serialised ONNX model of an eval-mode PoseNet's last stage: input 'image' (batch, 3,
    height, width), outputs 'heatmaps' and 'pafs' (batch, C, map_height, map_width), as
    torch.onnx.export with dynamic axes wrote it, with the given metadata_props. Raises
    NotImplementedError for anything but PoseNet's own modules. fold_in_place: BatchNorm is
    folded into the model itself, not a copy (a model nobody else runs: saves copying the weights)."""
    from .model import Cpm, PoseNet, for_inference

    if type(model) is not PoseNet or model.training:
        raise NotImplementedError("the graph writer takes an eval-mode PoseNet")
    # BatchNorm folded, as the torch backend runs it; the weights' layout is left as it is, since
    # they are copied out as contiguous arrays
    net = for_inference(model, copy=not fold_in_place, channels_last=False)
    g = _Graph()
    cpm = net.cpm
    if type(cpm) is not Cpm:
        raise NotImplementedError(f"no ONNX node for {type(cpm).__name__}")
    x = _sequential(g, net.model, "image")
    x = _sequential(g, cpm.align, x)
    features = _sequential(g, cpm.conv, g.node("Add", [x, _sequential(g, cpm.trunk, x)]))
    n = len(net.refinement_stages)
    last = ("heatmaps", "pafs")
    heat, pafs = _stage(g, net.initial_stage, features, last if n == 0 else (None, None))
    for i, stage in enumerate(net.refinement_stages):
        joined = g.node("Concat", [features, heat, pafs], axis=1)
        heat, pafs = _stage(g, stage, joined, last if i == n - 1 else (None, None))
    spec = net.spec
    return model_bytes(g.nodes, g.weights, [_value_info("image", ["batch", 3, "height", "width"])],
                       [_value_info("heatmaps", ["batch", spec.num_heatmaps, "map_height", "map_width"]),
                        _value_info("pafs", ["batch", spec.num_pafs, "map_height", "map_width"])],
                       opset, metadata)
