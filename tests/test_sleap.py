"""SLEAP .slp import through the optional sleap-io extra (tests skip where it is not installed; `make`
installs it, so CI runs them).

Every fixture is written by sleap-io's own writer, as SLEAP saves it: a `.slp` pointing at an mp4
and an image sequence, and a `.pkg.slp` with the user-labelled frames embedded. Coordinates and
frame pixels are compared with sleap-io's own reading of the same file."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posedata import skeleton as S
from posedata.cli import cli
from posedata.errors import DataError, InputError, PosedataError
from posedata.formats import sleap as SL
from posedata.formats.base import ImportOptions
from posedata.skeleton import normalize_name

DATA = Path(__file__).parent / "data" / "import"
SKEL = DATA / "dlc_mouse.yaml"
NODES = ("Snout", "Left Ear", "Right Ear", "Tail Base")  # a tuple: sio.Skeleton turns a list into Nodes in place
W, H = 120, 90


def test_missing_extra_is_a_clear_input_error(monkeypatch, runner, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "sleap_io", None)  # import sleap_io -> ImportError
    f = tmp_path / "x.slp"
    f.write_bytes(SL.HDF5_SIGNATURE + b"\0" * 100)
    with pytest.raises(InputError, match=r"posedata\[sleap\]"):
        SL.read(f, S.load(SKEL), ImportOptions())
    res = runner.invoke(cli, ["import", "sleap", str(f), "--skeleton", str(SKEL), "-o", str(tmp_path / "o.json")])
    assert res.exit_code == 2 and "posedata[sleap]" in res.output and not (tmp_path / "o.json").exists()


@pytest.fixture
def sio():
    return pytest.importorskip("sleap_io")


def _frame(i: int) -> np.ndarray:
    """A colour frame whose pixels differ per frame and per channel (no grayscale guess)."""
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([(x * 2 + i * 20) % 256, (y * 3 + i * 7) % 256, ((x + y) * 5 + i) % 256], -1).astype(np.uint8)


def make_project(sio, tmp: Path) -> dict:
    """A SLEAP project as SLEAP saves it: cam1.mp4 (10 frames) and an image sequence imgs/f0-2.png,
    one skeleton with a symmetry, two tracks, and

    - cam1 frame 2: user instance `a` (track t1, corrected from prediction pa), pa, and pb (t2);
    - cam1 frame 5: user instance `b` (t2) with a NaN node and a node marked not visible;
    - cam1 frame 7: only prediction pc (t1);
    - imgs frame 1: user instance `c`, no track.

    Saved as labels.slp (absolute video paths) and labels.pkg.slp (embed="user": frames 2, 5 and
    the image, not frame 7, as SLEAP's "user labeled frames" package)."""
    d = tmp / "proj"
    (d / "imgs").mkdir(parents=True)
    vw = cv2.VideoWriter(str(d / "cam1.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
    for i in range(10):
        vw.write(_frame(i))
    vw.release()
    for i in range(3):
        cv2.imwrite(str(d / "imgs" / f"f{i}.png"), _frame(20 + i))
    sk = sio.Skeleton(list(NODES), edges=[("Snout", "Left Ear"), ("Snout", "Right Ear"), ("Snout", "Tail Base")],
                      symmetries=[("Left Ear", "Right Ear")], name="mouse")
    t1, t2 = sio.Track("t1"), sio.Track("t2")
    cam = sio.Video.from_filename(str(d / "cam1.mp4"))
    seq = sio.Video.from_filename([str(d / "imgs" / f"f{i}.png") for i in range(3)])

    def pred(xy, track, score):
        return sio.PredictedInstance.from_numpy(np.array(xy, float), skeleton=sk, track=track, score=score,
                                                point_scores=np.full(4, 0.8))

    pa = pred([[30, 20], [22, 14], [38, 14], [30, 60]], t1, 0.9)
    pb = pred([[90, 30], [84, 24], [98, 24], [90, 80]], t2, 0.75)
    pc = pred([[40, 25], [33, 19], [47, 19], [40, 70]], t1, 0.5)
    a = sio.Instance.from_numpy(np.array([[31.5, 20.25], [22, 14], [38, 14], [30, 61]]), skeleton=sk, track=t1)
    a.from_predicted = pa
    b = sio.Instance.from_numpy(np.array([[91, 31], [np.nan, np.nan], [99, 25], [90.5, 79]]), skeleton=sk, track=t2)
    b.points["visible"][3] = False  # SLEAP keeps a position for a hidden node; it is not a label
    c = sio.Instance.from_numpy(np.array([[50, 40], [44, 34], [56, 34], [50, 85]]), skeleton=sk)
    labels = sio.Labels([sio.LabeledFrame(video=cam, frame_idx=2, instances=[a, pa, pb]),
                         sio.LabeledFrame(video=cam, frame_idx=5, instances=[b]),
                         sio.LabeledFrame(video=cam, frame_idx=7, instances=[pc]),
                         sio.LabeledFrame(video=seq, frame_idx=1, instances=[c])])
    sio.save_slp(labels, str(d / "labels.slp"))
    sio.save_slp(labels, str(d / "labels.pkg.slp"), embed="user")
    return {"dir": d, "slp": d / "labels.slp", "pkg": d / "labels.pkg.slp"}


def make_slp(sio, tmp: Path) -> Path:
    """A small image-sequence .slp (fast to write: for the byte-corruption tests)."""
    d = tmp / "seq"
    d.mkdir()
    for n in ("f0.png", "f1.png"):
        cv2.imwrite(str(d / n), np.zeros((H, W, 3), np.uint8))
    sk = sio.Skeleton(list(NODES), edges=[("Snout", "Left Ear")], name="mouse")
    video = sio.Video.from_filename([str(d / "f0.png"), str(d / "f1.png")])
    a = sio.Instance.from_numpy(np.array([[30, 20], [22, 14], [38, 14], [30, 60]], float), skeleton=sk)
    p = sio.PredictedInstance.from_numpy(np.array([[1, 1], [2, 2], [3, 3], [4, 4]], float), skeleton=sk,
                                         point_scores=np.ones(4), score=0.9)
    c = sio.Instance.from_numpy(np.array([[50, 40], [44, 34], [56, 34], [50, 85]], float), skeleton=sk)
    labels = sio.Labels([sio.LabeledFrame(video=video, frame_idx=0, instances=[a, p]),
                         sio.LabeledFrame(video=video, frame_idx=1, instances=[c])])
    out = d / "labels.slp"
    sio.save_slp(labels, str(out))
    return out


def run_import(runner, src: Path, out: Path, *extra: str):
    return runner.invoke(cli, ["import", "sleap", str(src), "--skeleton", str(SKEL), "-o", str(out), *extra])


def sleap_io_truth(sio, slp: Path, predicted: bool) -> list[tuple[int, list[float]]]:
    """(frame index, COCO keypoints in the skeleton's order) per instance, as sleap-io reads them:
    a node is labelled when its coordinates are finite and it is marked visible."""
    node_of = {normalize_name(n): i for i, n in enumerate(NODES)}
    order = [node_of[normalize_name(k)] for k in S.load(SKEL).coco_keypoints]
    out = []
    for lf in sio.load_slp(str(slp), open_videos=False).labeled_frames:
        insts = list(lf.user_instances) + (list(lf.unused_predictions) if predicted else [])
        for inst in insts:
            xy, vis = inst.numpy(), np.asarray(inst.points["visible"], bool)
            kp = []
            for j in order:
                ok = np.isfinite(xy[j]).all() and vis[j]
                kp += [float(xy[j, 0]), float(xy[j, 1]), 2.0] if ok else [0.0, 0.0, 0.0]
            out.append((int(lf.frame_idx), kp))
    return out


def imported(out: Path) -> list[tuple[int, list[float]]]:
    d = json.loads(out.read_text())
    fidx = {im["id"]: im["frame_idx"] for im in d["images"]}
    return [(fidx[a["image_id"]], a["keypoints"]) for a in d["annotations"]]


def test_detect(sio, tmp_path) -> None:
    p = make_project(sio, tmp_path)
    assert SL.detect(p["slp"]) and SL.detect(p["pkg"])
    assert not SL.detect(SKEL) and not SL.detect(tmp_path)


def test_slp_beside_its_videos_writes_the_frames(sio, runner, tmp_path) -> None:
    """A .slp as SLEAP saves it next to its video: exit 2 before; now its frames are decoded by
    sleap-io and written beside the output, pixel for pixel what sleap-io reads."""
    p = make_project(sio, tmp_path)
    out = tmp_path / "out" / "train.json"
    res = run_import(runner, p["slp"], out)
    assert res.exit_code == 0, res.output
    frames = tmp_path / "out" / "train_frames"
    assert f"pass --images {frames}" in res.output.replace("\n", "")
    d = json.loads(out.read_text())
    assert [(im["file_name"], im["width"], im["height"], im["frame_idx"]) for im in d["images"]] == [
        ("cam1_frame_000002.png", W, H, 2), ("cam1_frame_000005.png", W, H, 5), ("f1.png", W, H, 1)]
    assert sorted(x.name for x in frames.iterdir() if not x.name.startswith(".")) == sorted(
        im["file_name"] for im in d["images"])
    cam = sio.load_video(str(p["dir"] / "cam1.mp4"), plugin="opencv")
    for idx in (2, 5):
        written = cv2.imread(str(frames / f"cam1_frame_{idx:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(written[..., ::-1], cam[idx])  # sleap-io's RGB, the same decoder
    assert (frames / "f1.png").read_bytes() == (p["dir"] / "imgs" / "f1.png").read_bytes()  # copied as it is
    assert imported(out) == sleap_io_truth(sio, p["slp"], predicted=False)
    # tracks: SLEAP's track index and name; untracked instances carry none
    assert [(a.get("track_id"), a.get("track")) for a in d["annotations"]] == [(0, "t1"), (1, "t2"), (None, None)]
    # a later command reads the written frames
    res = runner.invoke(cli, ["validate", str(out), "--skeleton", str(SKEL), "--images", str(frames)])
    assert res.exit_code == 0, res.output


def test_pkg_slp_embedded_frames(sio, runner, tmp_path) -> None:
    """A .pkg.slp on its own (no video anywhere): the embedded frames, named after the video they
    came from, equal to sleap-io's decoding of the package."""
    p = make_project(sio, tmp_path)
    alone = tmp_path / "elsewhere" / "labels.pkg.slp"
    alone.parent.mkdir()
    shutil.copyfile(p["pkg"], alone)
    shutil.rmtree(p["dir"])
    out = tmp_path / "o.json"
    res = run_import(runner, alone, out)
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert [im["file_name"] for im in d["images"]] == ["cam1_frame_000002.png", "cam1_frame_000005.png", "f1.png"]
    labels = sio.load_slp(str(alone))
    frames = tmp_path / "o_frames"
    for im, lf in zip(d["images"], [labels[0], labels[1], labels[3]], strict=True):
        written = cv2.imread(str(frames / im["file_name"]), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(written[..., ::-1], lf.image), im["file_name"]
    assert imported(out) == sleap_io_truth(sio, alone, predicted=False)
    # each image names the video it was labelled in, not the package
    assert [im["video"] for im in d["images"]] == [str(p["dir"] / "cam1.mp4")] * 2 + [str(p["dir"] / "imgs")]
    # auto recognises the package by content
    res = runner.invoke(cli, ["import", "auto", str(alone), "--skeleton", str(SKEL), "-o", str(tmp_path / "a.json")])
    assert res.exit_code == 0 and "import sleap" in res.output, res.output


def test_predicted_on_request(sio, runner, tmp_path) -> None:
    p = make_project(sio, tmp_path)
    r = SL.read(p["slp"], S.load(SKEL), ImportOptions())
    assert r.report.skipped["predicted instance (model output, not a label; --predicted imports it)"] == 3
    assert "frame_idx" in r.dataset.images[0].extra and len(r.dataset.images) == 3  # frame 7 has no label
    out = tmp_path / "o.json"
    res = run_import(runner, p["slp"], out, "--predicted")
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    # pb (unused, track t2) and pc (frame 7) come in; pa, which the user corrected into `a`, does not
    assert [(a.get("track_id"), a.get("predicted", False), a.get("score")) for a in d["annotations"]] == [
        (0, False, None), (1, True, 0.75), (1, False, None), (0, True, 0.5), (None, False, None)]
    assert imported(out) == sorted(sleap_io_truth(sio, p["slp"], predicted=True), key=lambda t: t[0] if t[0] != 1 else 99)
    assert (tmp_path / "o_frames" / "cam1_frame_000007.png").is_file()
    r = SL.read(p["slp"], S.load(SKEL), ImportOptions(predicted=True))
    assert r.report.skipped["predicted instance replaced by a user instance (the user's is imported)"] == 1


def test_frame_not_in_package_is_v050(sio, runner, tmp_path) -> None:
    """Frame 7 holds only a prediction, so the "user" package did not embed it: asking for
    predictions names that frame, exit 1 as validate's V050, nothing written."""
    p = make_project(sio, tmp_path)
    out = tmp_path / "o.json"
    res = run_import(runner, p["pkg"], out, "--predicted")
    text = res.output.replace("\n", "")
    assert res.exit_code == 1 and "V050" in text and "frame 7" in text and "not embedded" in text, res.output
    assert "--images" in text and "cam1_frame_000007.png" in text and "Traceback" not in text
    assert not out.exists() and not (tmp_path / "o_frames").exists()


def test_videos_not_found_say_where_and_point_at_images(sio, runner, tmp_path) -> None:
    """The .slp stores absolute paths. Moved alone, it names the paths it tried (the stored one and
    those beside the .slp) and --images, exit 1 (V050); moved with its videos, they are found
    beside it; with --images holding the frames, the import reads them there."""
    p = make_project(sio, tmp_path)
    first = tmp_path / "first.json"
    assert run_import(runner, p["slp"], first).exit_code == 0
    moved = tmp_path / "moved"
    shutil.copytree(p["dir"], moved)
    shutil.rmtree(p["dir"])
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copyfile(moved / "labels.slp", lone / "labels.slp")
    out = tmp_path / "o.json"
    res = run_import(runner, lone / "labels.slp", out)
    text = res.output.replace("\n", "")
    assert res.exit_code == 1 and "V050" in text and "Traceback" not in text, res.output
    assert str(p["dir"] / "cam1.mp4") in text and f"under {lone} for cam1.mp4" in text  # where it looked
    assert "cam1_frame_000002.png" in text and "--images" in text
    assert not out.exists() and not (tmp_path / "o_frames").exists()
    # the project folder moved as a whole: the videos are found beside the .slp
    res = run_import(runner, moved / "labels.slp", out)
    assert res.exit_code == 0, res.output
    assert imported(out) == imported(first)
    # the frames a first import wrote, given as --images: read there, nothing written
    out2 = tmp_path / "o2.json"
    res = run_import(runner, lone / "labels.slp", out2, "--images", str(tmp_path / "first_frames"))
    assert res.exit_code == 0, res.output
    assert imported(out2) == imported(first) and not (tmp_path / "o2_frames").exists()


def test_frames_folder_follows_the_output_rules(sio, runner, tmp_path) -> None:
    p = make_project(sio, tmp_path)
    out = tmp_path / "o.json"
    mine = tmp_path / "o_frames"
    mine.mkdir()
    (mine / "keep.txt").write_text("user's")
    res = run_import(runner, p["slp"], out)
    assert res.exit_code == 2 and "o_frames" in res.output and not out.exists()
    assert [x.name for x in mine.iterdir()] == ["keep.txt"]  # a folder posedata did not make is never replaced
    shutil.rmtree(mine)
    assert run_import(runner, p["slp"], out).exit_code == 0
    assert run_import(runner, p["slp"], out).exit_code == 2  # exists: --force to replace
    res = run_import(runner, p["slp"], out, "--force", "--predicted")
    assert res.exit_code == 0, res.output
    assert (mine / "cam1_frame_000007.png").is_file()
    # --json: one document naming the frames folder
    res = run_import(runner, p["slp"], out, "--force", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["frames"] == str(mine)


def test_two_videos_with_one_name(sio, runner, tmp_path) -> None:
    """Two sessions' cam.mp4: frame 0 of each gets its own image, the second prefixed by its video."""
    sk = sio.Skeleton(list(NODES), name="mouse")
    lfs = []
    for k, sess in enumerate(("s1", "s2")):
        (tmp_path / sess).mkdir()
        vw = cv2.VideoWriter(str(tmp_path / sess / "cam.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
        for i in range(3):
            vw.write(_frame(i + 10 * k))
        vw.release()
        inst = sio.Instance.from_numpy(np.array([[30, 20], [22, 14], [38, 14], [30, 60]]) + k, skeleton=sk)
        lfs.append(sio.LabeledFrame(video=sio.Video.from_filename(str(tmp_path / sess / "cam.mp4")), frame_idx=0,
                                    instances=[inst]))
    f = tmp_path / "two.slp"
    sio.save_slp(sio.Labels(lfs), str(f))
    out = tmp_path / "o.json"
    assert run_import(runner, f, out).exit_code == 0
    d = json.loads(out.read_text())
    assert [im["file_name"] for im in d["images"]] == ["cam_frame_000000.png", "video1_cam_frame_000000.png"]
    for im, sess in zip(d["images"], ("s1", "s2"), strict=True):
        written = cv2.imread(str(tmp_path / "o_frames" / im["file_name"]), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(written[..., ::-1], sio.load_video(str(tmp_path / sess / "cam.mp4"), plugin="opencv")[0])


def test_convert_points_at_import(sio, runner, tmp_path) -> None:
    p = make_project(sio, tmp_path)
    out = tmp_path / "l.posedata"
    res = runner.invoke(cli, ["convert", str(p["slp"]), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 2 and "posedata import sleap" in res.output.replace("\n", "") and not out.exists()


def test_skeleton_init_from_sleap(sio, runner, tmp_path) -> None:
    p = make_project(sio, tmp_path)
    out = tmp_path / "s.yaml"
    res = runner.invoke(cli, ["skeleton", "init", "--from-sleap", str(p["pkg"]), "-o", str(out)])
    assert res.exit_code == 0, res.output
    sk = S.load(out)
    assert sk.keypoints == NODES and sk.name == "mouse"
    assert sorted(tuple(sorted((sk.keypoints[a], sk.keypoints[b]))) for a, b in sk.limbs) == [
        ("Left Ear", "Snout"), ("Right Ear", "Snout"), ("Snout", "Tail Base")]
    assert [sk.keypoints[i] for i in sk.flip] == ["Snout", "Right Ear", "Left Ear", "Tail Base"]  # the symmetry
    res = runner.invoke(cli, ["skeleton", "check", str(out)])
    assert res.exit_code == 0, res.output
    # the new skeleton imports its own file
    res = runner.invoke(cli, ["import", "sleap", str(p["pkg"]), "--skeleton", str(out), "-o", str(tmp_path / "o.json")])
    assert res.exit_code == 0, res.output
    # two skeletons: --category picks one; none named is a located error
    two = tmp_path / "two.slp"
    sk2 = sio.Skeleton(["head", "left_wing", "right_wing"], name="fly")
    labels = sio.load_slp(str(p["slp"]), open_videos=False)
    v = labels.videos[0]
    labels.append(sio.LabeledFrame(video=v, frame_idx=9, instances=[
        sio.Instance.from_numpy(np.array([[5., 5], [4, 6], [6, 6]]), skeleton=sk2)]))
    sio.save_slp(labels, str(two))
    res = runner.invoke(cli, ["skeleton", "init", "--from-sleap", str(two), "-o", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and "--category" in res.output and not (tmp_path / "x.yaml").exists()
    res = runner.invoke(cli, ["skeleton", "init", "--from-sleap", str(two), "--category", "fly",
                              "-o", str(tmp_path / "fly.yaml")])
    assert res.exit_code == 0, res.output
    assert "guessed" in res.output  # no symmetries, no edges: flip pairs from the names, noted
    assert S.load_with_findings(tmp_path / "fly.yaml")[0] is not None


def test_media_video_frames_by_sleap_io_naming(sio, runner, tmp_path) -> None:
    sk = sio.Skeleton(list(NODES), name="mouse")
    v = sio.Video(filename="/lab/videos/cam1.mp4", open_backend=False, backend_metadata={"shape": [10, H, W, 3]})
    inst = sio.Instance.from_numpy(np.array([[30, 20], [22, 14], [38, 14], [30, 60]], float), skeleton=sk)
    f = tmp_path / "media.slp"
    sio.save_slp(sio.Labels([sio.LabeledFrame(video=v, frame_idx=3, instances=[inst])]), str(f))
    out = tmp_path / "o.json"
    res = run_import(runner, f, out)
    assert res.exit_code == 1 and "cam1_frame_000003.png" in res.output and not out.exists()
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "cam1_frame_000003.png"), np.zeros((H, W, 3), np.uint8))
    ds = SL.read(f, S.load(SKEL), ImportOptions(images=frames)).dataset
    assert [(im.file_name, im.width, im.height) for im in ds.images] == [("cam1_frame_000003.png", W, H)]


def test_unknown_nodes_listed(sio, tmp_path) -> None:
    f = make_slp(sio, tmp_path)
    with pytest.raises(InputError) as e:
        SL.read(f, S.resolve("object5"), ImportOptions())
    assert "Snout" in str(e.value) and "center" in str(e.value)


def test_library_read_plans_frames_without_writing(sio, tmp_path) -> None:
    f = make_slp(sio, tmp_path)
    before = sorted(tmp_path.rglob("*"))
    r = SL.read(f, S.load(SKEL), ImportOptions())
    assert sorted(tmp_path.rglob("*")) == before and len(r.frames) == 2
    assert [a.keypoints.ravel().tolist() for a in r.dataset.annotations][0] == [30, 20, 2, 22, 14, 2, 38, 14, 2, 30, 60, 2]
    with pytest.raises(DataError):  # a frame image gone: the data's error
        (f.parent / "f1.png").unlink()
        SL.read(f, S.load(SKEL), ImportOptions())


@pytest.mark.parametrize("cut", [0, 8, 500, -200])
def test_truncated_file_exit_2(sio, runner, tmp_path, cut) -> None:
    f = make_slp(sio, tmp_path)
    data = f.read_bytes()
    f.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    out = tmp_path / "o.json"
    res = run_import(runner, f, out)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and not out.exists()


def _with_table(slp: Path, name: str, **dataset) -> None:
    """The .slp with its table `name` replaced by an unwritten one of the given declaration (the
    file stays small: HDF5 allocates no space for data never written)."""
    import h5py

    with h5py.File(slp, "r+") as f:
        del f[name]
        f.create_dataset(name, **dataset)


def test_a_table_declared_larger_than_the_file_is_refused_unread(sio, runner, tmp_path) -> None:
    """The case: a flipped byte in a 14 KB .slp declared videos_json as 570 million entries and
    reading it took 23 GB. A table stored in one block cannot be larger than the file."""
    f = make_slp(sio, tmp_path)
    _with_table(f, "suggestions_json", shape=(50_000_000,), dtype="u1")  # contiguous, 50 MB declared
    assert f.stat().st_size < 1 << 20
    with pytest.raises(InputError) as e:
        SL.read(f, S.load(SKEL), ImportOptions())
    assert e.value.where == "suggestions_json" and "declares 50,000,000 bytes" in e.value.message
    out = tmp_path / "o.json"
    res = run_import(runner, f, out)
    assert res.exit_code == 2 and "suggestions_json" in res.output and not out.exists()


def test_chunked_tables_get_a_budget_of_the_files_size(sio, tmp_path) -> None:
    import h5py

    f = make_slp(sio, tmp_path)
    over = SL.CHUNKED_MIN // 16 + 1  # variable-length entries: 16 bytes each
    _with_table(f, "suggestions_json", shape=(over,), chunks=(1024,), dtype=h5py.string_dtype())
    with pytest.raises(InputError) as e:
        SL.read(f, S.load(SKEL), ImportOptions())
    assert e.value.where == "suggestions_json" and "chunked tables declare" in e.value.message
    # an empty chunked table, as SLEAP writes them, is no damage
    _with_table(f, "suggestions_json", shape=(0,), maxshape=(None,), chunks=(1024,), dtype=h5py.string_dtype())
    assert SL.read(f, S.load(SKEL), ImportOptions()).dataset.annotations


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_bytes_raise_only_posedata_errors(sio, tmp_path_factory, flips) -> None:
    base = tmp_path_factory.mktemp("c")
    f = make_slp(sio, base)
    data = bytearray(f.read_bytes())
    for pos, val in flips:
        data[pos % len(data)] = val
    f.write_bytes(bytes(data))
    try:  # some flips make HDF5 loop forever (hang_heap.slp): such a file is refused after 10 s, not 60
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(SL, "TEST_READ_SECONDS", 10.0)
            r = SL.read(f, S.load(SKEL), ImportOptions())
    except PosedataError:
        return
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for a in r.dataset.annotations:
        assert a.keypoints.shape == (4, 3) and np.isfinite(a.keypoints).all()


@pytest.mark.parametrize("name", ["crash_segv.slp", "crash_abort.slp"])
def test_a_file_that_crashes_hdf5_is_a_located_refusal(sio, tmp_path, name) -> None:
    """Two 14 KB .slp files with a few bytes flipped (found by the corruption test's flips): reading
    them killed `posedata import` (exit 139: SIGSEGV inside HDF5; exit 134: glibc's abort on a
    corrupted heap). Run as a user runs it, in a fresh process: the file is named as damaged, exit 2,
    nothing written. (The second file's signal, SIGABRT or SIGSEGV, depends on the heap's state.)"""
    src = tmp_path / name
    shutil.copyfile(DATA / name, src)
    before = src.read_bytes()
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, "-m", "posedata.cli", "import", "sleap", str(src), "--skeleton", str(SKEL),
                        "-o", str(out)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent)))
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    text = " ".join((r.stdout + r.stderr).split())
    assert "Traceback" not in text and "crashed reading this .slp file (SIG" in text and str(src) in text
    assert not out.exists() and src.read_bytes() == before


def test_a_file_that_makes_hdf5_loop_is_refused_in_its_time_limit(sio, tmp_path, monkeypatch) -> None:
    """hang_heap.slp (14 KB, bytes flipped by the corruption test's flips) made HDF5 loop in
    H5HG__cache_heap_deserialize for 15 minutes at 100% CPU before it was killed: `posedata import`
    never ended. Its test read now has a time limit (a minute at least; 2 s here): the file is
    named as damaged, exit 2, nothing written, the file untouched, and the looping child is gone."""
    src = tmp_path / "hang_heap.slp"
    shutil.copyfile(DATA / "hang_heap.slp", src)
    before = src.read_bytes()
    monkeypatch.setattr(SL, "TEST_READ_SECONDS", 2.0)
    out = tmp_path / "out.json"
    r = CliRunner().invoke(cli, ["import", "sleap", str(src), "--skeleton", str(SKEL), "-o", str(out)])
    text = " ".join(r.output.split())
    assert r.exit_code == 2, (r.exit_code, r.output[-2000:])
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert "did not finish reading this .slp file in 2 s" in text and "damaged" in text and src.name in text
    assert not out.exists() and src.read_bytes() == before
    left = subprocess.run(["pgrep", "-f", f"_test_read.*{src}"], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_the_test_reads_time_limit_grows_with_the_file(tmp_path) -> None:
    """A minute for any file, 2 s more per MB: ten times the 0.2 s per MB a sound file takes."""
    small, big = tmp_path / "a.slp", tmp_path / "b.slp"
    small.write_bytes(b"x" * 1000)
    with open(big, "wb") as f:
        f.truncate(500_000_000)
    assert SL._read_time_limit(small) == pytest.approx(60.002)
    assert SL._read_time_limit(big) == pytest.approx(1060.0)


def test_a_crash_in_the_test_read_is_reported_with_its_signal(sio, tmp_path, monkeypatch) -> None:
    """Whatever kills the test read (here a child that sends itself SIGSEGV), the caller gets an
    InputError naming the signal and the file, and this process lives on."""
    f = make_slp(sio, tmp_path)
    monkeypatch.setattr(SL, "_test_read_command", lambda path: [
        sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    with pytest.raises(InputError) as e:
        SL.read(f, S.load(SKEL), ImportOptions())
    assert "SIGSEGV" in e.value.message and e.value.file == str(f)
