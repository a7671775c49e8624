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
    real = C.load_model
    monkeypatch.setattr(C, "load_model", lambda p, s, d: (asked.append(d), real(p, s, "cpu"))[1])
    P.load_model(ckpt, device="auto")
    assert asked == [torch.device("cuda", 0)]
    with pytest.raises(InputError, match="onnx backend runs on the CPU"):
        P.load_model(ckpt, device="cuda", backend="onnx")
