"""Nothing a user owns is destroyed: every command's output claim (posedata.io.OutputClaim) through
the CLI. Each case of issue 12's "data loss" list is here and failed on the code before the claim
(the command exited 0 and replaced or deleted an input, or wiped a folder it did not make)."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from posedata import skeleton as S
from posedata.cli import cli
from posedata.io import MARKER, claim_output, marker_of
from posedata.synth import generate

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "import"


def tree(root: Path) -> dict[str, str]:
    """Every file under root with its content hash: what must be identical after a refusal."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def ds(tmp_path) -> Path:
    """A small COCO set laid out as `posedata synth` writes it (annotations.json, images/)."""
    generate(S.resolve("object5"), tmp_path / "ds", 3, (64, 64), seed=1)
    return tmp_path / "ds"


def _tiny_checkpoint(path: Path) -> Path:
    torch = pytest.importorskip("torch")
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    sk = S.resolve("object5")
    torch.manual_seed(0)
    model = for_skeleton(sk, stages=0, width=0.25)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint), path)
    return path


def refused(r, *words: str) -> None:
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    for w in words:
        assert w in r.output, r.output


# ------------------------------------------------------------- the cases
def test_export_yolo_never_deletes_the_folder_holding_its_input(runner, tmp_path, ds):
    """`export yolo data.json --images proj/imgs -o proj --force` deleted proj with data.json in it."""
    proj = tmp_path / "proj"
    shutil.copytree(ds / "images", proj / "imgs")
    shutil.copyfile(ds / "annotations.json", proj / "data.json")
    (proj / "notes.txt").write_text("three weeks of labelling")
    before = tree(proj)
    r = runner.invoke(cli, ["export", "yolo", str(proj / "data.json"), "--skeleton", "object5",
                            "--images", str(proj / "imgs"), "-o", str(proj), "--force"])
    refused(r, "contains the input")
    assert tree(proj) == before


def test_synth_force_never_wipes_a_real_dataset(runner, tmp_path):
    """`synth -o realds --force` took a folder holding images/ and annotations.json for its own."""
    real = tmp_path / "realds"
    (real / "images").mkdir(parents=True)
    (real / "images" / "000001.jpg").write_bytes(b"\xff\xd8 a real photo")
    (real / "annotations.json").write_text('{"images": [], "annotations": [], "categories": []}')
    before = tree(real)
    r = runner.invoke(cli, ["synth", "--skeleton", "object5", "-o", str(real), "--images", "1", "--force"])
    refused(r, "did not make", MARKER)
    assert tree(real) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["realds"]


def test_convert_never_replaces_its_skeleton(runner, tmp_path, ds):
    sk = tmp_path / "sk.yaml"
    shutil.copyfile(ROOT / "posedata" / "templates" / "object5.yaml", sk)
    before = sk.read_bytes()
    r = runner.invoke(cli, ["convert", str(ds / "annotations.json"), "--skeleton", str(sk), "-o", str(sk), "--force"])
    refused(r, "is the input")
    assert sk.read_bytes() == before


def test_validate_fix_never_replaces_its_skeleton_or_data(runner, tmp_path, ds):
    sk = tmp_path / "sk.yaml"
    shutil.copyfile(ROOT / "posedata" / "templates" / "object5.yaml", sk)
    before = tree(tmp_path)
    for target in (sk, ds / "annotations.json"):
        r = runner.invoke(cli, ["validate", str(ds / "annotations.json"), "--skeleton", str(sk), "--fix", str(target),
                                "--force"])
        refused(r, "is the input")
    r = runner.invoke(cli, ["validate", str(ds / "annotations.json"), "--skeleton", str(sk), "--images",
                            str(ds / "images"), "--fix", str(ds / "images" / "fixed.json"), "--force"])
    refused(r, "inside the input folder")
    assert tree(tmp_path) == before


def test_skeleton_init_never_replaces_its_source(runner, tmp_path, ds):
    src = ds / "annotations.json"
    before = src.read_bytes()
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(src), "-o", str(src), "--force"])
    refused(r, "is the input")
    assert src.read_bytes() == before
    # nor a symlink to it
    (tmp_path / "link.json").symlink_to(src)
    r = runner.invoke(cli, ["skeleton", "init", "--from-coco", str(src), "-o", str(tmp_path / "link.json"), "--force"])
    refused(r, "is the input")
    assert src.read_bytes() == before


