"""trainer.data / trainer.train and `posedata train` on a tiny synthetic dataset (CPU, 64 px, width 0.25)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from posedata import labels as L
from posedata import skeleton as S
from posedata.cli import cli
from posedata.errors import InputError
from trainer import checkpoint as C
from trainer.predict import load_model
from trainer.train import TrainConfig, read_metrics, train

ROOT = Path(__file__).resolve().parent.parent
SIZE = 96  # synthetic image side
# one thread: on a busy 2-core machine extra intra-op threads make these tiny layers far slower
# tests run on the CPU whatever the machine has, with one refinement stage (the cpu-small preset has none)
FAST = ["--iterations", "4", "--batch-size", "2", "--input-size", "64", "--width", "0.25", "--checkpoint-every", "2",
        "--threads", "1", "--stages", "1", "--device", "cpu"]


def make_dataset(root: Path, n_images: int = 6, bad: bool = False, skeleton: str = "object5") -> dict[str, Path]:
    """Images with one 'object' each (a coloured blob per keypoint), its COCO JSON and a label file."""
    import cv2

    sk = S.resolve(skeleton)
    k = sk.num_keypoints
    rng = np.random.default_rng(7)
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    images, anns, kps, bboxes = [], [], [], []
    for i in range(n_images):
        img = rng.integers(90, 140, size=(SIZE, SIZE, 3), dtype=np.uint8)
        c = rng.uniform(35, SIZE - 35, size=2)
        r = rng.uniform(12, 20)
        offsets = np.array([[0, 0], [-r, -r], [r, -r], [r, r], [-r, r]])[:k]
        pts = c + offsets
        for j, (x, y) in enumerate(pts):
            color = tuple(int(v) for v in (40 * j % 255, 255 - 40 * j % 255, 60 + 30 * j))
            cv2.circle(img, (int(round(x)), int(round(y))), 4, color, -1)
        name = f"img_{i:03d}.png"
        cv2.imwrite(str(img_dir / name), img)
        x0, y0 = pts.min(0) - 5
        x1, y1 = pts.max(0) + 5
        bbox = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
        flat = [v for (x, y) in pts for v in (float(x), float(y), 2)]
        images.append({"id": i + 1, "file_name": name, "width": SIZE, "height": SIZE})
        anns.append({"id": 100 + i, "image_id": i + 1, "category_id": 1, "keypoints": flat, "num_keypoints": k,
                     "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0})
        kps.append(np.concatenate([pts, np.ones((k, 1))], axis=1))
        bboxes.append(bbox)
    if bad:  # an annotation pointing at an image that does not exist, and a truncated keypoint list
        anns[1]["image_id"] = 999
        anns[2]["keypoints"] = anns[2]["keypoints"][:-3]
    coco = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": sk.name, "keypoints": list(sk.coco_keypoints),
                            "skeleton": [[a + 1, b + 1] for a, b in sk.limbs]}]}
    (root / "train.json").write_text(json.dumps(coco))
    n = n_images
    labels = L.Labels(
        fingerprint=sk.fingerprint, skeleton_name=sk.name, keypoint_names=list(sk.keypoints),
        settings={"source": "train.json"},
        image_ids=np.arange(1, n + 1), file_names=[im["file_name"] for im in images],
        widths=np.full(n, SIZE), heights=np.full(n, SIZE), crowd=[[] for _ in range(n)],
        inst_image=np.arange(n), inst_ids=np.arange(100, 100 + n), keypoints=np.stack(kps).astype(np.float32),
        bbox=np.array(bboxes, dtype=np.float32), area=np.array([b[2] * b[3] for b in bboxes], dtype=np.float32),
        num_keypoints=np.full(n, k), samples=np.arange(n),
    )
    L.save(labels, root / "train.npz")
    return {"skeleton": S.template_path(skeleton), "labels": root / "train.npz", "images": img_dir,
            "json": root / "train.json"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    return make_dataset(tmp_path_factory.mktemp("data"))


def config(data: dict[str, Path], out: Path, **kw) -> TrainConfig:
    opts = dict(iterations=4, batch_size=2, input_size=64, width=0.25, checkpoint_every=2, seed=3, threads=1)
    opts.update(kw)
    return TrainConfig(labels=str(data["labels"]), images=str(data["images"]), output=str(out),
                       skeleton_file=str(data["skeleton"]), **opts)


def train_args(data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["train", "--skeleton", str(data["skeleton"]), "--labels", str(data["labels"]),
            "--images", str(data["images"]), "-o", str(out), *extra]


def iterations_of(run: Path) -> list[int]:
    """The iterations of metrics.jsonl's step lines (validation lines carry no loss)."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["iteration"] for r in rows if "loss" in r]


