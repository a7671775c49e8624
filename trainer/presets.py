"""Training presets: settings that fit a machine, chosen by device when none is given.

`reference` is the reference trainer's (batch 80, 368 px, width 1.0, 20,000 iterations, lr 4e-5):
made for GPUs and COCO, it would take days on a CPU. `cpu-small` is the demo's network (128 px,
width 0.25, no refinement stage, Adam at 3e-3 from scratch), which learns the demo's synthetic set
to AP 0.7 on two CPU cores in minutes. Options given on the command line override a preset's.
docs/training.md has each preset's measured speed.
"""
from __future__ import annotations

from typing import Any

from posedata.errors import InputError

PRESETS: dict[str, dict[str, Any]] = {
    "cpu-small": {"input_size": 128, "width": 0.25, "stages": 0, "batch_size": 16, "iterations": 1000,
                  "lr": 3e-3, "checkpoint_every": 250},
    "reference": {"input_size": 368, "width": 1.0, "stages": 1, "batch_size": 80, "iterations": 20000,
                  "lr": 4e-5, "checkpoint_every": 1000},
}
DEFAULT_FOR_DEVICE = {"cpu": "cpu-small", "cuda": "reference", "mps": "reference"}
# a CPU run estimated above this is called out at the start, with the faster preset named
LONG_CPU_RUN_S = 2 * 3600


def choose(name: str | None, device_type: str) -> str:
    """The preset to use: the one named, else the device's default."""
    if name is None:
        return DEFAULT_FOR_DEVICE.get(device_type, "reference")
    if name not in PRESETS:
        raise InputError(f"--preset {name!r} is not one of: {', '.join(PRESETS)}")
    return name


def describe(name: str) -> str:
    p = PRESETS[name]
    return (f"{name} (input {p['input_size']}, width {p['width']}, {p['stages']} refinement stage(s), "
            f"batch {p['batch_size']}, {p['iterations']} iterations, lr {p['lr']:g})")


def settings(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The preset's values with the given (not None) options on top."""
    out = dict(PRESETS[name])
    out.update({k: v for k, v in given.items() if v is not None})
    return out


def faster_than(name: str) -> str | None:
    """The preset to name when a CPU run under `name` is estimated at many hours."""
    return None if name == "cpu-small" else "cpu-small"


def format_duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        h, m = divmod(round(seconds / 60), 60)
        return f"{h} h {m:02d} min"
    return f"{seconds / 86400:.1f} days"
