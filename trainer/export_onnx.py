"""ONNX export of the inference network (its last stage), checked against PyTorch, with the
metadata that lets `posedata val` / `infer` run the file alone; and running such a file.

The file's metadata (ONNX metadata_props, all strings):
  posedata.format       "posedata-onnx"; posedata.version "1"
  posedata.skeleton     the skeleton as JSON (the dict a checkpoint stores), so no --skeleton is needed
  posedata.fingerprint  the skeleton's fingerprint (channel meanings)
  posedata.keypoints    JSON list of heatmap channel names (the skeleton's keypoints; the last
                        heatmap channel is the background)
  posedata.limbs        JSON list of [a, b] keypoint-name pairs: PAF channels 2i (x) and 2i + 1 (y)
  posedata.input        JSON: layout NCHW, BGR channel order, value = (pixel - 128) / 256, padding 0
  posedata.stride       output stride (8): maps are input / stride in each dimension
  posedata.input_size   the image height the network expects (its training size; images are
                        scaled to it)
  posedata.model        JSON model spec (heatmaps, PAFs, refinement stages, width)
"""
from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from posedata.errors import InputError, PosedataError
from posedata.skeleton import require_fingerprint

from .loaded import IMG_MEAN, IMG_SCALE, LoadedModel

FORMAT = "posedata-onnx"
VERSION = 1
STRIDE = 8
MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit; anything larger is not a model this tool wrote


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


def metadata(skeleton, input_size: int, spec: dict[str, Any] | None) -> dict[str, str]:
    """The posedata.* metadata strings (see the module docstring)."""
    return {
        "posedata.format": FORMAT,
        "posedata.version": str(VERSION),
        "posedata.skeleton": json.dumps(skeleton.to_dict()),
        "posedata.fingerprint": skeleton.fingerprint,
        "posedata.keypoints": json.dumps(list(skeleton.keypoints)),
        "posedata.limbs": json.dumps([list(skeleton.limb_names(i)) for i in range(len(skeleton.limbs))]),
        "posedata.input": json.dumps({"layout": "NCHW", "channels": "BGR", "mean": IMG_MEAN, "scale": IMG_SCALE,
                                      "formula": "(pixel - 128) / 256", "pad_value": 0.0}),
        "posedata.stride": str(STRIDE),
        "posedata.input_size": str(int(input_size)),
        "posedata.model": json.dumps(spec or {}),
    }


def _traced_onnx_bytes(net, x, opset: int) -> bytes:
    """torch.onnx.export of a last_stage module (dynamic batch, height and width), for networks
    trainer.onnx_graph does not write."""
    import tempfile

    import torch

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
        return tmp_path.read_bytes()


def _onnx_bytes(model, opset: int, trace_input=None, meta: dict[str, str] | None = None,
                fold_in_place: bool = False) -> bytes:
    """The serialised ONNX model of the model's last stage, with meta as its metadata_props:
    written from a PoseNet's modules by trainer.onnx_graph (0.1 CPU s at width 1.0, where
    torch.onnx.export took 1.4-1.8 s), else traced by torch.onnx.export. The trace input's values
    do not matter (dynamic axes), only its size does to the trace's cost: 64 x 64 unless given.
    fold_in_place: the graph writer may fold BatchNorm into the model itself (nobody else runs it)."""
    import torch

    from .onnx_graph import posenet_model

    try:
        return posenet_model(model, opset, meta, fold_in_place)
    except NotImplementedError:
        pass
    import onnx

    x = trace_input if trace_input is not None else torch.zeros(1, 3, 64, 64)
    proto = onnx.load_from_string(_traced_onnx_bytes(last_stage(model).eval(), x, opset))
    del proto.metadata_props[:]
    for k, v in (meta or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    return proto.SerializeToString()


def _session(data: bytes):
    """A CPU session whose idle threads sleep instead of spinning (ONNX Runtime's default spins,
    the trap trainer/threads.py avoids for OpenMP), with trainer.threads.onnx_threads's intra-op
    threads (--threads; 1 on a busy machine; else its default)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise InputError("onnxruntime is not installed; install the optional extra: pip install 'posedata[onnx]'") from None
    from .threads import onnx_threads

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    threads = onnx_threads()
    if threads:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def export_onnx(model, path: Path, input_size: int = 368, opset: int = 17, seed: int = 0, skeleton=None
                ) -> dict[str, Any]:
    """Export the last stage's outputs to ONNX (dynamic batch, height and width), then run the
    file with onnxruntime on a random input_size x input_size input and compare with PyTorch.
    Writes only if the check passes (max |difference| <= 1e-4); returns the comparison. With a
    skeleton the file carries posedata's metadata, input_size being the size to run it at."""
    import torch

    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise InputError("onnxruntime is not installed; install the optional extra: pip install 'posedata[onnx]'") from None
    from posedata.io import atomic_write_bytes

    net = last_stage(model).eval()
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(1, 3, input_size, input_size, generator=g) - 0.5)
    with torch.inference_mode():
        ref_heat, ref_pafs = (t.numpy() for t in net(x))
    spec = model.spec.to_dict() if hasattr(model, "spec") else None
    data = _onnx_bytes(model, opset, x, metadata(skeleton, input_size, spec) if skeleton is not None else None)
    sess = _session(data)
    heat, pafs = sess.run(["heatmaps", "pafs"], {"image": x.numpy()})
    diff = max(float(np.abs(heat - ref_heat).max()), float(np.abs(pafs - ref_pafs).max()))
    info = {"max_abs_diff": diff, "tolerance": 1e-4, "input_shape": list(x.shape),
            "heatmaps_shape": list(heat.shape), "pafs_shape": list(pafs.shape), "opset": opset, "bytes": len(data),
            "metadata": skeleton is not None}
    if not diff <= 1e-4:
        err = PosedataError(f"ONNX output differs from PyTorch by {diff:.3g} (> 1e-4); not written", file=str(path))
        err.exit_code = 1
        raise err
    atomic_write_bytes(path, data)
    return info