# ------------------------------------------------------------------------- data
def test_dataset_items_and_determinism(data):
    from posedata.augment import AugmentConfig
    from trainer.data import PoseDataset, make_loader

    sk = S.resolve("object5")
    cfg = AugmentConfig(crop_w=64, crop_h=64)
    ds = PoseDataset(data["labels"], data["images"], sk, cfg, seed=5)
    item = ds[(2, 1)]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["heatmaps"].shape == (sk.num_heatmaps, 8, 8)
    assert item["pafs"].shape == (sk.num_pafs, 8, 8)
    assert item["mask"].shape == (8, 8)
    again = PoseDataset(data["labels"], data["images"], sk, cfg, seed=5)[(2, 1)]
    for key in item:
        assert torch.equal(item[key], again[key])  # same (seed, epoch, index): same augmentation
    # the stream does not depend on the number of loader workers
    batches = []
    for workers in (0, 2):
        loader, sampler = make_loader(ds, batch_size=2, workers=workers, seed=5)
        sampler.set_position(1, 2)
        batches.append([b["image"] for b in loader])
    assert len(batches[0]) == 2  # 6 samples, batch 2, starting at the 3rd sample
    for a, b in zip(batches[0], batches[1], strict=True):
        assert torch.equal(a, b)


def test_sampler_shards_and_resumes():
    from trainer.data import EpochSampler, batches_per_epoch

    ds = list(range(10))
    full = list(EpochSampler(ds, 1, 0, seed=1).__iter__())
    s = EpochSampler(ds, 1, 0, seed=1)
    s.set_position(0, 4)
    assert list(s) == full[4:] and len(s) == 6
    shards = [list(EpochSampler(ds, 2, r, seed=1)) for r in (0, 1)]
    assert sorted(i for sh in shards for _, i in sh) == list(range(10))
    e1 = EpochSampler(ds, 1, 0, seed=1)
    e1.set_position(1, 0)
    assert [i for _, i in e1] != [i for _, i in full] and all(e == 1 for e, _ in e1)
    assert batches_per_epoch(10, 3, 1) == 4 and batches_per_epoch(10, 3, 2) == 2


def test_fingerprint_mismatch_refused(data, runner, tmp_path):
    from trainer.data import PoseDataset

    hand = S.resolve("hand21")
    with pytest.raises(InputError) as e:
        PoseDataset(data["labels"], data["images"], hand, None)
    msg = str(e.value)
    assert "object5" in msg and "hand21" in msg
    assert S.resolve("object5").fingerprint in msg and hand.fingerprint in msg
    args = train_args(data, tmp_path / "run", *FAST)
    args[args.index("--skeleton") + 1] = "hand21"
    res = runner.invoke(cli, args)
    assert res.exit_code == 2, res.output
    assert "hand21" in res.output and "object5" in res.output
    assert not (tmp_path / "run").exists()


