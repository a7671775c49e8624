"""`--device` for every torch command (train, val, infer): one resolver, one message.

`auto` is CUDA when torch has a usable GPU, else the CPU. An explicit device torch cannot use is
refused with a usage error before any work starts, rather than failing deep inside the first
forward pass.
"""
from __future__ import annotations

import re

import torch

from posedata.errors import InputError

CHOICES_HELP = "auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def resolve_device(spec: str | None = "auto", local_rank: int | None = None) -> torch.device:
    """The torch device for a `--device` value.

    local_rank (a torchrun process's LOCAL_RANK) picks the GPU of a bare `cuda` / `auto`, so each
    process of a multi-GPU run gets its own."""
    text = (spec or "auto").strip().lower()
    m = _PATTERN.match(text)
    if m is None:
        raise InputError(f"--device {spec!r} is not one of: {CHOICES_HELP}")
    kind, index = m.group(1), m.group(2)
    if kind in ("auto", "cpu", "mps") and index is not None:
        raise InputError(f"--device {spec!r}: only cuda takes an index (cuda:N)")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise InputError("--device mps: this torch build has no usable Apple GPU (use cpu or auto)")
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise InputError(f"--device {spec}: this torch build has no usable CUDA GPU "
                         f"(torch {torch.__version__}; use --device cpu or auto)")
    n = torch.cuda.device_count()
    i = int(index) if index is not None else (local_rank or 0)
    if i >= n:
        raise InputError(f"--device {spec}: GPU {i} does not exist ({n} visible)")
    return torch.device("cuda", i)
