from __future__ import annotations

import json

from posedata import skeleton as S
from posedata.check import check_data
from posedata.cli import cli


def test_check_real_coco_passes(shared_real):
    res = check_data(shared_real / "coco" / "test_coco.json", S.resolve("coco17"), images=shared_real / "coco")
    assert res.ok, [f for f in res.findings if f.severity == "error"]
    assert res.flip_verdict == "INCONCLUSIVE"  # 12 people with keypoints: too few to judge, never a FAIL


def test_check_fails_on_wrong_flip_map_and_bad_data(shared_real, tmp_path, runner):
    sk = S.resolve("coco17")
    d = sk.to_dict()
    d["flip"] = [p for p in d["flip"] if "knee" not in p[0] and "ankle" not in p[0]]
    d["flip"] += [["left_knee", "right_ankle"], ["left_ankle", "right_knee"]]
    broken = S.parse(d, file="broken.yaml")[0]
    res = check_data(shared_real / "coco" / "test_coco.json", broken)
    assert not res.ok and res.flip_verdict == "FAIL"
    assert any(f.code == "F003" and "knee" in f.message for f in res.findings)

    data = json.loads((shared_real / "coco" / "test_coco.json").read_text())
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = runner.invoke(cli, ["check", str(bad), "--skeleton", "coco17"])
    assert r.exit_code == 1 and "annotations[0].keypoints" in r.output
    r = runner.invoke(cli, ["check", str(shared_real / "coco" / "test_coco.json"), "--skeleton", "coco17",
                            "--images", str(shared_real / "coco")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["check", str(tmp_path / "missing.json"), "--skeleton", "coco17"])
    assert r.exit_code == 2 and "missing.json" in r.output


def test_check_reads_tool_exports_as_convert_does(tmp_path):
    from repo_paths import ROOT

    export = ROOT / "tests" / "data" / "import" / "coco_annotator_export.json"
    from posedata import validate as V

    _, raw_findings = V.validate_file(export, S.resolve("coco17"))
    assert any(f.severity == "error" for f in raw_findings)  # the raw export has the tool's quirks
    res = check_data(export, S.resolve("coco17"))
    assert not any(f.severity == "error" for f in res.data), [f for f in res.data if f.severity == "error"]


# ------------------------------------------------------------ the training gate
def _synth_converted(tmp_path, runner, n: int = 6):
    """A small clean synthetic set laid out as the tools write it, converted by the CLI."""
    r = runner.invoke(cli, ["synth", "--skeleton", "object5", "-o", str(tmp_path / "set"), "--images", str(n),
                            "--size", "96x96"])
    assert r.exit_code == 0, r.output
    src = tmp_path / "set" / "annotations.json"
    out = tmp_path / "labels.npz"
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "object5", "-o", str(out)])
    assert r.exit_code == 0, r.output
    return src, out, tmp_path / "set" / "images"


TINY = ["--iterations", "1", "--batch-size", "2", "--input-size", "64", "--width", "0.25", "--threads", "1"]


def test_gate_refuses_stale_labels(tmp_path, runner):
    """The gate used to re-check whatever JSON was at the recorded path: replacing it by other
    clean data trained the old labels without a word, although convert recorded the sha256."""
    from posedata.check import check_labels

    src, labels, images = _synth_converted(tmp_path, runner)
    sk = S.resolve("object5")
    assert check_labels(labels, sk, images).result.ok
    data = json.loads(src.read_text())
    data["annotations"] = data["annotations"][:-1]  # still clean data, but not what was converted
    src.write_text(json.dumps(data))
    got = check_labels(labels, sk, images)
    assert [f.code for f in got.findings if f.severity == "error"] == ["C001"]
    r = runner.invoke(cli, ["train", "--skeleton", "object5", "--labels", str(labels), "--images", str(images),
                            "-o", str(tmp_path / "run"), *TINY])
    assert r.exit_code == 1, r.output
    assert "labels are stale: re-run convert" in r.output and not (tmp_path / "run").exists()
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "object5", "-o", str(labels), "--force"])
    assert r.exit_code == 0 and check_labels(labels, sk, images).result.ok