def test_gate_stops_bad_data(runner, tmp_path):
    bad = make_dataset(tmp_path / "bad", bad=True)
    res = runner.invoke(cli, train_args(bad, tmp_path / "run", *FAST))
    assert res.exit_code == 1, res.output
    assert "error" in res.output and "--skip-checks" in res.output
    assert not (tmp_path / "run").exists()  # stopped before writing anything
    # --force means "replace my earlier run", never "ignore the data's errors"
    res = runner.invoke(cli, train_args(bad, tmp_path / "run", *FAST, "--force"))
    assert res.exit_code == 1 and not (tmp_path / "run").exists(), res.output
    args = train_args(bad, tmp_path / "run", *FAST, "--skip-checks")
    args[args.index("--iterations") + 1] = "1"
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "training anyway (--skip-checks)" in res.output and C.load(tmp_path / "run" / "last.pt")["iteration"] == 1


def test_gate_needs_recorded_source(data, runner, tmp_path):
    lb = L.load(data["labels"])
    lb.settings = {}
    L.save(lb, tmp_path / "nosource.npz")
    args = train_args(data, tmp_path / "run", *FAST)
    args[args.index("--labels") + 1] = str(tmp_path / "nosource.npz")
    res = runner.invoke(cli, args)
    assert res.exit_code == 2 and "source" in res.output and "--skip-checks" in res.output
    args[args.index("--iterations") + 1] = "1"
    res = runner.invoke(cli, args + ["--skip-checks"])
    assert res.exit_code == 0 and "data check could not run" in res.output, res.output