def test_skeleton_init_from_dlc_never_replaces_the_labels_it_reads(runner, tmp_path):
    """init --from-dlc reads the project's labelled tables for its limbs: -o onto one with --force
    replaced a user's labels with a skeleton file."""
    project = tmp_path / "mouse"
    shutil.copytree(DATA / "dlc_project", project)
    before = tree(project)
    for out in ("labeled-data/mouse1/CollectedData_Alice.csv", "labeled-data/mouse1/CollectedData_Alice.h5",
                "labeled-data/mouse1/skeleton.yaml", "config.yaml"):
        r = runner.invoke(cli, ["skeleton", "init", "--from-dlc", str(project / "config.yaml"), "-o",
                                str(project / out), "--force"])
        refused(r, "is the input" if not out.endswith(("h5", "skeleton.yaml")) else "inside the input folder")
    assert tree(project) == before
    r = runner.invoke(cli, ["skeleton", "init", "--from-dlc", str(project / "config.yaml"), "-o",
                            str(project / "mouse.yaml")])
    assert r.exit_code == 0, r.output


def test_skeleton_show_plot_never_replaces_the_skeleton(runner, tmp_path):
    sk = tmp_path / "sk.yaml"
    shutil.copyfile(ROOT / "posedata" / "templates" / "object5.yaml", sk)
    r = runner.invoke(cli, ["skeleton", "show", str(sk), "--plot", str(sk), "--force"])
    refused(r, "is the input")
    assert sk.read_bytes() == (ROOT / "posedata" / "templates" / "object5.yaml").read_bytes()


def test_import_never_writes_into_its_input_folder(runner, tmp_path):
    """`import labelme lm -o lm/cage_b.json --force` replaced one of the project's own files."""
    lm = tmp_path / "lm"
    shutil.copytree(DATA / "labelme_project", lm)
    before = tree(lm)
    r = runner.invoke(cli, ["import", "labelme", str(lm), "--skeleton", str(DATA / "dlc_mouse.yaml"), "-o",
                            str(lm / "cage_b.json"), "--force"])
    refused(r, "inside the input folder")
    assert tree(lm) == before


def test_export_onnx_never_replaces_its_checkpoint(runner, tmp_path):
    ckpt = _tiny_checkpoint(tmp_path / "best.pt")
    before = ckpt.read_bytes()
    r = runner.invoke(cli, ["export", "onnx", "--checkpoint", str(ckpt), "--skeleton", "object5", "-o", str(ckpt),
                            "--force", "--input-size", "64"])
    refused(r, "is the input")
    assert ckpt.read_bytes() == before


def test_infer_never_writes_over_its_photos(runner, tmp_path, ds):
    """`infer photos -o photos --force` overwrote a photo with its drawing."""
    ckpt = _tiny_checkpoint(tmp_path / "m.pt")
    photos = ds / "images"
    before = tree(photos)
    for out in (photos, photos / "poses"):
        r = runner.invoke(cli, ["infer", str(photos), "--checkpoint", str(ckpt), "--skeleton", "object5",
                                "-o", str(out), "--force", "--input-size", "64"])
        refused(r)
        assert "is the input" in r.output or "inside the input folder" in r.output
    assert tree(photos) == before


def test_train_never_deletes_the_checkpoint_it_starts_from(runner, tmp_path, ds):
    """`train -o RUN --init RUN/last.pt --force` deleted the old run's last.pt, then failed with
    "checkpoint not found": the trained model was gone."""
    torch = pytest.importorskip("torch")  # noqa: F841
    from posedata.convert import load_source, to_labels
    from posedata.labels import save

    sk = S.resolve("object5")
    src = load_source(ds / "annotations.json", sk)
    save(to_labels(src.data, sk, source=str(ds / "annotations.json"), source_sha256=src.sha256), tmp_path / "l.npz")
    run = tmp_path / "RUN"
    args = ["train", "--skeleton", "object5", "--labels", str(tmp_path / "l.npz"), "--images", str(ds / "images"),
            "-o", str(run), "--iterations", "1", "--batch-size", "1", "--input-size", "32", "--width", "0.25",
            "--stages", "0", "--threads", "1", "--skip-checks"]  # 3 images are too few for the flip check
    r = runner.invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert marker_of(run) == "train"
    before = tree(run)
    r = runner.invoke(cli, args + ["--init", str(run / "last.pt"), "--force"])
    refused(r, "contains the input")
    assert tree(run) == before
    # the same run replaced with --force, from a copy of its checkpoint outside it: allowed
    shutil.copyfile(run / "last.pt", tmp_path / "start.pt")
    r = runner.invoke(cli, args + ["--init", str(tmp_path / "start.pt"), "--force"])
    assert r.exit_code == 0, r.output
    assert (run / "init_report.json").exists() and marker_of(run) == "train"


