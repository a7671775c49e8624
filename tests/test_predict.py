"""Model loading for inference: settings from the checkpoint unless told otherwise."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from test_evaluate import make_dataset, sk_named

from posedata.cli import cli
from posedata.errors import InputError
from trainer import predict as P


def _checkpoint(path, sk, input_size):
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    torch.manual_seed(0)
    model = for_skeleton(sk, stages=2, width=0.25)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint,
                                 config={"input_size": input_size}), path)
    return path


def test_val_and_infer_take_the_input_size_stages_and_width_from_the_checkpoint(tmp_path, runner):
    """A checkpoint trained at 96: val and infer ran it at 368 unless --input-size was given
    (AP 0.000 at 368 vs 0.044 at 96 on a real run); now 96, and --input-size still overrides."""
    sk = sk_named("object5")
    coco_json, images, _ = make_dataset(tmp_path, sk, n_images=1, h=120, w=160)
    ckpt = _checkpoint(tmp_path / "c.pt", sk, 96)
    loaded = P.load_model(ckpt)  # skeleton from the checkpoint too
    assert loaded.skeleton.fingerprint == sk.fingerprint and loaded.input_size == 96
    assert loaded.model.spec.stages == 2 and loaded.model.spec.width == 0.25
    assert "2 refinement stage(s), width 0.25, trained at input 96" in loaded.description
    assert loaded.choose_input_size(None)[0] == 96 and loaded.choose_input_size(200)[0] == 200

    shapes = []
    hook = loaded.model.register_forward_pre_hook(lambda m, a: shapes.append(tuple(a[0].shape)))
    P.detect(loaded.model, cv2.imread(str(images / "frame_a.png")), sk, loaded.choose_input_size(None)[0])
    hook.remove()
    assert shapes == [(1, 3, 96, 128)]  # 120 x 160 scaled to height 96

    for extra, size in (([], 96), (["--input-size", "128"], 128)):
        out = tmp_path / f"v{size}"
        r = runner.invoke(cli, ["val", "--checkpoint", str(ckpt), "--coco", str(coco_json), "--images", str(images),
                                "-o", str(out), *extra])
        assert r.exit_code == 0, r.output
        assert json.loads((out / "metrics.json").read_text())["settings"]["input_size"] == size
        assert f"input {size}" in r.output
    r = runner.invoke(cli, ["infer", str(images), "--checkpoint", str(ckpt), "-o", str(tmp_path / "i")])
    assert r.exit_code == 0 and "input 96 (its training size)" in " ".join(r.output.split()), r.output


def test_infer_min_score_keeps_only_confident_instances(tmp_path, runner, monkeypatch):
    from test_evaluate import GTModel

    from trainer import evaluate as E

    sk = sk_named("openpose18")
    _coco_json, images, coco = make_dataset(tmp_path, sk, n_images=2)
    model = GTModel(sk, coco, images)
    monkeypatch.setattr(E, "load_model", lambda c, s, device="cpu", backend="auto":
                        P.LoadedModel(model, "ground-truth stand-in", s, None, "torch"))
    base = ["infer", str(images), "--checkpoint", "unused.pt", "--skeleton", "openpose18"]
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "all")])
    assert r.exit_code == 0, r.output
    every = json.loads((tmp_path / "all" / "results.json").read_text())["annotations"]
    scores = sorted(a["score"] for a in every)
    assert len(scores) == 8
    cut = scores[0] + 1e-6  # drops at least the lowest
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "some"), "--min-score", str(cut)])
    assert r.exit_code == 0, r.output
    kept = json.loads((tmp_path / "some" / "results.json").read_text())["annotations"]
    assert sorted(a["score"] for a in kept) == [s for s in scores if s >= cut] and len(kept) < len(every)
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "none"), "--min-score", str(scores[-1] + 1)])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "none" / "results.json").read_text())["annotations"] == []
    # nothing drawn: the PNG is the image itself
    drawn = cv2.imread(str(tmp_path / "none" / "frame_a.png"))
    assert np.array_equal(drawn, cv2.imread(str(images / "frame_a.png")))
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "neg"), "--min-score", "-1"])
    assert r.exit_code == 2


def test_val_and_infer_take_a_device(tmp_path, runner, monkeypatch):
    """--device as train's (issue 17.2): auto picks CUDA when torch has it; an unusable device is a
    usage error before any work. val and infer always ran on the CPU before."""
    from trainer import checkpoint as C

    sk = sk_named("object5")
    coco_json, images, _ = make_dataset(tmp_path, sk, n_images=1, h=64, w=64)
    ckpt = _checkpoint(tmp_path / "c.pt", sk, 64)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = runner.invoke(cli, ["infer", str(images), "--checkpoint", str(ckpt), "-o", str(tmp_path / "o"),
                            "--device", "cuda"])
    assert r.exit_code == 2 and "no usable CUDA GPU" in r.output and not (tmp_path / "o").exists()
    r = runner.invoke(cli, ["val", "--checkpoint", str(ckpt), "--coco", str(coco_json), "--images", str(images),
                            "--device", "cpu"])
    assert r.exit_code == 0 and "on cpu" in " ".join(r.output.split()), r.output
    # auto on a machine with a GPU asks the checkpoint loader for it (the tensors stay on the CPU here)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    asked = []
    real = C.build_model
    monkeypatch.setattr(C, "build_model", lambda c, s, p, d: (asked.append(d), real(c, s, p, "cpu"))[1])
    P.load_model(ckpt, device="auto")
    assert asked == [torch.device("cuda", 0)]
    with pytest.raises(InputError, match="onnx backend runs on the CPU"):
        P.load_model(ckpt, device="cuda", backend="onnx")


# ------------------------------------------------------------------ reference inference port
def ref_pad_width(img: np.ndarray, stride: int, pad_value, min_dims: list) -> tuple[np.ndarray, list]:
    """Port of the reference's pad_width (val.py)."""
    import math

    h, w, _ = img.shape
    h = min(min_dims[0], h)
    min_dims[0] = math.ceil(min_dims[0] / float(stride)) * stride
    min_dims[1] = max(min_dims[1], w)
    min_dims[1] = math.ceil(min_dims[1] / float(stride)) * stride
    pad = [int(math.floor((min_dims[0] - h) / 2.0)), int(math.floor((min_dims[1] - w) / 2.0))]
    pad.append(int(min_dims[0] - h - pad[0]))
    pad.append(int(min_dims[1] - w - pad[1]))
    padded = cv2.copyMakeBorder(img, pad[0], pad[2], pad[1], pad[3], cv2.BORDER_CONSTANT, value=pad_value)
    return padded, pad


