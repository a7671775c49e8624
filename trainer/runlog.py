"""What a run logs besides its checkpoints: validation rows in metrics.jsonl, the training plot
(loss, learning rate, validation AP), and the same scalars in TensorBoard when asked.

metrics.jsonl holds two kinds of line, both keyed by "iteration":
  step rows        {"iteration", "epoch", "loss", "losses", "lr", "images_per_s"}, one per iteration;
  validation rows  {"iteration", "validation": {"AP", "AP50", "AP75", "AR", "AR50", "n_images",
                   "n_detections", "seconds", "per_keypoint": {name: {"oks", "found_rate", "pck",
                   "error_px", "labelled"}}}}, after the step row of the iteration validated.
A resume cuts the file back to its checkpoint's iteration, which keeps the validation made at
that checkpoint (validation runs before last.pt is written).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from posedata.errors import InputError

VALIDATION = "validation"
SCALARS = ("AP", "AP50", "AP75", "AR", "AR50")


def validation_row(iteration: int, stats: dict[str, Any], seconds: float | None = None) -> dict[str, Any]:
    """A metrics.jsonl line for evaluate()'s result at `iteration`."""
    val: dict[str, Any] = {k: float(stats[k]) for k in SCALARS if k in stats}
    val.update(n_images=int(stats.get("n_images", 0)), n_detections=int(stats.get("n_detections", 0)))
    if seconds is not None:
        val["seconds"] = round(float(seconds), 3)
    val["per_keypoint"] = {r["keypoint"]: {k: r.get(k) for k in ("oks", "found_rate", "pck", "error_px", "labelled")}
                           for r in stats.get("per_keypoint", [])}
    return {"iteration": int(iteration), VALIDATION: val}


def step_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if "loss" in r]


def validation_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if VALIDATION in r]


def plot_training(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Loss (total, its running mean, per stage), learning rate and validation AP / AP50 / AR
    against the iteration, one panel each (the AP panel only when the run validates)."""
    from posedata.plots import pyplot, save_figure

    plt = pyplot()
    steps, vals = step_rows(rows), validation_rows(rows)
    n = 3 if vals else 2
    fig, axes = plt.subplots(n, 1, figsize=(8, 2.6 * n + 0.8), sharex=True,
                             gridspec_kw={"height_ratios": [2.2, 1] + ([1.6] if vals else [])})
    ax = axes[0]
    if steps:
        it = np.array([r["iteration"] for r in steps])
        total = np.array([r["loss"] for r in steps])
        stride = max(1, len(steps) // 4000)  # a few thousand points per line are plenty for a PNG
        ax.plot(it[::stride], total[::stride], color="#bbbbbb", lw=0.8, label="total (per iteration)")
        if len(steps) >= 10:
            k = max(5, len(steps) // 50)
            smooth = np.convolve(total, np.ones(k) / k, mode="valid")
            ax.plot(it[k - 1:][::stride], smooth[::stride], color="black", lw=1.5, label=f"total ({k}-iteration mean)")
        for name in steps[-1]["losses"]:
            v = np.array([r["losses"].get(name, np.nan) for r in steps])
            ax.plot(it[::stride], v[::stride], lw=0.8, alpha=0.8, label=name)
        ax.set_yscale("log")
        axes[1].plot(it[::stride], np.array([r["lr"] for r in steps])[::stride], color="#1f77b4", lw=1.2)
    ax.set_ylabel("loss (sum of masked L2 / 2 / batch)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    axes[1].set_ylabel("learning rate")
    axes[1].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    if vals:
        vi = [r["iteration"] for r in vals]
        for key, style in (("AP", "o-"), ("AP50", "s--"), ("AR", "^:")):
            axes[2].plot(vi, [r[VALIDATION].get(key, np.nan) for r in vals], style, ms=4, lw=1.2, label=key)
        axes[2].set_ylabel("validation")
        axes[2].set_ylim(-0.02, 1.02)
        axes[2].legend(fontsize=7, loc="lower right")
    for a in axes:
        a.grid(alpha=0.3)
    axes[-1].set_xlabel("iteration")
    save_figure(fig, path)


def tensorboard_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def require_tensorboard() -> None:
    if not tensorboard_available():
        raise InputError("--tensorboard needs the tensorboard package; install the optional extra: "
                         "pip install 'posedata[tensorboard]'")


class TensorBoardLog:
    """The metrics.jsonl rows as TensorBoard scalars, in run/tensorboard/: loss/total,
    loss/<stage part>, lr, images_per_s, val/AP, val/AP50, val/AP75, val/AR, val/AR50 and
    val_oks/<keypoint>."""

    DIR = "tensorboard"

    def __init__(self, run: Path):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run) / self.DIR))

    def write(self, row: dict[str, Any]) -> None:
        it = int(row["iteration"])
        w = self.writer
        if VALIDATION in row:
            val = row[VALIDATION]
            for k in SCALARS:
                if k in val:
                    w.add_scalar(f"val/{k}", val[k], it)
            for name, kp in val.get("per_keypoint", {}).items():
                if kp.get("oks") is not None:
                    w.add_scalar(f"val_oks/{name}", kp["oks"], it)
        else:
            w.add_scalar("loss/total", row["loss"], it)
            for name, v in row.get("losses", {}).items():
                w.add_scalar(f"loss/{name}", v, it)
            w.add_scalar("lr", row["lr"], it)
            w.add_scalar("images_per_s", row["images_per_s"], it)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
