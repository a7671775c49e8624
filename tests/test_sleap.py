"""SLEAP .slp import through the optional sleap-io extra (tests skip where it is not installed)."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posedata import skeleton as S
from posedata.cli import cli
from posedata.errors import InputError, PosedataError
from posedata.formats import sleap as SL
from posedata.formats.base import ImportOptions

DATA = Path(__file__).parent / "data" / "import"
SKEL = DATA / "dlc_mouse.yaml"
NODES = ["Snout", "Left Ear", "Right Ear", "Tail Base"]


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


def make_slp(sio, tmp: Path) -> Path:
    """Two frames of an image sequence: user instances (one node marked not visible, one NaN) and a
    predicted instance, which is not a label."""
    d = tmp / "proj"
    d.mkdir()
    for n in ("f0.png", "f1.png"):
        cv2.imwrite(str(d / n), np.zeros((90, 120, 3), np.uint8))
    sk = sio.Skeleton(NODES, edges=[("Snout", "Left Ear")], name="mouse")
    video = sio.Video.from_filename([str(d / "f0.png"), str(d / "f1.png")])
    a = sio.Instance.from_numpy(np.array([[30, 20], [22, 14], [38, 14], [30, 60]], float), skeleton=sk)
    b = sio.Instance.from_numpy(np.array([[90, 30], [np.nan, np.nan], [98, 24], [90, 80]], float), skeleton=sk)
    b.points["visible"][3] = False  # SLEAP keeps a position for a hidden node; it is not a label
    p = sio.PredictedInstance.from_numpy(np.array([[1, 1], [2, 2], [3, 3], [4, 4]], float), skeleton=sk,
                                         point_scores=np.ones(4), score=0.9)
    c = sio.Instance.from_numpy(np.array([[50, 40], [44, 34], [56, 34], [50, 85]], float), skeleton=sk)
    labels = sio.Labels([sio.LabeledFrame(video=video, frame_idx=0, instances=[a, b, p]),
                         sio.LabeledFrame(video=video, frame_idx=1, instances=[c])])
    out = d / "labels.slp"
    sio.save_slp(labels, str(out))
    return out


def test_detect(sio, tmp_path) -> None:
    f = make_slp(sio, tmp_path)
    assert SL.detect(f)
    assert not SL.detect(SKEL) and not SL.detect(tmp_path)


def test_golden(sio, tmp_path) -> None:
    f = make_slp(sio, tmp_path)
    r = SL.read(f, S.load(SKEL), ImportOptions())
    ds = r.dataset
    assert [(im.file_name, im.width, im.height, im.extra["frame_idx"]) for im in ds.images] == [
        ("f0.png", 120, 90, 0), ("f1.png", 120, 90, 1)]
    k = [a.keypoints.ravel().tolist() for a in ds.annotations]
    assert k[0] == [30, 20, 2, 22, 14, 2, 38, 14, 2, 30, 60, 2]
    assert k[1] == [90, 30, 2, 0, 0, 0, 98, 24, 2, 0, 0, 0]  # NaN and hidden nodes are not labelled
    assert [a.image_id for a in ds.annotations] == [1, 1, 2]
    assert r.report.skipped["predicted instance (model output, not a label)"] == 1
    assert sum(v for k, v in r.report.repairs.items() if k.startswith("node marked not visible")) == 1


def test_cli_auto(sio, runner, tmp_path) -> None:
    f = make_slp(sio, tmp_path)
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "auto", str(f), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "import sleap" in res.output and len(json.loads(out.read_text())["annotations"]) == 3


def test_media_video_frames_by_sleap_io_naming(sio, runner, tmp_path) -> None:
    sk = sio.Skeleton(NODES, name="mouse")
    v = sio.Video(filename="/lab/videos/cam1.mp4", open_backend=False, backend_metadata={"shape": [10, 90, 120, 3]})
    inst = sio.Instance.from_numpy(np.array([[30, 20], [22, 14], [38, 14], [30, 60]], float), skeleton=sk)
    f = tmp_path / "media.slp"
    sio.save_slp(sio.Labels([sio.LabeledFrame(video=v, frame_idx=3, instances=[inst])]), str(f))
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "sleap", str(f), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 2 and "cam1_frame_000003.png" in res.output and not out.exists()
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "cam1_frame_000003.png"), np.zeros((90, 120, 3), np.uint8))
    ds = SL.read(f, S.load(SKEL), ImportOptions(images=frames)).dataset
    assert [(im.file_name, im.width, im.height) for im in ds.images] == [("cam1_frame_000003.png", 120, 90)]


def test_unknown_nodes_listed(sio, tmp_path) -> None:
    f = make_slp(sio, tmp_path)
    other = S.resolve("object5")
    with pytest.raises(InputError) as e:
        SL.read(f, other, ImportOptions())
    assert "Snout" in str(e.value) and "center" in str(e.value)


@pytest.mark.parametrize("cut", [0, 8, 500, -200])
def test_truncated_file_exit_2(sio, runner, tmp_path, cut) -> None:
    f = make_slp(sio, tmp_path)
    data = f.read_bytes()
    f.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "sleap", str(f), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and not out.exists()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_bytes_raise_only_posedata_errors(sio, tmp_path_factory, flips) -> None:
    base = tmp_path_factory.mktemp("c")
    f = make_slp(sio, base)
    data = bytearray(f.read_bytes())
    for pos, val in flips:
        data[pos % len(data)] = val
    f.write_bytes(bytes(data))
    try:
        r = SL.read(f, S.load(SKEL), ImportOptions())
    except PosedataError:
        return
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for a in r.dataset.annotations:
        assert a.keypoints.shape == (4, 3) and np.isfinite(a.keypoints).all()
