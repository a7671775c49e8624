"""DeepLabCut CollectedData CSV import, config.yaml skeleton seed, and the CLI around them."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posedata import skeleton as S
from posedata.cli import cli
from posedata.errors import InputError, PosedataError
from posedata.formats import deeplabcut as D
from posedata.formats.base import ImportOptions

DATA = Path(__file__).parent / "data" / "import"
SA = DATA / "dlc_project"
SA_CSV = SA / "labeled-data" / "mouse1" / "CollectedData_Alice.csv"
MA = DATA / "dlc_ma_project"
MA_CSV = MA / "labeled-data" / "session1" / "CollectedData_Bob.csv"
SKEL = DATA / "dlc_mouse.yaml"


@pytest.fixture
def sk() -> S.Skeleton:
    return S.load(SKEL)


def kps(ds, i: int) -> list[float]:
    return ds.annotations[i].keypoints.ravel().tolist()


def test_detect() -> None:
    assert D.detect(SA_CSV) and D.detect(MA_CSV) and D.detect(SA)
    assert not D.detect(SA / "config.yaml")
    assert not D.detect(DATA / "labelme_project" / "cage_a.json")


def test_single_animal_golden(sk) -> None:
    r = D.read(SA_CSV, sk, ImportOptions())
    ds = r.dataset
    # row 3 labels nothing: the image is a negative, dropped without --keep-empty
    assert [im.file_name for im in ds.images] == ["labeled-data/mouse1/img000.png", "labeled-data/mouse1/img001.png"]
    assert [(im.width, im.height) for im in ds.images] == [(120, 90), (120, 90)]  # read from the PNG headers
    # bodyparts 'Left-Ear'/'Right Ear' matched to left_ear/right_ear by name; NaN = not labelled
    assert kps(ds, 0) == [50.5, 20.25, 2, 40, 15, 2, 60, 15, 2, 50, 80, 2]
    assert kps(ds, 1) == [51, 21, 2, 0, 0, 0, 61, 16, 2, 49, 79, 2]
    assert ds.categories[0].keypoints == ["snout", "left_ear", "right_ear", "tail_base"]
    rep = r.report
    assert rep.images_read == 3 and rep.instances_read == 2 and rep.instances_written == 2
    assert any("bbox computed from labelled keypoints" in k for k in rep.repairs)
    assert sum(rep.skipped.values()) == 1
    b = ds.annotations[0].bbox
    assert b[0] < 40 and b[1] < 15 and b[0] + b[2] > 60 and b[1] + b[3] > 80  # the box holds every keypoint


def test_keep_empty_and_windows_path(sk) -> None:
    ds = D.read(SA_CSV, sk, ImportOptions(keep_empty=True)).dataset
    # row 2 was written with backslashes (a Windows-made file) and still resolves
    assert [im.file_name for im in ds.images][1] == "labeled-data/mouse1/img001.png"
    assert len(ds.images) == 3 and len(ds.annotations) == 2


def test_multi_animal_three_column_index(sk) -> None:
    r = D.read(MA, sk, ImportOptions())  # a project folder: its CollectedData CSVs are found
    ds = r.dataset
    assert [im.file_name for im in ds.images] == ["labeled-data/session1/img000.png", "labeled-data/session1/img001.png"]
    assert [(a.image_id, a.extra["individual"]) for a in ds.annotations] == [(1, "mouse1"), (1, "mouse2"), (2, "mouse1")]
    assert kps(ds, 1) == [110, 30, 2, 102, 24, 2, 118, 24, 2, 110, 80, 2]
    assert kps(ds, 2) == [31, 21, 2, 0, 0, 0, 39, 15, 2, 31, 61, 2]
    skipped = " ".join(r.report.skipped)
    assert "unique bodypart" in skipped and "absent" in skipped  # feeder landmark, mouse2 missing in frame 2


def test_images_option_resolves_by_path_tail(sk, tmp_path) -> None:
    imgs = tmp_path / "frames"
    imgs.mkdir()
    for p in (SA / "labeled-data" / "mouse1").glob("*.png"):
        shutil.copy(p, imgs / p.name)
    ds = D.read(SA_CSV, sk, ImportOptions(images=imgs)).dataset
    assert [im.file_name for im in ds.images] == ["img000.png", "img001.png"]
    assert ds.images[0].width == 120


def test_unknown_bodypart_is_an_error_listing_it(tmp_path) -> None:
    other = S.from_dict({"name": "m", "keypoints": ["snout", "left_ear", "right_ear", "tail_tip"],
                         "limbs": [["snout", "left_ear"], ["snout", "right_ear"], ["snout", "tail_tip"]],
                         "root": "snout", "flip": [["left_ear", "right_ear"]], "sigmas": [0.05] * 4})
    with pytest.raises(InputError) as e:
        D.read(SA_CSV, other, ImportOptions())
    assert "tail_base" in str(e.value) and "tail_tip" in str(e.value) and "line 2" in str(e.value)


def copy_project(tmp_path: Path) -> Path:
    dst = tmp_path / "proj"
    shutil.copytree(SA, dst)
    return dst / "labeled-data" / "mouse1" / "CollectedData_Alice.csv"


@pytest.mark.parametrize("mutate, where", [
    (lambda t: t[: t.index("labeled-data\\mouse1") + 40], "line 5"),  # truncated mid-row
    (lambda t: t.replace("51.0,21.0", "51.0,abc"), "line 5 column 3"),
    (lambda t: "\n".join(t.splitlines()[:2]), "line 1-4"),  # header cut before 'coords'
    (lambda t: t.replace("coords,x,y", "coords,x,z"), "line 3 column 3"),
    (lambda t: t.replace("scorer", "Scorer", 1), "line 1"),
])
def test_broken_csv_located_exit_2_nothing_written(runner, tmp_path, mutate, where) -> None:
    csv = copy_project(tmp_path)
    csv.write_text(mutate(csv.read_text()))
    out = tmp_path / "out.json"
    res = runner.invoke(cli, ["import", "deeplabcut", str(csv), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert where in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_missing_image_exit_1_as_v050(runner, tmp_path) -> None:
    """A missing image is the data's error, as validate's V050 and every other importer (exit 1,
    not 2), whether some or all of the images are gone."""
    csv = copy_project(tmp_path)
    (csv.parent / "img001.png").unlink()
    out = tmp_path / "out.json"
    res = runner.invoke(cli, ["import", "deeplabcut", str(csv), "--skeleton", str(SKEL), "-o", str(out)])
    text = res.output.replace("\n", "")
    assert res.exit_code == 1 and "V050" in text and "img001.png" in text and "--images" in text, res.output
    assert not out.exists()
    for png in csv.parent.glob("*.png"):
        png.unlink()
    res = runner.invoke(cli, ["import", "deeplabcut", str(csv), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 1 and "V050" in res.output and "--images" in res.output and not out.exists()


SA_H5 = SA / "labeled-data" / "mouse1" / "CollectedData_Alice.h5"  # pandas to_hdf format="table"
MA_H5 = MA / "labeled-data" / "session1" / "CollectedData_Bob.h5"  # pandas to_hdf default ("fixed")


def _same(a, b) -> None:
    assert [im.file_name for im in a.images] == [im.file_name for im in b.images]
    assert [x.extra for x in a.annotations] == [x.extra for x in b.annotations]
    for x, y in zip(a.annotations, b.annotations, strict=True):
        np.testing.assert_array_equal(x.keypoints, y.keypoints)


def test_h5_reads_like_its_csv_twin_both_pandas_layouts(sk) -> None:
    """The .h5 DLC writes next to each CSV (written here by pandas' to_hdf in both layouts) used to
    be refused; it reads without unpickling anything but the column labels' literals."""
    pytest.importorskip("h5py")
    assert D.detect(SA_H5) and D.detect(MA_H5)
    _same(D.read(SA_H5, sk, ImportOptions()).dataset, D.read(SA_CSV, sk, ImportOptions()).dataset)
    r = D.read(MA_H5, sk, ImportOptions())
    _same(r.dataset, D.read(MA_CSV, sk, ImportOptions()).dataset)
    assert r.report.skipped["maDLC unique bodypart (individual 'single') labels: the skeleton does not name them"] == 1
    assert "labeled-data/session1/img000.png" in [im.file_name for im in r.dataset.images]


def test_h5_whose_pickle_names_a_global_is_refused(runner, tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    bad = tmp_path / "CollectedData_Eve.h5"
    shutil.copy(SA_H5, bad)
    marker = tmp_path / "ran"
    with h5py.File(bad, "r+") as f:  # a pickle that would run os.system when unpickled
        f["df_with_missing"].attrs["non_index_axes"] = np.bytes_(f"cos\nsystem\n(S'touch {marker}'\ntR.".encode())
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "deeplabcut", str(bad), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 2, res.output
    assert "refused" in res.output and "os.system" in res.output and "non_index_axes" in res.output
    assert not marker.exists() and not out.exists()


def test_h5_broken_or_foreign_exit_2(runner, tmp_path) -> None:
    h5py = pytest.importorskip("h5py")
    h5 = tmp_path / "CollectedData_Alice.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    res = runner.invoke(cli, ["import", "deeplabcut", str(h5), "--skeleton", str(SKEL), "-o", str(tmp_path / "o.json")])
    assert res.exit_code == 2 and "not a readable HDF5 file" in res.output
    with h5py.File(h5, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    res = runner.invoke(cli, ["import", "auto", str(h5), "--skeleton", str(SKEL), "-o", str(tmp_path / "o.json")])
    assert res.exit_code == 2 and "DataFrame" in res.output and "Traceback" not in res.output


def test_import_auto_recognises_h5(runner, tmp_path) -> None:
    pytest.importorskip("h5py")
    proj = tmp_path / "proj"
    shutil.copytree(SA, proj)
    h5 = proj / "labeled-data" / "mouse1" / "CollectedData_Alice.h5"
    h5.with_suffix(".csv").unlink()  # a folder with only the .h5 is read from it
    out = tmp_path / "o.json"
    for src in (h5, proj):
        res = runner.invoke(cli, ["import", "auto", str(src), "--skeleton", str(SKEL), "-o", str(out), "--force"])
        assert res.exit_code == 0, res.output
        assert "deeplabcut" in res.output and len(json.loads(out.read_text())["annotations"]) == 2


def test_unique_bodyparts_as_their_own_instance_when_the_skeleton_names_them(tmp_path) -> None:
    """maDLC's `single` individual (uniquebodyparts) was only ever skipped."""
    base = S.load(SKEL)
    both = S.from_dict({"name": "mice_and_feeder", "keypoints": [*base.keypoints, "feeder"],
                        "limbs": [*[list(base.keypoints[i] for i in lb) for lb in base.limbs], ["snout", "feeder"]],
                        "root": base.keypoints[base.root], "sigmas": [0.05] * (len(base.keypoints) + 1),
                        "flip": [list(p) for p in base.flip_pairs()]})
    r = D.read(MA_CSV, both, ImportOptions())
    anns = r.dataset.annotations
    assert [a.extra["individual"] for a in anns] == ["mouse1", "mouse2", "single", "mouse1"]
    feeder = both.coco_keypoints.index("feeder")
    assert anns[2].keypoints[feeder].tolist() == [150, 90, 2] and anns[2].num_keypoints == 1
    assert anns[0].keypoints[feeder, 2] == 0
    only = S.from_dict({"name": "feeder", "keypoints": ["feeder"], "limbs": [], "root": "feeder", "sigmas": [0.05]})
    r = D.read(MA_CSV, only, ImportOptions())
    assert [a.extra["individual"] for a in r.dataset.annotations] == ["single"]
    assert r.report.skipped["animal bodypart labels (the skeleton names only the unique bodyparts)"] == 11  # 8 + 3 points


def test_cli_import_auto(runner, tmp_path) -> None:
    out = tmp_path / "out.json"
    res = runner.invoke(cli, ["import", "auto", str(MA_CSV), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "import deeplabcut" in res.output
    data = json.loads(out.read_text())
    assert len(data["annotations"]) == 3 and data["images"][0]["width"] == 160
    res = runner.invoke(cli, ["import", "deeplabcut", str(MA_CSV), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 2 and "--force" in res.output  # existing output kept


def test_skeleton_init_from_dlc(runner, tmp_path) -> None:
    out = tmp_path / "s.yaml"
    res = runner.invoke(cli, ["skeleton", "init", "--from-dlc", str(MA / "config.yaml"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    sk = S.load(out)  # a valid skeleton: the maDLC animal, without the unique 'feeder'
    assert sk.keypoints == ("snout", "Left-Ear", "Right Ear", "tail_base") and sk.num_limbs == 3
    assert sk.flip_pairs() == [("Left-Ear", "Right Ear")]
    assert "feeder" in res.output
    # the seeded skeleton imports the project it came from
    ds = D.read(MA_CSV, sk, ImportOptions()).dataset
    assert len(ds.annotations) == 3
    d, notes = D.skeleton_from_config(SA / "config.yaml")
    assert d["keypoints"] == ["snout", "Left-Ear", "Right Ear", "tail_base"] and len(d["limbs"]) == 3
    assert any("nose_tip" in n for n in notes)  # an edge to an unknown bodypart is dropped and said


def test_skeleton_init_from_dlc_drafts_the_limbs_the_config_leaves_out(runner, tmp_path) -> None:
    """DLC's `skeleton` is optional and usually empty: init wrote 0 limbs, so skeleton check failed
    (S020) until the user typed every limb. Now they are drafted from the labelled frames."""
    project = tmp_path / "mouse"
    shutil.copytree(SA, project)
    cfg = (project / "config.yaml").read_text()
    (project / "config.yaml").write_text(cfg[:cfg.index("skeleton:")] + "skeleton: []\n"
                                        + cfg[cfg.index("numframes2pick"):])
    (project / "labeled-data" / "mouse1" / "CollectedData_Alice.h5").unlink()
    broken = project / "labeled-data" / "mouse2"
    broken.mkdir()
    (broken / "CollectedData_Alice.csv").write_text("scorer,Alice\nbodyparts,snout\ncoords,x\nimg.png,1,2\n")
    out = tmp_path / "s.yaml"
    res = runner.invoke(cli, ["skeleton", "init", "--from-dlc", str(project / "config.yaml"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    sk = S.load(out)
    assert {frozenset(sk.limb_names(i)) for i in range(sk.num_limbs)} == {
        frozenset(p) for p in (("snout", "Left-Ear"), ("snout", "Right Ear"), ("snout", "tail_base"))}
    assert not [f for f in S.check(sk) if f.severity == "error"]
    text = " ".join(res.output.split())
    assert "gives no skeleton edges; added 3 limb(s)" in text and "add limbs that connect" not in text
    assert "mouse2/CollectedData_Alice.csv: line 4 was not read for the limbs" in text, text
    # a project without labelled frames keeps the old advice
    shutil.rmtree(project / "labeled-data")
    res = runner.invoke(cli, ["skeleton", "init", "--from-dlc", str(project / "config.yaml"), "-o", str(out), "--force"])
    assert res.exit_code == 0 and "add limbs that connect every keypoint" in " ".join(res.output.split())
    assert "limbs: []" in out.read_text()


def test_skeleton_init_bad_config(runner, tmp_path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("Task: x\nbodyparts: [a, b\n")
    res = runner.invoke(cli, ["skeleton", "init", "--from-dlc", str(bad), "-o", str(tmp_path / "s.yaml")])
    assert res.exit_code == 2 and "invalid YAML" in res.output and not (tmp_path / "s.yaml").exists()


def test_agrees_with_sleap_io(sk) -> None:
    sio = pytest.importorskip("sleap_io")
    ours = D.read(MA_CSV, sk, ImportOptions()).dataset
    theirs = sio.load_dlc(str(MA_CSV), config=False)
    names = [n.replace("-", " ").lower().replace(" ", "_") for n in theirs.skeletons[0].node_names]
    order = [names.index(k) for k in sk.coco_keypoints]
    got = []
    for lf in sorted(theirs.labeled_frames, key=lambda f: f.frame_idx):
        for inst in lf.instances:
            xy = inst.numpy()[order]
            if np.isfinite(xy).any():
                got.append(np.nan_to_num(xy, nan=0.0))
    mine = [a.keypoints[:, :2] for a in ours.annotations]
    assert len(got) == len(mine) == 3
    for a, b in zip(mine, got, strict=True):
        np.testing.assert_allclose(a, b)


# ----------------------------------------------------------------- property
_MUT = st.lists(st.tuples(st.sampled_from(["del", "ins", "dup", "cut", "swap"]), st.integers(0, 10_000),
                          st.text(alphabet=",\n\"\\ab.-0123456789nNaN", max_size=6)), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=_MUT)
def test_mutated_csv_raises_only_posedata_errors(tmp_path_factory, muts) -> None:
    csv = copy_project(tmp_path_factory.mktemp("m"))
    text = csv.read_text()
    for op, pos, s in muts:
        pos = pos % (len(text) + 1)
        if op == "del":
            text = text[:pos] + text[pos + len(s) + 1:]
        elif op == "ins":
            text = text[:pos] + s + text[pos:]
        elif op == "dup":
            lines = text.splitlines()
            lines.insert(pos % (len(lines) + 1), lines[pos % len(lines)] if lines else s)
            text = "\n".join(lines)
        elif op == "cut":
            text = text[:pos]
        else:
            lines = text.splitlines()
            if len(lines) > 1:
                i = pos % (len(lines) - 1)
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
            text = "\n".join(lines)
    csv.write_text(text)
    try:
        r = D.read(csv, S.load(SKEL), ImportOptions(keep_empty=True))
    except PosedataError:
        return
    for a in r.dataset.annotations:
        assert a.keypoints.shape == (4, 3) and np.isfinite(a.keypoints).all()


def test_cli_unknown_bodypart_exit_2(runner, tmp_path) -> None:
    csv = copy_project(tmp_path)
    csv.write_text(csv.read_text().replace("tail_base,tail_base", "whisker,whisker"))
    out = tmp_path / "o.json"
    res = runner.invoke(cli, ["import", "deeplabcut", str(csv), "--skeleton", str(SKEL), "-o", str(out)])
    assert res.exit_code == 2 and "whisker" in res.output and "line 2" in res.output and not out.exists()
