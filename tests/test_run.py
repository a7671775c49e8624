"""trainer.run: run folders that continue in place, move, lock, and start atomically; --resume
with the original command's options (CPU, 64 px, width 0.25)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_train import FAST, ROOT, iterations_of, make_dataset, train_args

from posedata.cli import cli
from trainer import checkpoint as C


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    return make_dataset(tmp_path_factory.mktemp("rundata"))


def test_resume_continues_the_given_folder_not_the_recorded_one(data, runner, tmp_path):
    original = tmp_path / "original"
    res = runner.invoke(cli, train_args(data, original, *FAST))
    assert res.exit_code == 0, res.output
    before = {p.name: p.read_bytes() for p in original.iterdir() if p.is_file()}
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    res = runner.invoke(cli, ["train", "--resume", str(copy), "--iterations", "6"])
    assert res.exit_code == 0, res.output
    assert C.load(copy / "last.pt")["iteration"] == 6 and iterations_of(copy) == [1, 2, 3, 4, 5, 6]
    # the original run is exactly as it was
    assert {p.name: p.read_bytes() for p in original.iterdir() if p.is_file()} == before


def test_a_project_moved_as_a_whole_resumes_from_anywhere(runner, tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    d = make_dataset(proj / "data")
    monkeypatch.chdir(proj)  # paths typed relative to the project, as users do
    args = ["train", "--skeleton", str(d["skeleton"]), "--labels", "data/train.npz", "--images", "data/images",
            "-o", "runs/a", *FAST]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    moved = tmp_path / "elsewhere" / "proj2"
    moved.parent.mkdir()
    shutil.move(str(proj), str(moved))
    monkeypatch.chdir(tmp_path)  # another working directory
    res = runner.invoke(cli, ["train", "--resume", "elsewhere/proj2/runs/a", "--iterations", "6"])
    assert res.exit_code == 0, res.output
    run = moved / "runs" / "a"
    assert C.load(run / "last.pt")["iteration"] == 6
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["options"]["labels"] == str(moved / "data" / "train.npz")  # found through the run-relative path
    assert cfg["paths_from_run"]["labels"] == os.path.join("..", "..", "data", "train.npz")
    assert not (tmp_path / "runs").exists() and not (tmp_path / "proj").exists()


def test_a_run_folder_moved_alone_resumes(data, runner, tmp_path):
    run = tmp_path / "a" / "run"
    res = runner.invoke(cli, train_args(data, run, *FAST))
    assert res.exit_code == 0, res.output
    moved = tmp_path / "b" / "deeper" / "run"
    moved.parent.mkdir(parents=True)
    shutil.move(str(run), str(moved))
    res = runner.invoke(cli, ["train", "--resume", str(moved), "--iterations", "5"])
    assert res.exit_code == 0, res.output  # found through the absolute path
    assert C.load(moved / "last.pt")["iteration"] == 5 and not run.exists()


def test_resume_accepts_the_original_command_and_names_what_differs(data, runner, tmp_path):
    run = tmp_path / "run"
    original = train_args(data, run, *FAST)
    res = runner.invoke(cli, original)
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, [*original, "--resume", str(run), "--iterations", "5"])  # the documented way
    assert res.exit_code == 0, res.output
    assert C.load(run / "last.pt")["iteration"] == 5
    changed = [*original, "--resume", str(run)]
    changed[changed.index("--width") + 1] = "0.5"
    changed[changed.index("--labels") + 1] = str(tmp_path / "other.npz")
    res = runner.invoke(cli, changed)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "--width 0.5 (the run has 0.25)" in text and "--labels" in text
    assert "--images" not in text.split("differ from them:")[1].split(". Only")[0]  # unchanged: not named
    res = runner.invoke(cli, [*original, "--resume", str(run), "--preset", "reference"])
    assert res.exit_code == 2 and "--input-size 368" not in res.output  # given explicitly: 64 is compared
    assert "--lr 4e-05" in " ".join(res.output.split())


def test_a_second_trainer_on_a_running_folder_is_refused(data, runner, tmp_path):
    from trainer.run import RunLock, lock_path

    run = tmp_path / "run"
    res = runner.invoke(cli, train_args(data, run, *FAST))
    assert res.exit_code == 0, res.output
    with RunLock(run):  # as a trainer running in this folder holds it
        for args in (["train", "--resume", str(run), "--iterations", "6"], train_args(data, run, *FAST, "--force")):
            res = runner.invoke(cli, args)
            assert res.exit_code == 2, res.output
            assert "another posedata process" in res.output
    assert C.load(run / "last.pt")["iteration"] == 4  # untouched
    assert not lock_path(run).exists()  # released: nothing left beside the run


def test_the_lock_dies_with_its_process(tmp_path):
    from trainer.run import RunLock

    run = tmp_path / "run"
    code = f"from trainer.run import RunLock; import sys, time; RunLock({str(run)!r}).acquire(); print('held', flush=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match="another posedata process"):
            RunLock(run).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        RunLock(run).acquire().release()  # the OS released it
    finally:
        proc.kill()
        proc.wait()


KILL_DURING_CONFIG = """
import os, signal, sys
real_fsync = os.fsync
def fsync(fd):
    name = os.readlink(f"/proc/self/fd/{fd}")
    if name.endswith(".tmp") and ("config" in name or os.path.basename(name).startswith(".run.")):
        os.kill(os.getpid(), signal.SIGKILL)  # killed while the first config.json is being written
    real_fsync(fd)
os.fsync = fsync
from posedata.cli import main
sys.argv = ["posedata", *sys.argv[1:]]
main()
"""


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_killed_while_writing_the_first_config_leaves_an_empty_folder(data, runner, tmp_path):
    run = tmp_path / "run"
    args = train_args(data, run, *FAST)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(KILL_DURING_CONFIG), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # empty: nothing half-written inside (the claim marker alone counts as empty: io.OutputClaim)
    assert not run.exists() or not [p for p in run.iterdir() if p.name != ".posedata-output"]
    res = runner.invoke(cli, args)  # the same command starts it again, without --force
    assert res.exit_code == 0, res.output
    assert C.load(run / "last.pt")["iteration"] == 4
    assert not list(tmp_path.glob(".run.*.tmp"))  # the killed write's temp file is gone


@pytest.mark.skipif(sys.platform != "linux", reason="parent pid semantics of Linux")
def test_ranks_stop_when_their_launcher_dies(tmp_path):
    """A rank (here a child with LOCAL_RANK set, as torchrun starts it) ends when its launcher
    is SIGKILLed, instead of training on without it."""
    child = ("import os, time; from trainer.distributed import stop_with_launcher; stop_with_launcher(); "
             "print(os.getpid(), flush=True); time.sleep(60)")
    launcher = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', {child!r}]); "
                "time.sleep(60)")
    env = dict(os.environ, LOCAL_RANK="0", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", launcher], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        def alive() -> bool:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                return False
            return "State:\tZ" not in status  # a zombie has stopped; only its reaping is left

        deadline = time.monotonic() + 10
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive()
    finally:
        proc.kill()
        proc.wait()
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, UnboundLocalError):
            pass