def ref_infer(net, img: np.ndarray, base_height: int = 368, stride: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Port of the reference's val.py `infer` at one scale (conventions section 5): normalise,
    cubic resize to base_height, pad, network, x stride cubic, cut padding, cubic to image size.
    Returns (H, W, C) heatmaps and PAFs as the reference hands them to extract_keypoints /
    group_keypoints. Runs under torch.no_grad (the reference's val.py records autograd; leaving
    that out only favours the reference in the speed bench)."""
    normed = (np.array(img, dtype=np.float32) - 128) / 256
    height, width = normed.shape[:2]
    ratio = base_height / float(height)
    scaled = cv2.resize(normed, (0, 0), fx=ratio, fy=ratio, interpolation=cv2.INTER_CUBIC)
    min_dims = [base_height, max(scaled.shape[1], base_height)]
    padded, pad = ref_pad_width(scaled, stride, (0, 0, 0), min_dims)
    tensor = torch.from_numpy(padded).permute(2, 0, 1).unsqueeze(0).float()
    with torch.no_grad():
        stages_output = net(tensor)
    out = []
    for maps in (stages_output[-2], stages_output[-1]):
        m = np.transpose(maps.squeeze().cpu().data.numpy(), (1, 2, 0))
        m = cv2.resize(m, (0, 0), fx=stride, fy=stride, interpolation=cv2.INTER_CUBIC)
        m = m[pad[0]:m.shape[0] - pad[2], pad[1]:m.shape[1] - pad[3]:, :]
        out.append(cv2.resize(m, (width, height), interpolation=cv2.INTER_CUBIC))
    return out[0], out[1]


def test_predict_equals_the_reference_inference_on_real_photos(shared_real):
    """posedata's single-scale predict (per-channel resizes) equals the reference's infer to 1e-5
    on real COCO photos, through a network with the reference's structure (openpose18 heads)."""
    from trainer.model import for_skeleton

    sk = sk_named("openpose18")
    torch.manual_seed(0)
    net = for_skeleton(sk, stages=1, width=0.25).eval()
    fast = P.prepare(net)  # what val and infer run
    for p in sorted((shared_real / "coco").glob("*.jpg"))[:2]:
        img = cv2.imread(str(p))
        ref_heat, ref_pafs = ref_infer(net, img)
        for model in (net, fast):
            heat, pafs = P.predict(model, img, sk, 368)
            assert heat.shape == (19,) + img.shape[:2] and pafs.shape == (38,) + img.shape[:2]
            np.testing.assert_allclose(heat, ref_heat.transpose(2, 0, 1), atol=1e-5, rtol=0)
            np.testing.assert_allclose(pafs, ref_pafs.transpose(2, 0, 1), atol=1e-5, rtol=0)


def _trained_looking(sk, stages: int = 1):
    """An eval-mode network whose BatchNorms hold non-trivial statistics (folding must use them)."""
    from trainer.model import for_skeleton

    torch.manual_seed(0)
    net = for_skeleton(sk, stages=stages, width=0.25)
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return net.eval()


def test_val_and_infer_run_the_folded_channels_last_network(tmp_path, runner, monkeypatch):
    """`posedata val` spent most of its CPU time in the forward pass (0.5 s of 0.6 s per 368-px
    COCO image, width 1.0), a separate BatchNorm pass after each backbone convolution among it.
    evaluate() and infer() now run trainer.model.for_inference's copy: BatchNorm folded into the
    convolutions, channels-last weights, the same outputs to float rounding; the caller's network
    is left as it was (training validates through evaluate with its own network)."""
    from trainer import evaluate as E
    from trainer.model import for_inference

    sk = sk_named("object5")
    net = _trained_looking(sk)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    fast = for_inference(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert fast.model[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 72, 104, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        for a, b in zip(net(x), fast(x), strict=True):
            torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in before.items()) and not net.training
    net.train()
    assert for_inference(net) is net  # batch statistics cannot be folded
    net.eval()

    bn_calls = []
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.register_forward_hook(lambda *a: bn_calls.append(1))
    coco_json, images, _ = make_dataset(tmp_path, sk, n_images=2, h=120, w=160)
    res = E.evaluate(net, sk, coco_json, images, input_size=96)
    E.infer(net, sk, sorted(images.iterdir()), tmp_path / "inferred", input_size=96)
    assert bn_calls == [] and res["n_images"] == 2
    with torch.inference_mode():
        net(x)
    assert bn_calls  # the hooks do fire on the network itself


def test_detect_upsamples_only_what_grouping_reads_with_the_same_result(tmp_path, monkeypatch):
    """detect upsampled all 57 openpose18 channels at every pixel (0.06 of 0.45 CPU s per COCO
    photo) although grouping reads the PAFs at 10 points per candidate pair and never the background
    heatmap; it now upsamples the K keypoint heatmaps and reads the PAFs through UpsampledPafs. Same
    instances as grouping predict's full maps (ground-truth maps, several people, with flip and two
    scales), and the reader's values equal the reference's upsampling to 1e-5."""
    from test_evaluate import GTModel

    from trainer.grouping import group

    sk = sk_named("openpose18")
    _coco_json, images, coco = make_dataset(tmp_path, sk, n_images=2)
    model = GTModel(sk, coco, images)
    upsampled = []
    real_upsample = P.upsample_maps
    monkeypatch.setattr(P, "upsample_maps", lambda maps, *a: upsampled.append(len(maps)) or real_upsample(maps, *a))
    found = 0
    for p in sorted(images.iterdir()):
        img = cv2.imread(str(p))
        for flip, scales in ((False, None), (True, None), (False, (0.5, 1.0))):
            upsampled.clear()
            det = P.detect(model, img, sk, 368, flip=flip, scales=scales)
            assert upsampled == [sk.num_keypoints] * (len(scales) if scales else 1)
            poses, scores, counts = group(*P.predict(model, img, sk, 368, flip=flip, scales=scales), sk,
                                          return_counts=True)
            np.testing.assert_array_equal(det.poses, poses)
            np.testing.assert_array_equal(det.counts, counts)
            np.testing.assert_allclose(det.scores, scores, rtol=1e-6)
            found += len(det)
    assert found >= 8

    rng = np.random.default_rng(0)
    for (h, w), pads, (iw, ih) in (((46, 70), (0, 3, 0, 3), (640, 425)), ((46, 46), (0, 61, 0, 62), (333, 500))):
        maps = rng.standard_normal((38, h, w)).astype(np.float32)
        up = cv2.resize(maps.transpose(1, 2, 0), (0, 0), fx=8, fy=8, interpolation=cv2.INTER_CUBIC)
        up = up[pads[0]:up.shape[0] - pads[2], pads[1]:up.shape[1] - pads[3]]
        ref = cv2.resize(up, (iw, ih), interpolation=cv2.INTER_CUBIC).transpose(2, 0, 1)  # as the reference
        reader = P.UpsampledPafs([(maps, pads)], 8, (iw, ih))
        assert reader.shape == ref.shape
        one = np.arange(5 * ih * iw, 6 * ih * iw)  # channel 5 only: only its rows are upsampled
        np.testing.assert_allclose(reader[one], ref[5].ravel(), atol=1e-5, rtol=0)
        assert np.flatnonzero(reader._terms[0][3]).tolist() == [5]
        np.testing.assert_allclose(reader[np.arange(ref.size)].reshape(ref.shape), ref, atol=1e-5, rtol=0)