# ------------------------------------------------------------------------ runs
def test_tiny_run_writes_everything(data, runner, tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(cli, train_args(data, run, *FAST))
    assert res.exit_code == 0, res.output
    assert "data check passed" in res.output and "done" in res.output
    cfg = json.loads((run / "config.json").read_text())
    sk = S.resolve("object5")
    assert cfg["fingerprint"] == sk.fingerprint and cfg["skeleton"] == sk.to_dict()
    assert cfg["options"]["iterations"] == 4 and cfg["options"]["width"] == 0.25
    assert set(cfg["versions"]) == {"python", "torch", "numpy", "posedata"}
    assert cfg["model"] == {"num_heatmaps": 6, "num_pafs": 8, "stages": 1, "width": 0.25}
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]["losses"]) == {"stage0_heatmaps", "stage0_pafs", "stage1_heatmaps", "stage1_pafs"}
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 and r["images_per_s"] > 0 for r in rows)
    assert rows[0]["lr"] == pytest.approx(3e-3)  # the cpu-small preset's
    ckpt = C.load(run / "last.pt")
    assert ckpt["iteration"] == 4 and ckpt["fingerprint"] == sk.fingerprint
    assert {"optimizer", "scheduler", "rng", "state_dict"} <= set(ckpt)
    model = load_model(run / "last.pt", sk, backend="torch").model
    assert model.spec.width == 0.25
    assert (run / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    # the run folder is not overwritten without --force
    res = runner.invoke(cli, train_args(data, run, *FAST))
    assert res.exit_code == 2 and "--force" in res.output


def test_resume_after_crash_equals_uninterrupted(data, tmp_path):
    sk = S.resolve("object5")
    straight = train(config(data, tmp_path / "a", iterations=6, checkpoint_every=3), sk)
    assert straight.iteration == 6

    class Crash(Exception):
        pass

    def crash_after_first_checkpoint(event, info):
        if event == "step" and info["iteration"] == 5:
            raise Crash  # dies between checkpoints: iterations 4 and 5 must run again

    with pytest.raises(Crash):
        train(config(data, tmp_path / "b", iterations=6, checkpoint_every=3), sk, callback=crash_after_first_checkpoint)
    assert C.load(tmp_path / "b" / "last.pt")["iteration"] == 3
    assert iterations_of(tmp_path / "b") == [1, 2, 3, 4, 5]
    resumed = train(config(data, tmp_path / "b", iterations=6, checkpoint_every=3), sk, resume=True)
    assert resumed.iteration == 6
    assert iterations_of(tmp_path / "b") == [1, 2, 3, 4, 5, 6]
    a, b = C.load(tmp_path / "a" / "last.pt"), C.load(tmp_path / "b" / "last.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    la = [r["loss"] for r in read_metrics(tmp_path / "a" / "metrics.jsonl", 99)]
    lb = [r["loss"] for r in read_metrics(tmp_path / "b" / "metrics.jsonl", 99)]
    assert la == pytest.approx(lb, rel=1e-6)


def test_cpu_runs_train_channels_last_and_resume_checkpoints_of_either_layout(data, tmp_path):
    """On the CPU the weights train channels-last (trainer.train.memory_format). A checkpoint whose
    weights and Adam moments are in the default layout (as runs saved them before) resumes to
    the same weights as an uninterrupted run: layouts mix in the optimiser's arithmetic, which
    a fused Adam would get wrong (it pairs elements by memory position)."""
    sk = S.resolve("object5")
    straight = train(config(data, tmp_path / "a", iterations=4, checkpoint_every=2), sk)
    assert straight.iteration == 4
    a = C.load(tmp_path / "a" / "last.pt")
    convs = [v for v in a["state_dict"].values() if v.dim() == 4 and v.shape[1] > 1 and v.shape[-1] > 1]
    assert convs and all(v.is_contiguous(memory_format=torch.channels_last) and not v.is_contiguous() for v in convs)

    class Crash(Exception):
        pass

    def crash(event, info):
        if event == "step" and info["iteration"] == 3:
            raise Crash

    with pytest.raises(Crash):
        train(config(data, tmp_path / "b", iterations=4, checkpoint_every=2), sk, callback=crash)
    last = tmp_path / "b" / "last.pt"
    ckpt = C.load(last)
    ckpt["state_dict"] = {k: v.contiguous() for k, v in ckpt["state_dict"].items()}
    for st in ckpt["optimizer"]["state"].values():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                st[k] = v.contiguous()
    C.save(ckpt, last)
    assert train(config(data, tmp_path / "b", iterations=4, checkpoint_every=2), sk, resume=True).iteration == 4
    b = C.load(last)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_sigkill_and_resume(data, runner, tmp_path):
    """Kill the CLI process mid-run, then --resume to the requested iteration."""
    run = tmp_path / "run"
    total = 12
    args = train_args(data, run, "--iterations", str(total), "--batch-size", "2", "--input-size", "64",
                      "--width", "0.25", "--checkpoint-every", "3", "--threads", "1")
    proc = subprocess.Popen([sys.executable, "-m", "posedata.cli", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = len(metrics.read_text().splitlines())
    assert killed_at < total
    res = runner.invoke(cli, ["train", "--resume", str(run)])
    assert res.exit_code == 0, res.output
    assert "resumed from" in res.output or "starting from iteration 0" in res.output
    assert iterations_of(run) == list(range(1, total + 1))
    assert C.load(run / "last.pt")["iteration"] == total
    cfg = json.loads((run / "config.json").read_text())
    assert len(cfg["resumes"]) == 1
    # extending a finished run continues it; changing the data is refused
    res = runner.invoke(cli, ["train", "--resume", str(run), "--iterations", str(total + 2)])
    assert res.exit_code == 0, res.output
    assert iterations_of(run) == list(range(1, total + 3))
    res = runner.invoke(cli, ["train", "--resume", str(run), "--width", "1.0"])
    assert res.exit_code == 2 and "--width" in res.output


def test_max_minutes_stops_cleanly(data, runner, tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(cli, train_args(data, run, "--iterations", "1000", "--batch-size", "2", "--input-size", "64",
                                        "--width", "0.25", "--max-minutes", "0.001", "--threads", "1"))
    assert res.exit_code == 0, res.output
    assert "time budget" in res.output
    it = C.load(run / "last.pt")["iteration"]
    assert 1 <= it < 1000 and iterations_of(run) == list(range(1, it + 1))


def test_init_reports_partial_load(data, runner, tmp_path):
    donor = S.resolve("hand21")
    from trainer.model import for_skeleton

    torch.manual_seed(0)
    net = for_skeleton(donor, stages=1, width=0.25)
    torch.save({"state_dict": net.state_dict()}, tmp_path / "donor.pth")
    run = tmp_path / "run"
    res = runner.invoke(cli, train_args(data, run, *FAST[:2], "--batch-size", "2", "--input-size", "64",
                                        "--width", "0.25", "--threads", "1", "--init", str(tmp_path / "donor.pth")))
    assert res.exit_code == 0, res.output
    assert "kept initialised" in res.output and "initial_stage.heatmaps.1.0.weight" in res.output
    report = json.loads((run / "init_report.json").read_text())
    assert "model.0.0.weight" in report["loaded"] and "cpm.conv.0.weight" in report["loaded"]
    assert report["shape_mismatch"]["initial_stage.heatmaps.1.0.weight"] == [[22, 128, 1, 1], [6, 128, 1, 1]]


def _torchrun() -> str | None:
    exe = Path(sys.executable).parent / "torchrun"
    return str(exe) if exe.exists() else shutil.which("torchrun")


@pytest.mark.slow  # two fresh torch processes plus gloo rendezvous: 20-30 s on a busy 2-core machine
@pytest.mark.skipif(_torchrun() is None, reason="torchrun not available")
def test_two_process_gloo_keeps_parameters_in_sync(data, tmp_path):
    """`posedata train` under torchrun, 2 CPU processes: DDP + DistributedSampler (gloo); every rank
    ends with the same weights, and rank 0 alone writes the run folder."""
    run = tmp_path / "run"
    script = tmp_path / "ddp_run.py"
    script.write_text(f"""
import os, sys, torch
import trainer.train as T
models = []
build = T.for_skeleton
T.for_skeleton = lambda *a, **k: models.append(build(*a, **k)) or models[-1]
from posedata.cli import main
sys.argv = ["posedata", "train", "--skeleton", "object5", "--labels", {str(data['labels'])!r},
            "--images", {str(data['images'])!r}, "-o", {str(run)!r}, "--iterations", "3", "--batch-size", "2",
            "--input-size", "64", "--width", "0.25", "--stages", "1", "--checkpoint-every", "2", "--seed", "3",
            "--threads", "1"]
try:
    main()
except SystemExit as e:
    if e.code:
        raise
torch.save(models[0].state_dict(), os.path.join({str(tmp_path)!r}, f"rank{{os.environ['RANK']}}.pt"))
""")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([_torchrun(), "--standalone", "--nproc_per_node", "2", str(script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("data check passed") == 1  # rank 1 prints nothing
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    from trainer.model import for_skeleton

    params = [n for n, _ in for_skeleton(S.resolve("object5"), 1, 0.25).named_parameters()]
    for k in params:
        assert torch.equal(r0[k], r1[k]), k
    # (BatchNorm running statistics are buffers: DDP broadcasts rank 0's before every forward,
    # and rank 0's are what the checkpoint keeps)
    last = C.load(run / "last.pt")
    assert last["iteration"] == 3
    for k in r0:
        assert torch.equal(r0[k], last["state_dict"][k]), k
    torch.manual_seed(3)  # the run's seed: the weights every rank started from
    start = for_skeleton(S.resolve("object5"), 1, 0.25).state_dict()
    assert not torch.equal(start["cpm.conv.0.weight"], r0["cpm.conv.0.weight"])  # it did train
    assert iterations_of(run) == [1, 2, 3]  # rank 0 alone writes metrics
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2


def test_validation_keeps_best_checkpoint(data, runner, tmp_path):
    pytest.importorskip("trainer.evaluate")
    run = tmp_path / "run"
    res = runner.invoke(cli, train_args(data, run, *FAST, "--checkpoint-every", "4", "--val-json",
                                        str(data["json"]), "--val-images", str(data["images"])))
    assert res.exit_code == 0, res.output
    assert res.output.count("iteration 4: validation AP") == 1  # validation runs at each checkpoint
    best = C.load(run / "best.pt")
    assert best["iteration"] == 4 and best["best_ap"] == C.load(run / "last.pt")["best_ap"]
    assert np.isfinite(best["best_ap"])


def test_train_device_option(data, runner, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    run = tmp_path / "run"
    res = runner.invoke(cli, train_args(data, run, *FAST, "--device", "cuda"))
    assert res.exit_code == 2 and "no usable CUDA GPU" in res.output, res.output
    assert not run.exists()  # refused before the data check and the run folder
    res = runner.invoke(cli, train_args(data, run, "--iterations", "1", *FAST[2:], "--device", "cpu"))
    assert res.exit_code == 0, res.output
    assert "on cpu" in res.output
    assert json.loads((run / "config.json").read_text())["options"]["device"] == "cpu"


# ----------------------------------------------------------------- interrupts
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupt_saves_last_at_the_current_step(data, tmp_path, sig, code):
    """Ctrl-C or a cluster's SIGTERM mid-run: last.pt at the step reached (not the last periodic
    checkpoint), the resume command printed, and --resume continues from there."""
    run = tmp_path / "run"
    args = train_args(data, run, *FAST)
    args[args.index("--iterations") + 1] = "500"
    args[args.index("--checkpoint-every") + 1] = "1000"
    proc = subprocess.Popen([sys.executable, "-m", "posedata.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, COLUMNS="200"))
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-2000:]
    reached = iterations_of(run)
    assert 3 <= len(reached) < 500 and reached == list(range(1, len(reached) + 1))
    assert C.load(run / "last.pt")["iteration"] == len(reached)
    text = " ".join(out.split())
    assert f"posedata train --resume {run}" in text and f"iteration {len(reached)}" in text
    res = CliRunner().invoke(cli, ["train", "--resume", str(run), "--iterations", str(len(reached) + 2)])
    assert res.exit_code == 0, res.output
    assert iterations_of(run) == list(range(1, len(reached) + 3))


# ------------------------------------------------------------- time budget
def test_max_minutes_is_a_promise_with_slow_validations(data, tmp_path, monkeypatch):
    """The case: --max-minutes 6 ran 9 min 56 s and validated at 200 and again at 201. Here a
    validation takes 2 s and the budget is 20 s: the run, its validations and its last.pt end
    within the 20 s, and no validation follows another by one step."""
    import trainer.evaluate as E

    validated = []

    def slow_evaluate(model, skeleton, coco, images, input_size):
        time.sleep(2.0)
        return {"AP": 0.1 * len(validated)}

    monkeypatch.setattr(E, "evaluate", slow_evaluate)
    events = []
    cfg = config(data, tmp_path / "run", iterations=100000, checkpoint_every=10, max_minutes=20 / 60,
                 val_json=str(data["json"]), val_images=str(data["images"]))
    started = time.monotonic()
    result = train(cfg, S.resolve("object5"),
                   callback=lambda e, i: (events.append((e, i)), e == "validation" and validated.append(i["iteration"])))
    took = time.monotonic() - started
    assert result.stopped_early and took <= 20.0, (took, validated, result.iteration)
    assert C.load(tmp_path / "run" / "last.pt")["iteration"] == result.iteration
    assert validated and all(b - a > 1 for a, b in zip(validated, validated[1:], strict=False))
    assert any("budget" in i["message"] for e, i in events if e == "note")


# --------------------------------------------------------- extending a run
def test_extending_a_finished_run_keeps_the_rate_and_updates_config(data, runner, tmp_path):
    """The case: `--resume --iterations` larger raised the learning rate ~9x and left the old
    milestones in config.json."""
    run = tmp_path / "run"
    args = train_args(data, run, *FAST)
    args[args.index("--iterations") + 1] = "8"  # drops at 3, 6 and 7
    args[args.index("--checkpoint-every") + 1] = "8"
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert json.loads((run / "config.json").read_text())["lr_milestones"] == [3, 6, 7]
    res = runner.invoke(cli, ["train", "--resume", str(run), "--iterations", "12"])
    assert res.exit_code == 0, res.output
    assert "schedule for 12 iterations" in " ".join(res.output.split())  # stated in one line
    rates = [r["lr"] for r in read_metrics(run / "metrics.jsonl", 99)]
    final = 3e-3 * 0.333**3
    assert rates[8:] == pytest.approx([final] * 4, rel=1e-6)  # the rate never rises
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["options"]["iterations"] == 12 and cfg["lr_milestones"] == [3, 6, 7]


def test_extending_a_run_half_way_scales_the_remaining_drops():
    from trainer.train import rescheduled

    # 100 iterations, stopped at 50 after the first drop (36): the other two move to 2/280... of 200
    assert rescheduled([36, 71, 93], 50, 200) == [36, 143, 186]
    assert rescheduled([36, 143, 186], 150, 200) == [36, 143, 186]  # idempotent
    assert rescheduled([36, 71, 93], 100, 1000) == [36, 71, 93]  # finished: all drops stay taken
    assert rescheduled([357, 714, 929], 500, 600) == [357, 501, 557]  # shortened: never into the past


# ------------------------------------------------------------------- --init
def test_init_counts_only_weights_as_loaded(data, runner, tmp_path):
    """The case: --init ref.pth --width 0.5 reported "loaded 37 tensors" (BatchNorm counters and
    head biases) when no weight loaded, which hid the "needs --width 1.0" hint."""
    from trainer.model import for_skeleton

    torch.save({"state_dict": for_skeleton(S.resolve("object5"), stages=1, width=1.0).state_dict()},
               tmp_path / "ref.pth")
    res = runner.invoke(cli, train_args(data, tmp_path / "run", *FAST, "--init", str(tmp_path / "ref.pth")))
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "loaded 0 of" in text and "no weight was loaded" in text and "need --width 1.0" in text, text
    report = json.loads((tmp_path / "run" / "init_report.json").read_text())
    assert report["weights_loaded"] == [] and report["loaded"]  # the biases and counters did load


# ---------------------------------------------------------- presets, speed
def test_cpu_gets_the_small_preset_and_an_estimate(data, runner, tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(cli, train_args(data, run, "--iterations", "6", "--device", "cpu", "--threads", "1"))
    assert res.exit_code == 0, res.output
    opts = json.loads((run / "config.json").read_text())["options"]
    assert opts["preset"] == "cpu-small"
    assert (opts["input_size"], opts["width"], opts["stages"], opts["batch_size"]) == (128, 0.25, 0, 16)
    assert opts["iterations"] == 6  # a given option wins over the preset
    text = " ".join(res.output.split())
    assert "settings: input 128, width 0.25, 0 refinement stage(s), batch 16, 6 iterations" in text
    assert "(preset cpu-small, the default for this device; given: --iterations)" in text
    assert "images/s (measured" in text and "iterations left: about" in text  # after a few steps


def test_a_long_cpu_run_says_so_at_the_start_and_names_the_faster_preset(data, tmp_path, monkeypatch):
    """The reference preset on a CPU (the old default: an 18-hour estimate on a 3-image example,
    nothing said): the warning comes from a one-image probe, before the first step."""
    from rich.console import Console

    import trainer.train as T
    from posedata.commands.model import _print_estimate

    monkeypatch.setattr(T, "speed_probe", lambda *a: 1.1)  # s/image: the reference network on 2 busy cores
    events = []

    class Seen(Exception):
        pass

    def stop_at_estimate(event, info):
        events.append((event, info))
        if event == "estimate":
            raise Seen

    cfg = config(data, tmp_path / "run", iterations=20000, batch_size=80, preset="reference")
    with pytest.raises(Seen):
        train(cfg, S.resolve("object5"), callback=stop_at_estimate)
    assert not any(e == "step" for e, _ in events)  # said before the first step
    info = events[-1][1]
    assert info["probe"] and info["long_on_cpu"] and info["faster_preset"] == "cpu-small"
    assert info["seconds"] == pytest.approx(20000 * 80 * 1.1, rel=0.01)  # plus 21 checkpoints
    con = Console(record=True, width=100)
    _print_estimate(info, con)
    text = " ".join(con.export_text().split())
    assert "this run would take 20.5 days on this CPU" in text and "--preset cpu-small" in text
