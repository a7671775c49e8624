"""Kill-and-resume soak: `posedata train` SIGKILLed at random moments (some while last.pt is being
written) and resumed with --resume each time must end at the requested iteration with a checkpoint
that torch.load(weights_only=True) reads and a metrics.jsonl holding every iteration exactly once.

The default run kills twice (one kill while the checkpoint's temp file exists, one at a random
moment of training); the slow run kills eight times. Beside SIGKILL: SIGTERM while last.pt is
being written (exit 143, no temp file left even before the resume), two trainers started on one
run folder at once (the second refused with exit 2, the first unharmed), and, slow, a large
`convert` SIGTERMed while its label file's temp file is being written.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent


def make_data(tmp: Path) -> tuple[Path, Path]:
    """A tiny synthetic set (object5, 6 images of 64 x 64) and its label file."""
    from posedata import skeleton as S
    from posedata.convert import load_source, to_labels
    from posedata.labels import save
    from posedata.synth import generate

    sk = S.resolve("object5")
    ann = generate(sk, tmp / "data", 6, (64, 64), seed=3)
    src = load_source(ann, sk)
    save(to_labels(src.data, sk, source=str(ann), source_sha256=src.sha256), tmp / "data" / "labels.npz")
    return tmp / "data" / "labels.npz", tmp / "data" / "images"


def _env() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    return env


def _metric_lines(run: Path) -> int:
    try:
        return (run / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _checkpoint_temps(run: Path) -> set[str]:
    """atomic_write_bytes writes `.last.pt.<random>.tmp` next to last.pt, then renames it."""
    try:
        return {n for n in os.listdir(run) if n.startswith(".last.pt.")}
    except FileNotFoundError:
        return set()


def kill_at(proc: subprocess.Popen, run: Path, mode: str, rng: random.Random, timeout: float = 120) -> str:
    """SIGKILL proc at the moment `mode` names; returns what happened ('killed ...' or 'finished')."""
    start_lines = _metric_lines(run)
    # a temp file a killed writer left behind is not this process writing
    stale = _checkpoint_temps(run)
    deadline = time.monotonic() + timeout
    delay = rng.uniform(0.0, 1.2)
    stepping_since = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "finished"
        if mode == "checkpoint":
            if _checkpoint_temps(run) - stale:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return "killed while writing last.pt"
            time.sleep(0.001)
            continue
        # random: a random delay after this process's first training step
        if stepping_since is None and _metric_lines(run) > start_lines:
            stepping_since = time.monotonic()
        if stepping_since is not None and time.monotonic() - stepping_since >= delay:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return f"killed {delay:.2f} s into training"
        time.sleep(0.005)
    proc.kill()
    proc.wait()
    raise AssertionError(f"training made no progress in {timeout} s")


def soak(tmp: Path, kills: int, iterations: int, seed: int) -> list[str]:
    labels, images = make_data(tmp)
    run = tmp / "run"
    base = [sys.executable, "-m", "posedata.cli", "train"]
    fresh = base + ["--skeleton", "object5", "--labels", str(labels), "--images", str(images), "-o", str(run),
                    "--iterations", str(iterations), "--batch-size", "2", "--input-size", "32", "--width", "0.25",
                    "--stages", "0", "--checkpoint-every", "3", "--threads", "1", "--seed", "5"]
    resume = base + ["--resume", str(run)]
    rng = random.Random(seed)
    log = []
    started = False
    modes = ["checkpoint" if i % 2 == 0 else "random" for i in range(kills)]
    for mode in modes:
        # until the run folder has its config.json, a kill leaves nothing to resume: start afresh
        cmd = resume if started and (run / "config.json").exists() else fresh + (["--force"] if run.exists() else [])
        proc = subprocess.Popen(cmd, cwd=tmp, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        what = kill_at(proc, run, mode, rng)
        started = True
        if what == "finished":
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            assert proc.returncode == 0, err
            break
        last_ok = _loads(run / "last.pt") if (run / "last.pt").exists() else None
        log.append(f"{what} (last.pt at iteration {last_ok}, {_metric_lines(run)} metric lines)")
    final = subprocess.run(resume, cwd=tmp, env=_env(), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    check_run(run, iterations)
    return log


def _loads(path: Path) -> int:
    """The checkpoint's iteration; fails the test if the file is not a whole, safe checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return int(ckpt["iteration"])


def check_run(run: Path, iterations: int) -> None:
    assert _loads(run / "last.pt") == iterations
    from posedata import skeleton as S
    from trainer.predict import load_model

    load_model(run / "last.pt", S.resolve("object5"))  # rebuilds and fills the network
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["iteration"] for r in rows] == list(range(1, iterations + 1))
    assert all(isinstance(r["loss"], float) for r in rows)
    json.loads((run / "config.json").read_text(encoding="utf-8"))
    # temp files of writes the kills interrupted are cleared by the next resume
    assert not list(run.glob(".*.tmp")), sorted(p.name for p in run.glob(".*.tmp"))


