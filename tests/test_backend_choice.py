"""`--backend auto` (trainer.predict.choose_backend): ONNX Runtime on the CPU for jobs of at least
ONNX_MIN_IMAGES images when onnx and onnxruntime are installed, torch otherwise; an explicit
--backend is kept; infer and val print the choice and why on their "model:" line."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_evaluate import make_dataset, sk_named

from posedata.cli import cli
from trainer import evaluate as E
from trainer import predict as P

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
N = P.ONNX_MIN_IMAGES


def _checkpoint(path, sk):
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    torch.manual_seed(0)
    model = for_skeleton(sk, stages=0, width=0.25)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint,
                                 config={"input_size": 64}), path)
    return path


def _line(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def asked(monkeypatch):
    """The real loader, recording the backend each command asked it for."""
    calls: list[str] = []
    real = E.load_model

    def load(checkpoint, sk, device="cpu", backend="auto"):
        calls.append(backend)
        return real(checkpoint, sk, device=device, backend=backend)

    monkeypatch.setattr(E, "load_model", load)
    return calls


def test_infer_auto_runs_onnx_runtime_on_a_folder_large_enough(tmp_path, runner, no_gpu, asked):
    """auto was always torch (ONNX Runtime's start-up, 2.1 CPU s through torch.onnx.export, took
    about 40 images to repay); with the graph written directly it repays within a few, so a
    folder of N images runs on ONNX Runtime, with the detections torch finds."""
    sk = sk_named("object5")
    _, images, _ = make_dataset(tmp_path, sk, n_images=N, h=64, w=96)
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    out = {}
    for name, extra in (("auto", []), ("torch", ["--backend", "torch"])):
        r = runner.invoke(cli, ["infer", str(images), "--checkpoint", str(ckpt), "-o", str(tmp_path / name), *extra])
        assert r.exit_code == 0, r.output
        out[name] = json.loads((tmp_path / name / "results.json").read_text())["annotations"]
        out[name + " line"] = _line(r.output)
    assert asked == ["onnx", "torch"]
    assert f"backend onnx (auto: {N} images on the CPU" in out["auto line"], out["auto line"]
    assert "run by ONNX Runtime" in out["auto line"]
    assert "backend torch (given)" in out["torch line"]
    assert len(out["auto"]) == len(out["torch"])
    for a, b in zip(out["auto"], out["torch"], strict=True):
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=0.01)


def test_auto_stays_torch_for_small_jobs_gpus_and_without_onnxruntime(tmp_path, runner, no_gpu, asked,
                                                                       monkeypatch):
    # the rule without a cached graph (tests/test_onnx_cache.py: with one; and the small auto job
    # on torch that caches it)
    monkeypatch.setenv("POSEDATA_ONNX_CACHE", "0")
    sk = sk_named("object5")
    coco_json, images, _ = make_dataset(tmp_path, sk, n_images=N - 1, h=64, w=96)
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    base = ["--checkpoint", str(ckpt)]
    r = runner.invoke(cli, ["infer", str(images), *base, "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert (f"backend torch (auto: {N - 1} image(s); ONNX Runtime repays its start-up from {N} (no cached graph))"
            in _line(r.output))
    # val sizes its job by the COCO file's images, before the model loads
    r = runner.invoke(cli, ["val", *base, "--coco", str(coco_json), "--images", str(images)])
    assert r.exit_code == 0, r.output
    assert f"backend torch (auto: {N - 1} image(s)" in _line(r.output)
    assert asked == ["torch", "torch"]

    # explicit choices are kept whatever the job's size
    r = runner.invoke(cli, ["infer", str(images / "frame_a.png"), *base, "-o", str(tmp_path / "b"), "--backend", "onnx"])
    assert r.exit_code == 0 and "backend onnx (given)" in _line(r.output), r.output
    assert asked[-1] == "onnx"

    # a large job without onnxruntime, or on a GPU: torch (the loader's device itself is not tested here)
    assert P.choose_backend("auto", ckpt, "cpu", 100) == ("onnx", f"auto: 100 images on the CPU, ONNX Runtime is "
                                                                  f"faster from {N} (no cached graph)")
    assert P.choose_backend("torch", ckpt, "cpu", 100) == ("torch", "given")
    assert P.choose_backend("auto", ckpt, "cpu", None)[0] == "torch"  # a job of unknown size (library callers)
    assert P.choose_backend("auto", tmp_path / "m.onnx", "cpu", 1) == ("onnx", "an ONNX file")
    assert P.choose_backend("auto", ckpt, torch.device("cuda", 0), 100) == ("torch", "auto: on cuda:0")
    monkeypatch.setattr(P, "onnx_available", lambda: False)
    assert P.choose_backend("auto", ckpt, "cpu", 100) == ("torch", "auto: the onnx extra (onnx, onnxruntime) is not installed")


def test_val_auto_counts_the_coco_files_images(tmp_path, runner, no_gpu, asked):
    sk = sk_named("object5")
    coco_json, images, _ = make_dataset(tmp_path, sk, n_images=N, h=64, w=96)
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    r = runner.invoke(cli, ["val", "--checkpoint", str(ckpt), "--coco", str(coco_json), "--images", str(images)])
    assert r.exit_code == 0, r.output
    assert asked == ["onnx"] and f"backend onnx (auto: {N} images on the CPU" in _line(r.output)
    # the help states the same threshold as the code
    r = runner.invoke(cli, ["infer", "--help"])
    assert f"for {N} images or more" in _line(r.output)


def test_vals_image_count_is_read_before_the_model_and_never_fails(tmp_path):
    from posedata.commands.model import coco_image_count

    good = tmp_path / "v.json"
    good.write_text(json.dumps({"images": [{"id": i} for i in range(5)], "annotations": []}))
    assert coco_image_count(good) == 5
    for name, text in [("bad.json", "{not json"), ("list.json", "[1, 2]"), ("noimages.json", '{"images": 3}')]:
        (tmp_path / name).write_text(text)
        assert coco_image_count(tmp_path / name) is None  # evaluate reports it, located
    assert coco_image_count(tmp_path / "missing.json") is None
