"""ONNX export of the inference network (its last stage), checked against PyTorch."""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from posedata.errors import InputError, PosedataError


def last_stage(model):
    """A module returning only the model's last stage (heatmaps, pafs): what inference uses."""
    import torch

    class LastStage(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            outs = self.m(x)
            return outs[-2], outs[-1]

    return LastStage(model)


def export_onnx(model, path: Path, input_size: int = 368, opset: int = 17, seed: int = 0) -> dict[str, Any]:
    """Export the last stage's outputs to ONNX (dynamic batch, height and width), then run the
    file with onnxruntime on a random input and compare with PyTorch. Writes only if the check
    passes (max |difference| <= 1e-4); returns the comparison."""
    import tempfile

    import torch

    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("onnxruntime is not installed; install the optional extra: pip install 'posedata[onnx]'") from None
    from posedata.io import atomic_write_bytes

    net = last_stage(model).eval()
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(1, 3, input_size, input_size, generator=g) - 0.5)
    with torch.inference_mode():
        ref_heat, ref_pafs = (t.numpy() for t in net(x))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / "model.onnx"
        # the TorchScript exporter (the dynamo one needs onnxscript) warns that it is legacy
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), str(tmp_path), input_names=["image"], output_names=["heatmaps", "pafs"],
                              dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                            "heatmaps": {0: "batch", 2: "map_height", 3: "map_width"},
                                            "pafs": {0: "batch", 2: "map_height", 3: "map_width"}},
                              opset_version=opset, dynamo=False)
        data = tmp_path.read_bytes()
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    heat, pafs = sess.run(["heatmaps", "pafs"], {"image": x.numpy()})
    diff = max(float(np.abs(heat - ref_heat).max()), float(np.abs(pafs - ref_pafs).max()))
    info = {"max_abs_diff": diff, "tolerance": 1e-4, "input_shape": list(x.shape),
            "heatmaps_shape": list(heat.shape), "pafs_shape": list(pafs.shape), "opset": opset, "bytes": len(data)}
    if not diff <= 1e-4:
        err = PosedataError(f"ONNX output differs from PyTorch by {diff:.3g} (> 1e-4); not written", file=str(path))
        err.exit_code = 1
        raise err
    atomic_write_bytes(path, data)
    return info