def test_gate_refuses_labels_after_validate_fix_rewrote_the_source(tmp_path, runner):
    src, labels, images = _synth_converted(tmp_path, runner)
    data = json.loads(src.read_text())
    del data["annotations"][0]["area"]  # V034, fixable: the user converts with --skip-checks, then fixes
    src.write_text(json.dumps(data))
    r = runner.invoke(cli, ["convert", str(src), "--skeleton", "object5", "-o", str(labels), "--force",
                            "--skip-checks"])
    assert r.exit_code == 0, r.output
    fixed = tmp_path / "fixed.json"
    r = runner.invoke(cli, ["validate", str(src), "--skeleton", "object5", "--fix", str(fixed)])
    assert r.exit_code == 1 and fixed.exists()
    src.write_bytes(fixed.read_bytes())  # the fixed copy now stands where the labels' source was
    r = runner.invoke(cli, ["train", "--skeleton", "object5", "--labels", str(labels), "--images", str(images),
                            "-o", str(tmp_path / "run"), *TINY])
    assert r.exit_code == 1 and "labels are stale: re-run convert" in r.output, r.output


def test_label_file_travels_without_its_source(tmp_path, runner):
    """Label files carry what the gate needs: moved alone, the gate checks the copy inside."""
    from posedata.check import check_labels

    src, labels, images = _synth_converted(tmp_path, runner)
    moved = tmp_path / "elsewhere" / "labels.npz"
    moved.parent.mkdir()
    moved.write_bytes(labels.read_bytes())
    src.rename(tmp_path / "gone.json")
    got = check_labels(moved, S.resolve("object5"), images)
    from posedata import labels as L

    assert got.embedded and got.result.ok and got.result.num_samples == L.load(labels).num_samples > 0
    # the copy is the source's own bytes, the ones whose sha256 convert recorded (not a re-serialised parse)
    import hashlib

    blob = L.load_embedded_source(moved)
    assert blob == (tmp_path / "gone.json").read_bytes()
    assert hashlib.sha256(blob).hexdigest() == L.load_header(moved)["settings"]["source_sha256"]
    r = runner.invoke(cli, ["train", "--skeleton", "object5", "--labels", str(moved), "--images", str(images),
                            "-o", str(tmp_path / "run"), *TINY])
    assert r.exit_code == 0, r.output
    assert "data check passed" in r.output and "copy of" in r.output
    # the copy is checked, not trusted: an error in it stops training as the source's would
    data = json.loads((tmp_path / "gone.json").read_text())
    data["annotations"][0]["keypoints"] = data["annotations"][0]["keypoints"][:-3]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    r = runner.invoke(cli, ["convert", str(bad), "--skeleton", "object5", "-o", str(tmp_path / "bad.npz"), "--skip-checks"])
    assert r.exit_code == 0, r.output
    bad.unlink()
    got = check_labels(tmp_path / "bad.npz", S.resolve("object5"), images)
    assert got.embedded and any(f.code == "V021" for f in got.findings)


def test_check_counts_training_samples_and_fails_at_zero(tmp_path, runner):
    src, _, images = _synth_converted(tmp_path, runner)
    r = runner.invoke(cli, ["check", str(src), "--skeleton", "object5", "--images", str(images)])
    assert r.exit_code == 0 and "training samples" in r.output
    from posedata import labels as L

    res = check_data(src, S.resolve("object5"), images)
    assert res.num_samples == L.load(tmp_path / "labels.npz").num_samples > 0 and not res.samples
    data = json.loads(src.read_text())
    for a in data["annotations"]:  # every object under 32 x 32: valid data, but nothing to train on
        a["bbox"][2:] = [20, 20]
        a["area"] = 400
    small = tmp_path / "small.json"
    small.write_text(json.dumps(data))
    res = check_data(small, S.resolve("object5"))
    assert res.num_samples == 0 and [f.code for f in res.samples] == ["C002"]
    assert "min_area" in res.samples[0].message and "--min-area" in res.samples[0].message
    r = runner.invoke(cli, ["check", str(small), "--skeleton", "object5"])
    assert r.exit_code == 1 and "C002" in r.output and "data not ready" in r.output


