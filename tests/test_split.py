"""posedata.split and `posedata split`: train/val files where no group lands on both sides, and the
check that the files given to train share no image."""
from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from posedata.check import check_labels, shared_image_findings
from posedata.cli import cli
from posedata.errors import InputError
from posedata.split import split_coco


def frames(sessions: list[int], tracks: bool = False) -> dict:
    """One image per frame, sessions[i] frames in folder s{i}; one annotation per frame (with a
    track id per session when tracks)."""
    images, anns = [], []
    for s, n in enumerate(sessions):
        for f in range(n):
            iid = len(images) + 1
            images.append({"id": iid, "file_name": f"s{s}/f{f:03d}.png", "width": 64, "height": 64, "video_id": 100 + s})
            a = {"id": 1000 + iid, "image_id": iid, "category_id": 1, "keypoints": [10, 10, 2], "num_keypoints": 1,
                 "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0}
            if tracks:
                a["track_id"] = s
            anns.append(a)
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "m", "keypoints": ["p"]}]}


def side_of(res) -> dict[int, str]:
    return {**{im["id"]: "train" for im in res.train["images"]}, **{im["id"]: "val" for im in res.val["images"]}}


def test_split_by_image_fraction_and_count_seeded():
    data = frames([20])
    res = split_coco(data, 0.25, seed=3)
    assert len(res.val["images"]) == 5 and len(res.train["images"]) == 15
    assert split_coco(data, 0.25, seed=3).val == res.val and split_coco(data, 0.25, seed=4).val != res.val
    assert len(split_coco(data, 7).val["images"]) == 7
    sides = side_of(res)
    for part, name in ((res.train, "train"), (res.val, "val")):
        assert all(sides[a["image_id"]] == name for a in part["annotations"])  # annotations follow images
        assert part["categories"] == data["categories"]
    assert sorted(a["id"] for a in res.train["annotations"] + res.val["annotations"]) == \
        [a["id"] for a in data["annotations"]]


@given(st.lists(st.integers(1, 6), min_size=2, max_size=8), st.floats(0.05, 0.9), st.integers(0, 50),
       st.sampled_from(["folder", "video_id", "track"]))
def test_a_group_never_lands_on_both_sides(sessions, val, seed, by):
    data = frames(sessions, tracks=True)
    res = split_coco(data, val, by=by, seed=seed)
    sides = side_of(res)
    assert len(sides) == len(data["images"]) and res.train["images"] and res.val["images"]
    for s in range(len(sessions)):
        assert len({sides[im["id"]] for im in data["images"] if im["video_id"] == 100 + s}) == 1


def test_a_fraction_below_one_always_leaves_training_data():
    # hypothesis found it: 0.75 of 2 one-image sessions rounded to both and was refused
    res = split_coco(frames([1, 1], tracks=True), 0.75, by="folder", seed=0)
    assert len(res.train["images"]) == len(res.val["images"]) == 1


def test_track_groups_join_images_across_folders():
    data = frames([3, 3, 3], tracks=True)
    data["annotations"][0]["track_id"] = 2  # frame 0 of session 0 shows the animal tracked in session 2
    res = split_coco(data, 0.3, by="track", seed=1)
    sides = side_of(res)
    assert sides[1] == sides[7] == sides[8] == sides[9]


def test_split_refuses_what_cannot_be_split():
    with pytest.raises(InputError, match="1 group"):
        split_coco(frames([5]), 0.2, by="folder")
    with pytest.raises(InputError, match="no image has a field 'session'"):
        split_coco(frames([5]), 0.2, by="session")
    with pytest.raises(InputError, match="nothing would be left for training"):
        split_coco(frames([2, 2]), 4, by="folder")


def test_cli_split_writes_two_files_and_keeps_the_input(tmp_path, runner):
    src = tmp_path / "all.json"
    src.write_text(json.dumps(frames([4, 4, 4, 4])))
    before = src.read_bytes()
    out = tmp_path / "split"
    r = runner.invoke(cli, ["split", str(src), "-o", str(out), "--val", "0.25", "--by", "folder", "--seed", "2"])
    assert r.exit_code == 0, r.output
    train, val = (json.loads((out / n).read_text()) for n in ("train.json", "val.json"))
    assert len(val["images"]) == 4 and len({im["file_name"].split("/")[0] for im in val["images"]}) == 1
    assert src.read_bytes() == before
    r = runner.invoke(cli, ["split", str(src), "-o", str(out)])
    assert r.exit_code == 2 and "--force" in r.output
    r = runner.invoke(cli, ["split", str(src), "-o", str(out), "--by", "nothing"])
    assert r.exit_code == 2 and "Traceback" not in r.output


def test_check_and_gate_warn_when_train_and_val_share_an_image(tmp_path, runner):
    r = runner.invoke(cli, ["synth", "--skeleton", "object5", "-o", str(tmp_path / "set"), "--images", "8",
                            "--size", "96x96"])
    assert r.exit_code == 0, r.output
    images = tmp_path / "set" / "images"
    out = tmp_path / "split"
    r = runner.invoke(cli, ["split", str(tmp_path / "set" / "annotations.json"), "-o", str(out), "--val", "2"])
    assert r.exit_code == 0, r.output
    train, val = json.loads((out / "train.json").read_text()), json.loads((out / "val.json").read_text())
    # a disjoint split: nothing shared
    assert shared_image_findings(images, [im["file_name"] for im in train["images"]], out / "val.json", images) == []
    # the same picture under another name in a validation folder
    vimages = tmp_path / "vimages"
    vimages.mkdir()
    for im in val["images"]:
        shutil.copy(images / im["file_name"], vimages / im["file_name"])
    shutil.copy(images / train["images"][0]["file_name"], vimages / "renamed.png")
    val["images"].append(dict(train["images"][0], id=999, file_name="renamed.png"))
    (out / "val.json").write_text(json.dumps(val))
    r = runner.invoke(cli, ["check", str(out / "train.json"), "--skeleton", "object5", "--images", str(images),
                            "--val-json", str(out / "val.json"), "--val-images", str(vimages)])
    assert "C004" in r.output and "renamed.png" in " ".join(r.output.split())
    labels = tmp_path / "train.npz"
    r = runner.invoke(cli, ["convert", str(out / "train.json"), "--skeleton", "object5", "-o", str(labels)])
    assert r.exit_code == 0, r.output
    from posedata import skeleton as S

    got = check_labels(labels, S.resolve("object5"), images, out / "val.json", vimages)
    hit = [f for f in got.findings if f.code == "C004"]
    assert len(hit) == 1 and hit[0].severity == "warning" and train["images"][0]["file_name"] in hit[0].message


def test_real_coco_split_converts_both_sides(shared_real, tmp_path, runner):
    src = shared_real / "coco" / "test_coco.json"
    out = tmp_path / "split"
    r = runner.invoke(cli, ["split", str(src), "-o", str(out), "--val", "0.5", "--seed", "1"])
    assert r.exit_code == 0, r.output
    n = 0
    for name in ("train", "val"):
        r = runner.invoke(cli, ["convert", str(out / f"{name}.json"), "--skeleton", "coco17", "-o",
                                str(tmp_path / f"{name}.npz")])
        assert r.exit_code == 0, r.output
        from posedata import labels as L

        n += L.load(tmp_path / f"{name}.npz").num_samples
    assert n == 12  # the whole file's samples, none lost or doubled
    r = runner.invoke(cli, ["check", str(out / "train.json"), "--skeleton", "coco17", "--images",
                            str(shared_real / "coco"), "--val-json", str(out / "val.json")])
    assert "C004" not in r.output
