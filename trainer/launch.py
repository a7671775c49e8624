"""What `posedata train` settles before its first step: a new run or a resumed one, the inputs'
skeleton (the data gate is posedata.check.training_gate). The CLI parses, calls these and prints; train() trains.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from posedata import skeleton as S
from posedata.errors import InputError

from .device import resolve_device
from .run import check_not_running
from .train import CONFIG, TrainConfig


def resumed_run(resume: Path, given: dict[str, Any], skeleton_spec: str | None) -> tuple[TrainConfig, S.Skeleton]:
    """--resume RUN: the run's own options and skeleton (a --skeleton given must be the same one);
    refused while another process trains in that folder."""
    cfg, sk_dict = resume_run_config(resume, given)
    sk = S.from_dict(sk_dict, file=str(Path(resume) / CONFIG))
    if skeleton_spec:
        S.require_fingerprint("the run", sk.name, sk.fingerprint, S.resolve(skeleton_spec), str(skeleton_spec))
    check_not_running(resume)
    return cfg, sk


def new_run(given: dict[str, Any], skeleton_spec: str | None) -> tuple[TrainConfig, S.Skeleton]:
    """A fresh run's options (preset under the options given) and skeleton; --skeleton, --labels,
    --images and -o are required."""
    missing = [n for n, k in (("--skeleton", "skeleton"), ("--labels", "labels"), ("--images", "images"),
                              ("-o/--output", "output")) if (skeleton_spec if k == "skeleton" else given.get(k)) is None]
    if missing:
        raise InputError(f"missing option(s) {', '.join(missing)} (all required unless --resume)")
    sk = S.resolve(skeleton_spec)
    return new_run_config({**given, "skeleton_file": str(sk.file)}), sk


def refuse_existing_run(output: Path, force: bool) -> None:
    """A folder that holds a run is continued with --resume, or replaced with --force."""
    check_not_running(output)
    if (Path(output) / CONFIG).is_file() and not force:
        raise InputError(f"{output} holds a run; continue it with: posedata train --resume {output} "
                         "(or pass --force to start it again from scratch)", file=str(output))


def check_inputs(labels: Path, sk: S.Skeleton, init: Path | None) -> None:
    """Refuse a label file for another skeleton and an unreadable --init before the (slower) data
    check and before the run folder exists."""
    from posedata.labels import load as load_labels
    from trainer.data import check_fingerprint

    check_fingerprint(load_labels(labels), sk, str(labels))
    if init is not None:
        from .checkpoint import load as load_checkpoint

        load_checkpoint(init)


def new_run_config(given: dict[str, Any]) -> TrainConfig:
    """A fresh run's options: the preset (the one named, else the device's default) under the
    options given (None = not given)."""
    from . import presets

    name = presets.choose(given.get("preset"), resolve_device(given.get("device")).type)
    values = presets.settings(name, {k: v for k, v in given.items() if k != "preset"})
    cfg = TrainConfig(**values, preset=name)
    cfg.validate()
    return cfg


def resume_run_config(run: str | os.PathLike, given: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """The run's own options for --resume, with the ones --resume may change taken from `given`.
    The original command's options may be repeated; any that differ from the run's are named. A
    --preset given again stands for its values (those not given explicitly)."""
    from . import presets
    from .run import CHANGEABLE, resume_config

    given = {k: v for k, v in given.items() if v is not None}
    name = given.pop("preset", None)
    if name is not None:
        for key, value in presets.PRESETS[presets.choose(name, "cpu")].items():
            if key not in CHANGEABLE:
                given.setdefault(key, value)
    cfg, skeleton = resume_config(run, given, TrainConfig)
    cfg.validate()
    return cfg, skeleton