# ------------------------------------------------------ several categories, one skeleton
def _two_species(tmp_path, runner):
    """The synthetic set with its objects split over two species categories that share one keypoint
    list (as AP-10K's 54), plus a category without keypoints."""
    src, _, images = _synth_converted(tmp_path, runner)
    data = json.loads(src.read_text())
    kcat = data["categories"][0]
    data["categories"] = [kcat, dict(kcat, id=7, name="other species"), {"id": 9, "name": "car"}]
    from posedata import labels as L

    ann_ids = sorted(L.load(tmp_path / "labels.npz").inst_ids.tolist())  # the instances of the one-category file
    for a in data["annotations"]:
        if a["id"] in ann_ids[::2]:
            a["category_id"] = 7
    multi = tmp_path / "multi.json"
    multi.write_text(json.dumps(data))
    return multi, images, kcat["id"], ann_ids


def test_several_categories_one_label_file(tmp_path, runner):
    """Multi-species files could not be converted, previewed, flip-checked or checked ("expected
    exactly one category... found 2"); --category all / a list of ids merges them."""
    from posedata import labels as L
    from posedata.check import check_labels

    multi, images, first, ann_ids = _two_species(tmp_path, runner)
    out = tmp_path / "m.npz"
    r = runner.invoke(cli, ["convert", str(multi), "--skeleton", "object5", "-o", str(out)])
    assert r.exit_code == 2 and "--category all" in " ".join(r.output.split())
    r = runner.invoke(cli, ["convert", str(multi), "--skeleton", "object5", "-o", str(out), "--category", "all"])
    assert r.exit_code == 0, r.output
    lb = L.load(out)
    assert [c["id"] for c in lb.settings["categories"]] == [first, 7]
    assert sorted(lb.inst_ids.tolist()) == sorted(ann_ids)  # every instance of both species
    r = runner.invoke(cli, ["convert", str(multi), "--skeleton", "object5", "-o", str(out), "--category", "7",
                            "--force"])
    assert r.exit_code == 0 and sorted(L.load(out).inst_ids.tolist()) == ann_ids[::2]
    r = runner.invoke(cli, ["convert", str(multi), "--skeleton", "object5", "-o", str(out), "--category",
                            f"{first},7", "--force"])
    assert r.exit_code == 0 and sorted(L.load(out).inst_ids.tolist()) == sorted(ann_ids)
    assert check_labels(out, S.resolve("object5"), images).result.ok  # the gate re-checks both categories
    for cmd in (["check", str(multi), "--images", str(images)],
                ["flipcheck", str(multi), "-o", str(tmp_path / "flip")],
                ["preview", str(multi), "--images", str(images), "-o", str(tmp_path / "pv"), "-n", "2"]):
        r = runner.invoke(cli, [*cmd, "--skeleton", "object5", "--category", "all"])
        assert r.exit_code in (0, 1) and "Traceback" not in r.output, (cmd, r.output)
        assert "expected exactly one" not in r.output, (cmd, r.output)
    res = check_data(multi, S.resolve("object5"), images, "all")
    assert res.ok and res.num_samples == L.load(out).num_samples


def test_categories_with_different_keypoint_lists_are_not_merged(tmp_path, runner):
    multi, _, first, _ = _two_species(tmp_path, runner)
    data = json.loads(multi.read_text())
    data["categories"][1]["keypoints"] = data["categories"][1]["keypoints"][::-1]
    multi.write_text(json.dumps(data))
    r = runner.invoke(cli, ["convert", str(multi), "--skeleton", "object5", "-o", str(tmp_path / "x.npz"),
                            "--category", f"{first},7"])
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "categories[1]" in text and "different keypoints" in text


def test_category_is_one_option_with_one_type():
    """--category was declared many times with two types (int here, a name there)."""
    from posedata.cli import CategoryType

    seen = []

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix}{name} ")
            for p in cmd.params:
                if p.name == "category":
                    seen.append((f"{prefix}{name}", type(p.type), p.metavar))

    walk(cli, "")
    assert len(seen) >= 9
    assert {t for _, t, _ in seen} == {CategoryType} and len({m for _, _, m in seen}) == 1, seen