# ------------------------------------------------------------- folders: the marker rule
FOLDER_COMMANDS = {
    "preview": lambda ds, ck, out: ["preview", str(ds / "annotations.json"), "--skeleton", "object5", "--images",
                                    str(ds / "images"), "-o", str(out), "-n", "1", "--input-size", "64"],
    "flipcheck": lambda ds, ck, out: ["flipcheck", str(ds / "annotations.json"), "--skeleton", "object5",
                                      "-o", str(out)],
    "export yolo": lambda ds, ck, out: ["export", "yolo", str(ds / "annotations.json"), "--skeleton", "object5",
                                        "-o", str(out)],
    "synth": lambda ds, ck, out: ["synth", "--skeleton", "object5", "-o", str(out), "--images", "1", "--size", "64x64"],
    "demo": lambda ds, ck, out: ["demo", "--quick", "-o", str(out)],
    "val": lambda ds, ck, out: ["val", "--skeleton", "object5", "--checkpoint", str(ck), "--coco",
                                str(ds / "annotations.json"), "--images", str(ds / "images"), "-o", str(out),
                                "--input-size", "64", "--overlays", "1"],
    "infer": lambda ds, ck, out: ["infer", str(ds / "images"), "--checkpoint", str(ck), "--skeleton", "object5",
                                  "-o", str(out), "--input-size", "64"],
}


@pytest.mark.parametrize("name", sorted(FOLDER_COMMANDS))
def test_force_never_replaces_a_folder_the_command_did_not_make(runner, tmp_path, ds, name):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    ck = tmp_path / "no-need-to-read.pt"  # refused before any input is read
    ck.write_bytes(b"x")
    args = FOLDER_COMMANDS[name](ds, ck, out)
    refused(runner.invoke(cli, args), "--force")
    refused(runner.invoke(cli, args + ["--force"]), "did not make")
    # another command's folder is not this one's either
    (out / "thesis.tex").unlink()
    (out / MARKER).write_text("some other command\n")
    (out / "x.png").write_bytes(b"y")
    refused(runner.invoke(cli, args + ["--force"]), "made by `posedata some other command`")
    assert (out / "x.png").read_bytes() == b"y"


@pytest.mark.parametrize("name", ["preview", "flipcheck", "export yolo", "synth", "val", "infer"])
def test_force_replaces_the_commands_own_folder_as_a_whole(runner, tmp_path, ds, name):
    ck = _tiny_checkpoint(tmp_path / "m.pt") if name in ("val", "infer") else None
    out = tmp_path / "out"
    args = FOLDER_COMMANDS[name](ds, ck, out)
    r = runner.invoke(cli, args)
    assert r.exit_code in (0, 1), r.output  # flipcheck may judge the tiny set
    assert marker_of(out) == name
    (out / "stale.png").write_bytes(b"from an earlier run")
    r = runner.invoke(cli, args + ["--force"])
    assert r.exit_code in (0, 1), r.output
    assert marker_of(out) == name and not (out / "stale.png").exists()
    # nothing left beside it: no staging folder, no lock
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_a_failed_folder_command_leaves_nothing(runner, tmp_path, ds):
    (ds / "images" / "000002.jpg").unlink()  # preview decodes every sample before its first PNG
    r = runner.invoke(cli, FOLDER_COMMANDS["preview"](ds, None, tmp_path / "new" / "out") + ["-n", "3"])
    assert r.exit_code == 2, r.output
    assert not (tmp_path / "new").exists()  # not even the parent it made for its lock


