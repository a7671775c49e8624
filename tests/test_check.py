from __future__ import annotations

import json

from posedata import skeleton as S
from posedata.check import check_data
from posedata.cli import cli


def test_check_real_coco_passes(shared_real):
    res = check_data(shared_real / "coco" / "test_coco.json", S.resolve("coco17"), images=shared_real / "coco")
    assert res.ok, [f for f in res.findings if f.severity == "error"]
    assert res.flip_verdict == "PASS"


def test_check_fails_on_wrong_flip_map_and_bad_data(shared_real, tmp_path, runner):
    sk = S.resolve("coco17")
    d = sk.to_dict()
    d["flip"] = [p for p in d["flip"] if "knee" not in p[0]]
    broken = S.parse(d, file="broken.yaml")[0]
    res = check_data(shared_real / "coco" / "test_coco.json", broken)
    assert not res.ok and res.flip_verdict == "FAIL"
    assert any(f.code == "F001" and "knee" in f.message for f in res.findings)

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
    from conftest import ROOT

    export = ROOT / "tests" / "data" / "import" / "coco_annotator_export.json"
    from posedata import validate as V

    _, raw_findings = V.validate_file(export, S.resolve("coco17"))
    assert any(f.severity == "error" for f in raw_findings)  # the raw export has the tool's quirks
    res = check_data(export, S.resolve("coco17"))
    assert not any(f.severity == "error" for f in res.data), [f for f in res.data if f.severity == "error"]
