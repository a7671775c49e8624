"""What `posedata train` settles before its first step: a new run or a resumed one, the inputs'
skeleton (the data gate is posedata.check.training_gate). The CLI parses, calls these and prints; train() trains.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from posedata import skeleton as S
from posedata.errors import InputError

from .run import check_not_running
from .train import CONFIG, TrainConfig, new_run_config, resume_run_config


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
