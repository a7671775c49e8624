"""`posedata demo`: the quick version runs every step and leaves every artefact; outputs are
never overwritten without --force; the default plan is the one the bar was measured with."""
from __future__ import annotations

import json
import re
from pathlib import Path

from posedata.cli import cli
from posedata.demo import STEPS, DemoPaths, make_plan


def test_quick_demo_runs_every_step(runner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = runner.invoke(cli, ["demo", "--quick", "-o", str(out)])
    assert r.exit_code == 0, r.output
    for step in ("1/7 synth", "2/7 validate", "3/7 convert", "4/7 preview", "5/7 flipcheck", "6/7 train", "7/7 val"):
        assert step in r.output
    p = DemoPaths(out)
    plan = make_plan(quick=True)
    for ds, n in ((p.train, plan.train_images), (p.val, plan.val_images)):
        data = json.loads((ds / "annotations.json").read_text())
        assert len(data["images"]) == n
        assert all((ds / "images" / im["file_name"]).is_file() for im in data["images"])
    assert p.labels.is_file()
    assert (p.preview / "index.png").is_file()
    assert len(list(p.preview.glob("sample_*.png"))) == plan.preview_samples
    for name in ("orientation.png", "sides.png", "instances.png"):
        assert (p.flipcheck / name).is_file()
    for name in ("last.pt", "loss_curve.png", "config.json"):
        assert (p.run / name).is_file()
    rows = (p.run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["iteration"] for x in rows] == list(range(1, plan.iterations + 1))
    metrics = json.loads((p.results / "metrics.json").read_text())
    assert (p.results / "results.json").is_file()
    assert len(list(p.results.glob("overlay_*.png"))) == min(plan.val_overlays, plan.val_images)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["AP"] == metrics["AP"] and summary["iterations"] == plan.iterations
    assert summary["plan"]["skeleton"] == plan.skeleton and summary["images_per_s"] > 0
    # the final line names the AP that metrics.json holds, and every artefact's location
    m = re.search(r"held-out AP (-?\d+\.\d{3}) \(AP50 (-?\d+\.\d{3})", r.output)
    assert m, r.output
    assert float(m.group(1)) == round(metrics["AP"], 3)
    flat = r.output.replace("\n", "").replace("│", "").replace(" ", "")
    for artefact in (p.labels, p.preview / "index.png", p.run / "last.pt", p.results / "metrics.json",
                     p.flipcheck / "instances.png"):
        assert str(artefact).replace(" ", "") in flat
    # --force runs again into the same folder: fresh artefacts, no stale metric lines
    again = runner.invoke(cli, ["demo", "--quick", "-o", str(out), "--force"])
    assert again.exit_code == 0, again.output
    assert len((p.run / "metrics.jsonl").read_text().splitlines()) == plan.iterations
    assert len(list(p.preview.glob("sample_*.png"))) == plan.preview_samples


def test_existing_output_needs_force(runner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = runner.invoke(cli, ["demo", "--quick", "-o", str(out)])
    assert r.exit_code == 2
    assert "--force" in r.output and "Traceback" not in r.output
    assert sorted(x.name for x in out.iterdir()) == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "mine"


def test_output_that_is_a_file_is_refused(runner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    out.write_text("x")
    r = runner.invoke(cli, ["demo", "--quick", "-o", str(out), "--force"])
    assert r.exit_code == 2
    assert out.read_text() == "x"


def test_default_plan_is_a_small_cpu_run_on_a_non_human_skeleton() -> None:
    from posedata.skeleton import resolve

    plan = make_plan()
    sk = resolve(plan.skeleton)
    assert sk.name not in {"coco17", "openpose18"}
    assert plan.input_size % 8 == 0 and plan.input_size <= 160
    assert plan.width <= 0.5 and plan.stages <= 1
    assert plan.iterations == STEPS  # a fixed length: the same AP on a busy or an idle machine
    assert make_plan(steps=50).iterations == 50


def test_the_demo_trains_on_one_thread_whatever_the_cores_or_the_load(monkeypatch) -> None:
    """One torch thread on any machine (the next batch is made on another thread meanwhile): the
    same arithmetic, so the same AP, on 2 or 16 cores, busy or idle (bench/README.md "demo")."""
    import os

    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0), raising=False)
    for cores in (1, 2, 16):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)), raising=False)
        monkeypatch.setattr(os, "cpu_count", lambda n=cores: n)
        assert make_plan().threads == 1


def test_quick_demo_evaluates_with_silhouette_areas(runner, tmp_path: Path, monkeypatch) -> None:
    """The held-out set's OKS area is each figure's drawn silhouette, not its box; the demo's
    evaluation is the `posedata val` command a user can run on its checkpoint (same settings)."""
    import trainer.evaluate as E

    calls, evaluate = [], E.evaluate

    def recorded(model, sk, coco_json, images, **kw):
        calls.append((type(model).__name__, sk.fingerprint, str(coco_json), str(images),
                      {k: kw.get(k) for k in ("input_size", "flip", "scales")}, bool(kw.get("multiscale"))))
        return evaluate(model, sk, coco_json, images, **kw)

    monkeypatch.setattr(E, "evaluate", recorded)
    out = tmp_path / "demo"
    r = runner.invoke(cli, ["demo", "--quick", "-o", str(out), "--steps", "2"])
    assert r.exit_code == 0, r.output
    data = json.loads(DemoPaths(out).val_json.read_text())
    figs = [a for a in data["annotations"] if not a["iscrowd"]]
    assert figs and all(a["area"] < a["bbox"][2] * a["bbox"][3] for a in figs)
    train = json.loads(DemoPaths(out).train_json.read_text())
    assert all(a["area"] == a["bbox"][2] * a["bbox"][3] for a in train["annotations"] if not a["iscrowd"])
    assert json.loads((out / "summary.json").read_text())["iterations"] == 2
    plan, p = make_plan(quick=True), DemoPaths(out)
    r = runner.invoke(cli, ["val", "--checkpoint", str(p.run / "last.pt"), "--coco", str(p.val_json), "--images",
                            str(p.val / "images"), "--input-size", str(plan.val_input_size), "--scales",
                            ",".join(str(s) for s in plan.val_scales), "--flip", "-o", str(tmp_path / "val")])
    assert r.exit_code == 0, r.output
    assert len(calls) == 2 and calls[0] == calls[1], calls
    assert calls[0][4]["scales"] == tuple(plan.val_scales) and calls[0][4]["flip"]


def test_the_demo_converts_with_the_convert_command_s_library_call(runner, tmp_path: Path) -> None:
    """The demo's convert step had its own copy of the command's body (no --images check, no
    source copy for the gate); it is convert_job.run_convert now, so both write the same file."""
    from posedata import skeleton as S
    from posedata.demo import convert_step
    from posedata.synth import generate

    p = DemoPaths(tmp_path / "demo")
    sk = S.resolve("object5")
    generate(sk, p.train, 3, (96, 96), seed=0)
    labels = convert_step(p, sk)
    r = runner.invoke(cli, ["convert", str(p.train_json), "--skeleton", "object5", "--images", str(p.train / "images"),
                            "-o", str(tmp_path / "cli.npz")])
    assert r.exit_code == 0, r.output
    assert labels.num_samples > 0
    assert p.labels.read_bytes() == (tmp_path / "cli.npz").read_bytes()