# ------------------------------------------------------------------ running ONNX files
class OnnxModel:
    """An ONNX Runtime session with predict's forward_numpy interface."""

    def __init__(self, session, meta: dict[str, str] | None = None):
        self.session = session
        self.meta = dict(meta or {})

    def forward_numpy(self, batch_nchw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        heat, pafs = self.session.run(["heatmaps", "pafs"], {"image": batch_nchw.astype(np.float32, copy=False)})
        return heat, pafs


def onnx_model_from_torch(model, opset: int = 17) -> OnnxModel:
    """The torch model exported in memory and run by ONNX Runtime (`--backend onnx` on a checkpoint)."""
    return OnnxModel(_session(_onnx_bytes(model.eval(), opset)))


def load_onnx(path: Path, skeleton=None) -> LoadedModel:
    """An ONNX file for inference. A file with posedata's metadata brings its skeleton and input
    size; a given skeleton must have the stored fingerprint. A file without it needs a skeleton."""
    from posedata import skeleton as S

    file = str(path)
    if not path.is_file():
        raise InputError("ONNX file not found", file=file)
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise InputError(f"{size} bytes is larger than any ONNX model protobuf can hold (2 GiB)", file=file)
    try:
        sess = _session(path.read_bytes())
    except InputError:
        raise
    except Exception as e:  # onnxruntime raises its own Fail / InvalidGraph / InvalidProtobuf types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise InputError(f"cannot read ONNX file: {first}", file=file) from None
    names = {o.name for o in sess.get_outputs()}
    if not {"heatmaps", "pafs"} <= names or [i.name for i in sess.get_inputs()] != ["image"]:
        raise InputError(f"not a pose network: expected input 'image' and outputs 'heatmaps', 'pafs', found "
                         f"{[i.name for i in sess.get_inputs()]} -> {sorted(names)}", file=file)
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    stored = None
    if meta.get("posedata.format") == FORMAT:
        try:
            stored = S.from_dict(json.loads(meta["posedata.skeleton"]), file=file)
            input_size = int(meta["posedata.input_size"])
            spec = json.loads(meta.get("posedata.model") or "{}")
        except (KeyError, ValueError, TypeError) as e:
            raise InputError(f"unreadable posedata metadata: {e}", file=file, where="metadata_props") from None
        if meta.get("posedata.fingerprint") != stored.fingerprint:
            raise InputError("metadata skeleton does not match its stored fingerprint", file=file,
                             where="metadata_props.posedata.fingerprint")
    else:
        input_size, spec = None, {}
    if skeleton is None:
        if stored is None:
            raise InputError("this ONNX file carries no posedata metadata (skeleton): give --skeleton", file=file)
        skeleton = stored
    elif stored is not None:
        require_fingerprint("ONNX file", stored.name, stored.fingerprint, skeleton, file)
    desc = "ONNX file" + (f", {spec.get('stages', '?')} refinement stage(s), width {spec.get('width', '?')}, "
                          f"input {input_size}" if stored is not None else ", no posedata metadata")
    return LoadedModel(OnnxModel(sess, meta), desc, skeleton, input_size, "onnx")
