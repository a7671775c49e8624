"""ONNX export carries posedata's metadata; val and infer run such a file with no other flags."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from test_evaluate import make_dataset, sk_named

from posedata.cli import cli

ort = pytest.importorskip("onnxruntime")


def _checkpoint(path, sk, input_size=96):
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    torch.manual_seed(0)
    model = for_skeleton(sk, stages=0, width=0.25)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint,
                                 config={"input_size": input_size}), path)
    return path


def test_onnx_metadata_and_running_the_file_alone(tmp_path, runner):
    sk = sk_named("object5")
    coco_json, images, _coco = make_dataset(tmp_path, sk, n_images=2, h=120, w=160)
    ckpt = _checkpoint(tmp_path / "tiny.pt", sk)
    onnx_path = tmp_path / "m.onnx"
    r = runner.invoke(cli, ["export", "onnx", "--checkpoint", str(ckpt), "-o", str(onnx_path)])
    assert r.exit_code == 0, r.output
    meta = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert meta["posedata.format"] == "posedata-onnx" and meta["posedata.fingerprint"] == sk.fingerprint
    assert json.loads(meta["posedata.keypoints"]) == list(sk.keypoints)
    assert json.loads(meta["posedata.limbs"]) == [list(sk.limb_names(i)) for i in range(len(sk.limbs))]
    assert json.loads(meta["posedata.input"])["formula"] == "(pixel - 128) / 256"
    assert meta["posedata.stride"] == "8" and meta["posedata.input_size"] == "96"  # the checkpoint's training size
    assert json.loads(meta["posedata.skeleton"]) == sk.to_dict()

    # infer with the ONNX file alone equals infer with the checkpoint on torch
    outs = {}
    for name, args in (("onnx", ["--checkpoint", str(onnx_path)]),
                       ("torch", ["--checkpoint", str(ckpt), "--skeleton", "object5", "--backend", "torch"])):
        r = runner.invoke(cli, ["infer", str(images), "-o", str(tmp_path / name), *args])
        assert r.exit_code == 0, r.output
        assert "input 96" in r.output
        outs[name] = json.loads((tmp_path / name / "results.json").read_text())
    assert len(outs["onnx"]["annotations"]) == len(outs["torch"]["annotations"])
    for a, b in zip(outs["onnx"]["annotations"], outs["torch"]["annotations"], strict=True):
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=0.01)
    r = runner.invoke(cli, ["val", "--checkpoint", str(onnx_path), "--coco", str(coco_json), "--images", str(images),
                            "-o", str(tmp_path / "v")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "v" / "metrics.json").read_text())["settings"]["input_size"] == 96

    # another skeleton than the file's is refused, located, exit 2
    r = runner.invoke(cli, ["infer", str(images), "-o", str(tmp_path / "x"), "--checkpoint", str(onnx_path),
                            "--skeleton", "hand21"])
    assert r.exit_code == 2 and "m.onnx" in r.output and "fingerprint" in r.output
    # a checkpoint through ONNX Runtime (--backend onnx) gives the same detections as torch
    r = runner.invoke(cli, ["infer", str(images), "-o", str(tmp_path / "ckpt_onnx"), "--checkpoint", str(ckpt),
                            "--backend", "onnx"])
    assert r.exit_code == 0, r.output
    via = json.loads((tmp_path / "ckpt_onnx" / "results.json").read_text())
    assert len(via["annotations"]) == len(outs["torch"]["annotations"])


def test_onnx_without_metadata_needs_a_skeleton_and_bad_files_are_located(tmp_path, runner):
    from trainer.export_onnx import export_onnx
    from trainer.model import for_skeleton

    sk = sk_named("object5")
    _, images, _ = make_dataset(tmp_path, sk, n_images=1, h=64, w=64)
    plain = tmp_path / "plain.onnx"
    export_onnx(for_skeleton(sk, stages=0, width=0.25), plain, 64)  # no skeleton: no metadata
    r = runner.invoke(cli, ["infer", str(images), "-o", str(tmp_path / "a"), "--checkpoint", str(plain)])
    assert r.exit_code == 2 and "plain.onnx" in r.output and "--skeleton" in r.output
    r = runner.invoke(cli, ["infer", str(images), "-o", str(tmp_path / "b"), "--checkpoint", str(plain),
                            "--skeleton", "object5"])
    assert r.exit_code == 0 and "input 368" in r.output, r.output
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x07not a protobuf model")
    r = runner.invoke(cli, ["infer", str(images), "-o", str(tmp_path / "c"), "--checkpoint", str(junk)])
    assert r.exit_code == 2 and "junk.onnx" in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["infer", str(images), "-o", str(tmp_path / "d"), "--checkpoint", str(plain),
                            "--backend", "torch", "--skeleton", "object5"])
    assert r.exit_code == 2 and "onnx backend" in r.output


def test_onnx_runtime_threads_sleep_and_follow_threads(monkeypatch):
    """ONNX Runtime's idle threads do not spin (its default does; spinning threads starved each
    other on the shared 2-core machine, as OpenMP's did), --threads sets its intra-op threads, and
    without it a busy machine gets one (two waited on each other: 0.79-0.88 s wall per forward
    pass at load 4-5 against 0.52-0.60 s with one)."""
    from trainer import threads as T
    from trainer.export_onnx import onnx_model_from_torch
    from trainer.model import for_skeleton

    sk = sk_named("object5")
    net = for_skeleton(sk, stages=0, width=0.25).eval()
    monkeypatch.setattr(T, "_requested", 1)  # as apply_thread_policy(1) leaves it (without touching torch here)
    opts = onnx_model_from_torch(net).session.get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    monkeypatch.setattr(T, "_requested", None)
    cores = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 0.5, 0.0, 0.0))
    assert onnx_model_from_torch(net).session.get_session_options().intra_op_num_threads == 0  # its default
    # a busy machine (load average >= cores): one thread, no waiting on a descheduled second one
    monkeypatch.setattr(os, "getloadavg", lambda: (float(cores), 0.0, 0.0))
    assert onnx_model_from_torch(net).session.get_session_options().intra_op_num_threads == 1