# ------------------------------------------------------------- one writer at a time
def test_a_second_writer_fails_cleanly(runner, tmp_path, ds):
    out = tmp_path / "l.npz"
    with claim_output(out, "convert"):  # another process is writing l.npz right now
        r = runner.invoke(cli, ["convert", str(ds / "annotations.json"), "--skeleton", "object5", "-o", str(out)])
        refused(r, "another posedata process is writing this output")
        assert not out.exists()
    r = runner.invoke(cli, ["convert", str(ds / "annotations.json"), "--skeleton", "object5", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # the lock file is gone


# ------------------------------------------------------------- interrupts and pipes
def _default_sigint() -> None:
    # a suite started in the background (`make test &`, nohup) inherits SIGINT ignored, and Python
    # then keeps ignoring it, as a shell's Ctrl-C should not reach background jobs: the child gets
    # the terminal's default back, as a command typed at a prompt has it
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _posedata(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg", COLUMNS="200")
    own = kw.pop("preexec_fn", None)

    def before_exec() -> None:
        _default_sigint()
        if own is not None:
            own()

    return subprocess.Popen([sys.executable, "-m", "posedata.cli", *args], env=env, preexec_fn=before_exec, **kw)


def test_a_closed_pipe_ends_quietly_not_with_exit_1(tmp_path):
    """`posedata ... | head` exited 1, the code for "the data has errors"."""
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the first line is printed
    proc = _posedata("skeleton", "show", str(ROOT / "posedata" / "templates" / "coco17.yaml"), stdout=w, stderr=subprocess.PIPE)
    os.close(w)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141, err
    assert err.decode() == ""


@pytest.mark.parametrize("sig,code,name", [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_an_interrupt_removes_the_temp_folder_and_exits_with_the_signal_code(tmp_path, sig, code, name):
    """Ctrl-C printed "Aborted!" and exited 1; SIGTERM left the hidden staging folder behind."""
    out = tmp_path / "ds"
    proc = _posedata("synth", "--skeleton", "object5", "-o", str(out), "--images", "100000", "--size", "64x64",
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import time

        deadline = time.monotonic() + 60
        while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):  # drawing into the staging folder
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = err.decode()
    assert proc.returncode == code, text
    assert f"interrupted ({name})" in text and "Aborted" not in text and "Traceback" not in text
    assert len([line for line in text.splitlines() if line.strip() and "interrupted" in line]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no dataset, no staging folder, no lock


# ------------------------------------------------------------- write errors
def _drop_dac_override() -> None:
    """In the child, before exec: drop root's right to ignore file permissions (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH) from the bounding set, which root's capabilities are rebuilt from at
    exec, so a read-only folder is read-only to it as to any user."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_read_only_output_folder_is_a_usage_error_before_any_work(tmp_path, ds):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = _posedata("convert", str(ds / "annotations.json"), "--skeleton", "object5", "-o", str(ro / "l.npz"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=_drop_dac_override if os.geteuid() == 0 else None)
        out, err = proc.communicate(timeout=120)
    finally:
        ro.chmod(0o755)
    text = out.decode() + err.decode()
    assert proc.returncode == 2, text
    assert str(ro) in text and "Permission denied" in text and "Traceback" not in text
    assert "training samples" not in text  # refused before reading, validating and converting
    assert list(ro.iterdir()) == []


def test_file_size_limit_is_a_usage_error_and_leaves_no_temp(tmp_path, ds):
    """A write that hits RLIMIT_FSIZE (EFBIG) exits 2 naming the file; the temp file is removed."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    out = tmp_path / "out"
    out.mkdir()
    proc = _posedata("convert", str(ds / "annotations.json"), "--skeleton", "object5", "-o", str(out / "l.npz"),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit)
    o, e = proc.communicate(timeout=120)
    text = o.decode() + e.decode()
    assert proc.returncode == 2, text
    assert "l.npz" in text and "File too large" in text and "Traceback" not in text
    assert list(out.iterdir()) == []


def test_split_never_replaces_its_input(runner, tmp_path, ds):
    src = ds / "annotations.json"
    shutil.copyfile(src, tmp_path / "train.json")
    before = (tmp_path / "train.json").read_bytes()
    r = runner.invoke(cli, ["split", str(tmp_path / "train.json"), "-o", str(tmp_path), "--force"])
    refused(r, "is the input")
    assert (tmp_path / "train.json").read_bytes() == before and not (tmp_path / "val.json").exists()