def test_kill_and_resume_twice(tmp_path):
    log = soak(tmp_path, kills=2, iterations=12, seed=int(os.environ.get("SOAK_SEED", "0")))
    assert len(log) == 2, log
    assert "writing last.pt" in log[0]


@pytest.mark.slow
def test_kill_and_resume_soak(tmp_path):
    kills = int(os.environ.get("SOAK_KILLS", "8"))
    log = soak(tmp_path, kills=kills, iterations=60, seed=int(os.environ.get("SOAK_SEED", "1")))
    print("\n".join(log))
    assert len(log) == kills, log


def _fresh(labels: Path, images: Path, run: Path, iterations: int) -> list[str]:
    return [sys.executable, "-m", "posedata.cli", "train", "--skeleton", "object5", "--labels", str(labels),
            "--images", str(images), "-o", str(run), "--iterations", str(iterations), "--batch-size", "2",
            "--input-size", "32", "--width", "0.25", "--stages", "0", "--checkpoint-every", "3", "--threads", "1",
            "--seed", "5"]


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120, poll: float = 0.001) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before the moment to test")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"nothing happened in {timeout} s")
        time.sleep(poll)


def test_sigterm_while_writing_last_pt_leaves_no_temp(tmp_path):
    """SIGTERM (a cluster's preemption) while last.pt is being written: exit 143 with one line, no
    temp file left behind at that moment (SIGKILL leaves one for the resume to clear), and the
    run resumes to the exact end."""
    labels, images = make_data(tmp_path)
    run = tmp_path / "run"
    # train's interrupt line (saved last.pt, the resume command) is part of its report on stdout
    proc = subprocess.Popen(_fresh(labels, images, run, 12), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    _wait_for(lambda: bool(_checkpoint_temps(run)), proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    text = out.decode(errors="replace")
    assert proc.returncode == 143, text
    assert "Traceback" not in text and "SIGTERM" in text
    assert not list(run.glob(".*.tmp")), sorted(p.name for p in run.glob(".*.tmp"))
    assert not list(tmp_path.glob(".run.*")), "the output lock was not released"
    if (run / "last.pt").exists():
        _loads(run / "last.pt")
    final = subprocess.run([sys.executable, "-m", "posedata.cli", "train", "--resume", str(run)], cwd=tmp_path,
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout[-2000:] + final.stderr[-2000:]
    check_run(run, 12)


def test_two_trainers_on_one_run_folder(tmp_path):
    """A second `train -o RUN` (with or without --force) started while the first writes RUN fails
    at once with exit 2 and a message naming the other writer; the first run ends exactly as if
    alone. The first is held still (SIGSTOP) while the others try, so it cannot finish first."""
    labels, images = make_data(tmp_path)
    run = tmp_path / "run"
    cmd = _fresh(labels, images, run, 9)
    first = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: (tmp_path / ".run.posedata-claim").exists(), first, poll=0.01)
        first.send_signal(signal.SIGSTOP)
        try:
            for extra in ([], ["--force"]):
                second = subprocess.run(cmd + extra, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                                        timeout=300)
                assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
                assert "another posedata process is" in second.stderr
        finally:
            first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err.decode(errors="replace")[-2000:]
    check_run(run, 9)
    assert not (tmp_path / ".run.posedata-claim").exists()


@pytest.mark.slow
def test_sigterm_during_a_large_convert_leaves_no_temp(tmp_path):
    """The 73 MB hidden temp file a SIGTERMed convert once left beside its output: SIGTERM the
    moment `.labels.npz.*.tmp` appears; exit 143, no temp file, no output."""
    import numpy as np

    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(1, 30001):
        images.append({"id": i, "file_name": f"{i:06d}.jpg", "width": 640, "height": 480})
        for _ in range(2):
            x, y = rng.uniform(100, 400, 2)
            kp = []
            for _k in range(17):
                kp += [round(float(x + rng.uniform(0, 120)), 1), round(float(y + rng.uniform(0, 200)), 1), 2]
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "keypoints": kp,
                         "num_keypoints": 17, "bbox": [float(x), float(y), 120.0, 200.0], "area": 24000.0})
    from posedata import skeleton as S

    sk = S.resolve("coco17")
    data = {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "person", "keypoints": list(sk.coco_keypoints), "skeleton": []}]}
    src = tmp_path / "big.json"
    src.write_text(json.dumps(data))
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "posedata.cli", "convert", str(src), "--skeleton", "coco17", "-o",
                             str(out / "labels.npz"), "--skip-checks"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _wait_for(lambda: any(n.startswith(".labels.npz.") and n.endswith(".tmp") for n in os.listdir(out)), proc,
              timeout=600)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err.decode(errors="replace")[-2000:]
    assert os.listdir(out) == []
