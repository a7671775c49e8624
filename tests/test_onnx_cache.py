"""The ONNX graph cache (trainer/onnx_cache.py): `--backend onnx` on a checkpoint reuses the graph
an earlier job built for the same bytes, without importing torch; anything that does not match
(other weights, another skeleton, a damaged or foreign entry) is rebuilt, never used; the
checkpoint is only read; POSEDATA_ONNX_CACHE=0 turns it off; `auto` picks ONNX Runtime from
ONNX_MIN_IMAGES_CACHED images once the graph is cached."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_evaluate import make_dataset, sk_named

from posedata.cli import cli
from posedata.errors import InputError
from trainer import onnx_cache
from trainer import predict as P

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
ROOT = Path(__file__).resolve().parents[1]


def _checkpoint(path: Path, sk, seed: int = 0) -> Path:
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    torch.manual_seed(seed)
    model = for_skeleton(sk, stages=0, width=0.25)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint,
                                 config={"input_size": 64}), path)
    return path


def _entries() -> list[Path]:
    root = onnx_cache.cache_dir()
    return sorted(root.glob("*.onnx")) if root is not None and root.is_dir() else []


def _maps(loaded) -> np.ndarray:
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 3, 64, 96)).astype(np.float32)
    heat, pafs = loaded.model.forward_numpy(x)
    return np.concatenate([heat, pafs], 1)


def _torch_maps(ckpt: Path) -> np.ndarray:
    loaded = P.load_model(ckpt, backend="torch")
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 3, 64, 96)).astype(np.float32)
    with torch.inference_mode():
        outs = loaded.model(torch.from_numpy(x))
    return torch.cat([outs[-2], outs[-1]], 1).numpy()


def test_a_second_infer_reuses_the_graph_without_importing_torch(tmp_path):
    """Before, every `--backend onnx` job on a checkpoint imported torch to read it and wrote the
    graph again (torch's import alone 1.3 CPU s of a one-photo job). A fresh process per job, as
    users run it."""
    sk = sk_named("object5")
    _, images, _ = make_dataset(tmp_path, sk, n_images=1, h=64, w=96)
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    code = ("import sys; from click.testing import CliRunner; from posedata.cli import cli; "
            f"r = CliRunner().invoke(cli, ['infer', {str(images)!r}, '--checkpoint', {str(ckpt)!r}, '-o', sys.argv[1], "
            "'--backend', sys.argv[2]]); assert r.exit_code == 0, r.output; "
            "print('torch imported' if 'torch' in sys.modules else 'no torch')")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}

    def job(out: str, backend: str) -> str:
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / out), backend], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip().splitlines()[-1]

    assert job("a", "onnx") == "torch imported"  # cold: the checkpoint is read with torch, the graph cached
    assert len(_entries()) == 1
    assert job("b", "onnx") == "no torch"
    # auto takes ONNX Runtime for one image once the graph is cached; it asks torch for a GPU only
    # when torch is a CUDA or ROCm build (trainer.device.surely_cpu)
    cpu_build = torch.version.cuda is None and torch.version.hip is None
    assert job("c", "auto") == ("no torch" if cpu_build else "torch imported")
    assert (json.loads((tmp_path / "a" / "results.json").read_text())
            == json.loads((tmp_path / "b" / "results.json").read_text()))


def test_the_key_is_the_checkpoints_content_and_the_input_is_only_read(tmp_path):
    sk = sk_named("object5")
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    before = (ckpt.read_bytes(), ckpt.stat().st_mtime_ns, sorted(os.listdir(tmp_path)))
    first = P.load_model(ckpt, backend="onnx")
    assert len(_entries()) == 1 and first.backend == "onnx"
    # the same bytes under another name: the same entry; its report is the first load's
    copy = tmp_path / "copy.pt"
    copy.write_bytes(ckpt.read_bytes())
    again = P.load_model(copy, backend="onnx")
    assert len(_entries()) == 1
    assert (again.description, again.input_size, again.skeleton.fingerprint) == (
        first.description, first.input_size, first.skeleton.fingerprint)
    np.testing.assert_array_equal(_maps(again), _maps(first))
    assert (ckpt.read_bytes(), ckpt.stat().st_mtime_ns) == before[:2]
    assert sorted(os.listdir(tmp_path)) == sorted(before[2] + ["copy.pt"])  # nothing written beside it
    # other weights at the same path: another entry, and the maps are the new weights'
    _checkpoint(ckpt, sk, seed=1)
    new = P.load_model(ckpt, backend="onnx")
    assert len(_entries()) == 2
    np.testing.assert_allclose(_maps(new), _torch_maps(ckpt), atol=1e-4)
    assert np.abs(_maps(new) - _maps(first)).max() > 1e-3


def test_damaged_and_foreign_entries_are_ignored_and_rebuilt(tmp_path):
    sk = sk_named("object5")
    a = _checkpoint(tmp_path / "a.pt", sk, seed=0)
    b = _checkpoint(tmp_path / "b.pt", sk, seed=1)
    P.load_model(a, backend="onnx")
    P.load_model(b, backend="onnx")
    key_a, key_b = onnx_cache.key_of(a, None), onnx_cache.key_of(b, None)
    root = onnx_cache.cache_dir()
    good_b = (root / f"{key_b}.onnx").read_bytes()
    # a's graph under b's name (its stored key is a's): not used for b
    (root / f"{key_b}.onnx").write_bytes((root / f"{key_a}.onnx").read_bytes())
    np.testing.assert_allclose(_maps(P.load_model(b, backend="onnx")), _torch_maps(b), atol=1e-4)
    assert (root / f"{key_b}.onnx").read_bytes() == good_b  # rebuilt
    # truncated, and not ONNX at all
    for damaged in (good_b[: len(good_b) // 2], b"not a model"):
        (root / f"{key_b}.onnx").write_bytes(damaged)
        np.testing.assert_allclose(_maps(P.load_model(b, backend="onnx")), _torch_maps(b), atol=1e-4)
        assert (root / f"{key_b}.onnx").read_bytes() == good_b


def test_a_cached_graph_still_checks_the_skeleton(tmp_path, runner):
    """The key holds the skeleton the checkpoint was checked against: a warm cache does not skip
    the fingerprint refusal."""
    sk = sk_named("object5")
    _, images, _ = make_dataset(tmp_path, sk, n_images=1, h=64, w=96)
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    base = ["infer", str(images), "--checkpoint", str(ckpt), "--backend", "onnx"]
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "b"), "--skeleton", "coco17"])
    assert r.exit_code == 2 and "fingerprint" in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "b").exists()
    with pytest.raises(InputError, match="fingerprint"):
        P.load_model(ckpt, sk_named("coco17"), backend="onnx")
    # the checkpoint's own skeleton given by name: its own entry, the same maps
    given = P.load_model(ckpt, sk, backend="onnx")
    assert given.skeleton is sk and len(_entries()) == 2


def test_the_cache_can_be_turned_off_and_an_unwritable_one_is_skipped(tmp_path, monkeypatch):
    sk = sk_named("object5")
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    monkeypatch.setenv("POSEDATA_ONNX_CACHE", "0")
    assert onnx_cache.cache_dir() is None
    P.load_model(ckpt, backend="onnx")
    P.load_model(ckpt, backend="onnx")
    monkeypatch.delenv("POSEDATA_ONNX_CACHE")
    assert _entries() == []
    assert "no cached graph" in P.choose_backend("auto", ckpt, "cpu", 100)[1]
    # XDG_CACHE_HOME a file: nothing can be made under it; the job runs as without a cache
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    np.testing.assert_allclose(_maps(P.load_model(ckpt, backend="onnx")), _torch_maps(ckpt), atol=1e-4)
    # a relative XDG_CACHE_HOME is ignored, as the XDG spec says
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    assert onnx_cache.cache_dir() == Path.home() / ".cache" / "posedata" / "onnx"


def test_a_checkpoint_changed_while_read_is_not_cached(tmp_path, monkeypatch):
    sk = sk_named("object5")
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    real, calls = onnx_cache.file_state, iter(range(100))
    monkeypatch.setattr(onnx_cache, "file_state", lambda path: (*real(path), next(calls)))  # a new state each look
    P.load_model(ckpt, backend="onnx")
    assert _entries() == []


def test_only_the_newest_entries_are_kept(tmp_path, monkeypatch):
    sk = sk_named("object5")
    monkeypatch.setattr(onnx_cache, "MAX_ENTRIES", 2)
    ckpts = [_checkpoint(tmp_path / f"c{i}.pt", sk, seed=i) for i in range(3)]
    for c in ckpts:
        P.load_model(c, backend="onnx")
    assert [p.stem for p in _entries()] and len(_entries()) == 2
    assert not onnx_cache.has_entry(ckpts[0], None) and onnx_cache.has_entry(ckpts[2], None)


def test_auto_takes_onnx_runtime_from_fewer_images_once_the_graph_is_cached(tmp_path, runner, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sk = sk_named("object5")
    _, images, _ = make_dataset(tmp_path, sk, n_images=1, h=64, w=96)
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    cold, warm = P.ONNX_MIN_IMAGES, P.ONNX_MIN_IMAGES_CACHED
    assert warm < cold
    assert P.choose_backend("auto", ckpt, "cpu", cold - 1)[0] == "torch"
    assert P.choose_backend("auto", ckpt, "auto", cold) == (
        "onnx", f"auto: {cold} images on the CPU, ONNX Runtime is faster from {cold} (no cached graph)")
    P.load_model(ckpt, backend="onnx")  # an earlier job's graph
    assert P.choose_backend("auto", ckpt, "cpu", warm)[0] == "onnx"
    assert P.choose_backend("auto", ckpt, "cpu", warm - 1)[0] == "torch"
    assert "(its graph cached)" in P.choose_backend("auto", ckpt, "cpu", warm)[1]
    # the graph of another skeleton's check is another entry
    assert P.choose_backend("auto", ckpt, "cpu", warm, sk)[0] == ("onnx" if warm >= cold else "torch")
    r = runner.invoke(cli, ["infer", str(images), "--checkpoint", str(ckpt), "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "backend onnx (auto: 1 image on the CPU, ONNX Runtime is faster from 1 (its graph cached))" in " ".join(
        r.output.split())


def test_a_small_auto_job_on_torch_caches_the_graph_for_the_next(tmp_path, runner, monkeypatch):
    """Without it, a user running `posedata infer photo.jpg` one photo at a time would stay on
    torch (and its import) forever: `auto` takes ONNX Runtime cold only from ONNX_MIN_IMAGES."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sk = sk_named("object5")
    _, images, _ = make_dataset(tmp_path, sk, n_images=1, h=64, w=96)
    ckpt = _checkpoint(tmp_path / "c.pt", sk)
    base = ["infer", str(images), "--checkpoint", str(ckpt)]
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "t"), "--backend", "torch"])
    assert r.exit_code == 0, r.output
    assert _entries() == []  # an explicit torch job writes nothing
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "a")])
    assert r.exit_code == 0 and "backend torch (auto: 1 image(s)" in " ".join(r.output.split()), r.output
    assert len(_entries()) == 1
    written = _entries()[0].read_bytes()
    r = runner.invoke(cli, [*base, "-o", str(tmp_path / "b")])
    assert r.exit_code == 0 and "backend onnx (auto: 1 image on the CPU" in " ".join(r.output.split()), r.output
    assert "run by ONNX Runtime" in " ".join(r.output.split())
    for a, b in zip(*(json.loads((tmp_path / d / "results.json").read_text())["annotations"] for d in "ab"),
                    strict=True):
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=0.01)
    # the torch job's entry is the one an onnx job writes itself
    _entries()[0].unlink()
    P.load_model(ckpt, backend="onnx")
    assert _entries()[0].read_bytes() == written
