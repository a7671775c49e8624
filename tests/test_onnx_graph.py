"""The ONNX graph written from a PoseNet's modules (trainer.onnx_graph) computes what the torch
network computes; `--backend onnx` and `export onnx` use it instead of torch.onnx.export."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from test_evaluate import sk_named
from test_predict import _trained_looking, ref_infer

from trainer import predict as P

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


@pytest.mark.parametrize("stages", [0, 1, 2])
def test_written_graph_equals_torch_on_real_photos(shared_real, stages):
    """Non-trivial BatchNorm statistics (the writer folds them), 0-2 refinement stages (the
    concat before each), a real photo through predict (with flip at 184, or at 368 without): the
    maps equal the torch network's to 1e-5, and with one stage the reference's inference too. The graph passes ONNX's checker."""
    from trainer.export_onnx import onnx_model_from_torch
    from trainer.onnx_graph import posenet_model

    sk = sk_named("openpose18")
    net = _trained_looking(sk, stages)
    onnx.checker.check_model(onnx.load_from_string(posenet_model(net, metadata={"k": "v"})), full_check=True)
    via_ort = onnx_model_from_torch(net)
    img = cv2.imread(str(sorted((shared_real / "coco").glob("*.jpg"))[0]))
    size, flip = (368, False) if stages == 1 else (184, True)
    heat, pafs = P.predict(via_ort, img, sk, size, flip=flip)
    t_heat, t_pafs = P.predict(net, img, sk, size, flip=flip)
    np.testing.assert_allclose(heat, t_heat, atol=1e-5, rtol=0)
    np.testing.assert_allclose(pafs, t_pafs, atol=1e-5, rtol=0)
    if stages == 1:  # the reference network's structure: its inference port too
        ref_heat, ref_pafs = ref_infer(net, img)
        np.testing.assert_allclose(heat, ref_heat.transpose(2, 0, 1), atol=1e-5, rtol=0)
        np.testing.assert_allclose(pafs, ref_pafs.transpose(2, 0, 1), atol=1e-5, rtol=0)


def test_other_networks_fall_back_to_the_torch_exporter():
    """A module the writer does not know (here a PoseNet subclass whose forward may differ) is
    exported by torch.onnx.export, with the same outputs."""
    from trainer.export_onnx import onnx_model_from_torch
    from trainer.model import PoseNet
    from trainer.onnx_graph import posenet_model

    class Doubled(PoseNet):
        def forward(self, x):
            return [2 * t for t in super().forward(x)]

    torch.manual_seed(0)
    net = Doubled(6, 8, stages=0, width=0.25).eval()
    with pytest.raises(NotImplementedError):
        posenet_model(net)
    x = torch.randn(1, 3, 48, 80, generator=torch.Generator().manual_seed(3))
    heat, pafs = onnx_model_from_torch(net).forward_numpy(x.numpy())
    with torch.inference_mode():
        want = net(x)
    np.testing.assert_allclose(heat, want[-2].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(pafs, want[-1].numpy(), atol=1e-5, rtol=0)
