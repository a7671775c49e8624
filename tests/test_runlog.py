"""Validation results in metrics.jsonl, the training plot (loss, learning rate, AP), TensorBoard."""
from __future__ import annotations

import json

import cv2
import pytest
from test_train import FAST, make_dataset, train_args

from posedata.cli import cli
from trainer import runlog


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"))


def test_validation_rows_go_into_metrics_with_their_iteration(data, runner, tmp_path):
    """AP, AP50, AR and per-keypoint results of each validation are metric lines keyed by the
    iteration validated; they were stored nowhere before (only best.pt's best_ap)."""
    run = tmp_path / "run"
    r = runner.invoke(cli, train_args(data, run, *FAST, "--val-json", str(data["json"]), "--val-images",
                                      str(data["images"])))
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["iteration"] for x in runlog.step_rows(rows)] == [1, 2, 3, 4]
    vals = runlog.validation_rows(rows)
    assert [v["iteration"] for v in vals] == [2, 4]
    for v in vals:
        val = v["validation"]
        assert {"AP", "AP50", "AP75", "AR", "AR50", "per_keypoint", "n_images", "seconds"} <= set(val)
        assert 0 <= val["AP"] <= 1 or val["AP"] == -1
        assert set(val["per_keypoint"]) and all("oks" in kp for kp in val["per_keypoint"].values())
    # each validation line follows its iteration's step line
    assert [list(x)[1] if len(x) == 2 else "step" for x in rows] == ["step", "step", "validation", "step", "step",
                                                                       "validation"]
    # the plot gets the AP panel (three panels: taller than the two-panel loss + rate plot)
    with_ap = cv2.imread(str(run / "loss_curve.png"))
    runlog.plot_training(runlog.step_rows(rows), tmp_path / "no_val.png", "t")
    without = cv2.imread(str(tmp_path / "no_val.png"))
    assert with_ap.shape[0] > without.shape[0] and with_ap.shape[1] == without.shape[1]


def test_resume_keeps_the_checkpoints_validation_and_drops_later_lines(tmp_path):
    p = tmp_path / "metrics.jsonl"
    rows = [{"iteration": 1, "loss": 1.0, "losses": {}, "lr": 1e-3, "images_per_s": 1.0},
            {"iteration": 2, "loss": 1.0, "losses": {}, "lr": 1e-3, "images_per_s": 1.0},
            runlog.validation_row(2, {"AP": 0.5, "AP50": 0.7, "AR": 0.6, "per_keypoint": []}),
            {"iteration": 3, "loss": 1.0, "losses": {}, "lr": 1e-3, "images_per_s": 1.0},
            runlog.validation_row(3, {"AP": 0.6, "per_keypoint": []})]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from trainer.train import read_metrics

    kept = read_metrics(p, 2)
    assert kept == rows[:3]


def test_tensorboard_writes_the_same_scalars(data, runner, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    r = runner.invoke(cli, train_args(data, run, *FAST, "--val-json", str(data["json"]), "--val-images",
                                      str(data["images"]), "--tensorboard"))
    assert r.exit_code == 0, r.output
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss/total", "lr", "val/AP", "val/AP50", "val/AR"} <= tags
    assert [e.step for e in acc.Scalars("loss/total")] == [1, 2, 3, 4]
    assert [e.step for e in acc.Scalars("val/AP")] == [2, 4]
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    ap = [v["validation"]["AP"] for v in runlog.validation_rows(rows)]
    assert [e.value for e in acc.Scalars("val/AP")] == pytest.approx(ap, abs=1e-6)


def test_tensorboard_missing_is_a_clear_usage_error(data, runner, tmp_path, monkeypatch):
    monkeypatch.setattr(runlog, "tensorboard_available", lambda: False)
    run = tmp_path / "run"
    r = runner.invoke(cli, train_args(data, run, *FAST, "--tensorboard"))
    assert r.exit_code == 2 and "posedata[tensorboard]" in r.output and not (run / "last.pt").exists()
